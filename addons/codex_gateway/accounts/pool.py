"""Several ChatGPT accounts behind one gateway: choosing one per request, cooldowns, and status.

Where accounts and their state live is the state backend's business (state.py: files by default, or Redis shared
by several gateways); the pool reads it from memory on every request and tells it what it learnt (quota snapshots,
cooldowns, which account served a conversation).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ..errors import LOGIN_HINT
from ..errors import GatewayError
from ..errors import human_duration
from .auth_file import AuthRecord
from .auth_file import Credentials
from .auth_file import format_iso
from .auth_file import parse_auth_doc
from .auth_file import short_id
from .file_state import FileState
from .file_state import account_file_name
from .login_store import LoginStore
from .login_store import StoreUnavailable
from .oauth import TokenResponse
from .quota import DEFAULT_COOLDOWN_S
from .quota import MAX_COOLDOWN_S
from .quota import AccountState
from .quota import RateLimitParser
from .quota import effective_used
from .quota import exhausted_until
from .selection import Selection
from .state import AccountScan
from .state import StateBackend

__all__ = ["AccountPool", "Lease", "save_login", "format_status", "account_file_name"]

logger = logging.getLogger(__name__)
QUOTA_SAVE_INTERVAL_S = 30.0
SHARE_WAIT_S = 1.0  # the longest a retried answer waits for a cooldown to reach the shared store


@dataclass(frozen=True)
class Lease:
    key: str  # the account id (stable across token rotations)
    credentials: Credentials


@dataclass
class _Account:
    key: str
    stores: list[LoginStore]  # preference order; the first one without a dead refresh token serves
    leased_at: float = 0.0
    skipped: str | None = None  # why the last acquire passed over it

    @property
    def store(self) -> LoginStore:
        for store in self.stores:  # a loop, not next() over a generator: this runs several times per request
            if not store.login_required:
                return store
        return self.stores[0]

    @property
    def record(self) -> AuthRecord | None:
        return self.store.load()


class AccountPool:
    """The accounts the gateway may use, and the per-request choice among them.

    Per request the addon calls `acquire(prompt_cache_key)` and sends `lease.credentials`; on the response
    `record_headers(lease, headers)`; on an upstream 401 `after_unauthorized(lease)` and retries once with the
    new lease; on a 429 `usage_limit_reached` `cool_down(lease, quota.resets_at_from_error(body))` and retries on
    `acquire(key, exclude=frozenset({lease.key}))`. Every failure is a GatewayError ready for the client:
    401 (no login, or log in again), 429 (all accounts cooling down; retry-after = earliest reset), 503
    (transient refresh failure; retry-after). Nothing here blocks the event loop for more than a file write.
    """

    def __init__(
        self,
        codex_home: Path,
        gateway_home: Path,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
        backend: StateBackend | None = None,
    ) -> None:
        """`backend`: where accounts and their state live (default: the files in the two homes)."""
        self.codex_file = codex_home / "auth.json"
        self.accounts_dir = gateway_home / "accounts"
        self.issuer = issuer
        self.clock = clock
        self.http = http
        self.backend: StateBackend = backend or FileState(codex_home, gateway_home, issuer, clock=clock, http=http)
        self.state = self.backend.quota
        self.affinity = self.backend.affinity
        self.selection = self.backend.selection  # `use` / `exclude`, as other gateways and commands change it
        self._stale_pin: str | None = None
        self._scan = AccountScan()  # the backend's scan the accounts below were built from
        self._accounts_cache: dict[str, _Account] = {}
        self._ready = False
        self._quota_saved_at = float("-inf")
        self._quota_unsaved = False
        self._quota_parser = RateLimitParser()

    # -- the addon's API ---------------------------------------------------------------------------------------

    async def acquire(self, session_key: str | None = None, exclude: frozenset[str] = frozenset()) -> Lease:
        """An account for one request: sticky per session key, else the least used; never a cooling one."""
        if not self._ready:
            await self.backend.ready()
            self._ready = True
        if (down := self.backend.unavailable()) is not None:
            raise down
        accounts = self._accounts()
        if not accounts:
            raise GatewayError(401, f"{self.backend.no_login_message()} {LOGIN_HINT}", code="no_login")
        candidates = self._candidates(accounts, self.selection.current())
        if not candidates:
            raise GatewayError(
                503,
                "Every ChatGPT account is excluded from automatic choice: include one again "
                "(`codex-gateway accounts include <id|email>`) or pin one (`… accounts use <id|email>`).",
                code="all_accounts_excluded",
            )
        now = self.clock()
        cooling: list[_Account] = []
        ready: list[_Account] = []
        for account in candidates:
            if account.key not in exclude:
                (cooling if self.state.get(account.key).cooling(now) else ready).append(account)
        errors: list[GatewayError] = []
        hints = self._scan.hints  # e.g. files stat'ed by `_accounts` just now: no second stat in `fresh`
        sticky = None
        if session_key:
            sticky = self.affinity.get(session_key)
            if sticky is None and self.affinity.shared:
                sticky = await self.affinity.fetch(session_key)  # another gateway may have served it
        for account in self._order(ready, sticky, now):
            store = account.store
            known, hints = hints.get(store), {}  # after an await, the store may have changed: look again
            try:
                creds = await store.fresh(known)
            except GatewayError as exc:
                # One account's dead or unreachable login must not fail requests another account can serve.
                if account.skipped != exc.message:  # once per distinct reason, not once per request
                    logger.warning("skipping account %s: %s", self._label(account), exc.message)
                account.skipped = exc.message
                errors.append(exc)
                continue
            account.skipped = None
            account.leased_at = now
            if session_key:
                self.affinity.set(session_key, account.key)
            return Lease(account.key, creds)
        if cooling:
            raise self._all_cooling(cooling, now)
        transient = [e for e in errors if e.status >= 500]
        if transient or errors:
            raise (transient or errors)[0]
        raise GatewayError(
            503,
            "No other ChatGPT account is available to retry this request on.",
            code="no_available_accounts",
            headers={"retry-after": "1"},
        )

    async def after_unauthorized(self, lease: Lease) -> Lease:
        """After an upstream 401 with this lease: refresh once and return new credentials, or raise a 401."""
        account = self._accounts().get(lease.key)
        if account is None:
            raise GatewayError(
                401, f"The ChatGPT login of {lease.credentials.label} was removed. {LOGIN_HINT}", code="no_login"
            )
        creds = await account.store.after_unauthorized(lease.credentials.access_token)
        return Lease(lease.key, creds)

    def record_headers(self, lease: Lease, headers: Mapping[str, str]) -> None:
        """Keeps the `x-codex-*` quota snapshot of a response; an exhausted window cools the account down."""
        now = self.clock()
        self._record_snapshot(
            lease.key, lease.credentials.label, self._quota_parser.parse(lease.key, headers, now), now
        )

    def record_fields(self, lease: Lease, fields: tuple[tuple[bytes, bytes], ...]) -> None:
        """`record_headers` for the raw `x-codex-*` header fields of a response (decoded only when they changed)."""
        now = self.clock()
        snapshot = self._quota_parser.parse_fields(lease.key, fields, now)
        self._record_snapshot(lease.key, lease.credentials.label, snapshot, now)

    def record_snapshot(self, key: str, label: str, snapshot: dict[str, Any]) -> None:
        """A quota reading from elsewhere (`quota --refresh`): kept and acted on like an answer's headers."""
        self._record_snapshot(key, label, snapshot, self.clock())

    async def credentials_of(self, key: str) -> Credentials:
        """Valid credentials of one account, refreshed first if needed (for side requests such as quota readings);
        a GatewayError when the account is gone or its login is dead."""
        account = self._accounts().get(key)
        if account is None:
            raise GatewayError(404, f"The account {short_id(key)} is gone.", code="no_login")
        return await account.store.fresh()

    def _record_snapshot(self, key: str, label: str, snapshot: dict[str, Any] | None, now: float) -> None:
        if snapshot is None:
            return
        state = self.state.get(key)
        state.quota = snapshot
        until = exhausted_until(snapshot, now)
        if until is not None:
            self._set_cooldown(label, state, until, "usage limit reached (x-codex headers)")
        # Every answer carries a snapshot; writing each one would put a locked file write on every request.
        # Cooldowns are saved at once, plain snapshots at most every QUOTA_SAVE_INTERVAL_S (and by `flush`).
        if until is not None or now - self._quota_saved_at >= QUOTA_SAVE_INTERVAL_S:
            self._quota_saved_at = now
            self.state.save(now)
        else:
            self._quota_unsaved = True

    def flush(self) -> None:
        """Writes quota snapshots not saved yet (on shutdown)."""
        if self._quota_unsaved:
            self._quota_unsaved = False
            self.state.save(self.clock())

    def cool_down(self, lease: Lease, resets_at: float | None) -> None:
        """After a 429 `usage_limit_reached`: skip this account until `resets_at` (unix seconds)."""
        now = self.clock()
        until = resets_at if resets_at is not None and resets_at > now else now + DEFAULT_COOLDOWN_S
        self._set_cooldown(lease.credentials.label, self.state.get(lease.key), until, "usage_limit_reached")
        self.state.save(now)

    async def shared(self, wait: float = SHARE_WAIT_S) -> None:
        """Waits (at most `wait` seconds) until what this gateway learnt is in the shared store, so another gateway
        knows of a cooldown before the client that ran into it can ask there (files: at once)."""
        if self.backend.kind == "files":
            return
        with contextlib.suppress(StoreUnavailable, TimeoutError):
            await asyncio.wait_for(self.backend.flush(), wait)

    def cooling_down_retry_after(self) -> int | None:
        """Seconds until the first account is usable again, when every logged-in account is cooling down."""
        selected = self._candidates(self._accounts(), self.selection.current())
        accounts = [a for a in selected if a.record is not None and not a.store.login_required]
        now = self.clock()
        if not accounts or not all(self.state.get(a.key).cooling(now) for a in accounts):
            return None
        return max(1, math.ceil(min(self.state.get(a.key).cooldown_until for a in accounts) - now))

    def use_http(self, http: httpx.AsyncClient) -> None:
        """Token refreshes from now on go through `http` (a command-line tool's proxied client)."""
        self.http = http
        self.backend.use_http(http)

    def status(self) -> list[dict[str, Any]]:
        """One row per account for `status` and the console: never a token, only what identifies and explains."""
        now = self.clock()
        selection = self.selection.current()
        rows = []
        for account in self._accounts().values():
            record, store, state = account.record, account.store, self.state.get(account.key)
            rows.append(
                {
                    "label": self._label(account),
                    "email": record.email if record else None,
                    "plan": (state.quota or {}).get("plan_type") or (record.plan if record else None),
                    "account": short_id(account.key),
                    "account_id": account.key,  # not a secret: the ChatGPT-Account-ID header value
                    "source": self.backend.source(store),
                    "file": store.where,
                    "token_expires_at": record.expires_at if record else None,
                    "last_refresh": record.last_refresh if record else None,
                    "quota": state.quota,
                    "cooldown_until": state.cooldown_until if state.cooling(now) else None,
                    "cooldown_reason": state.cooldown_reason if state.cooling(now) else None,
                    "login_required": store.login_required,
                    "pinned": account.key == selection.pinned,
                    "excluded": account.key in selection.excluded,
                    "problem": store.problem or store.last_error,
                    "refreshes": sum(s.refreshes for s in account.stores),
                    "refresh_failures": sum(s.refresh_failures for s in account.stores),
                }
            )
        return rows

    def selection_note(self) -> str | None:
        """A line about the selection when it needs one: a pin on an account that is gone, an unreadable file."""
        selection = self.selection.current()
        if self.selection.problem:
            return f"account selection: {self.selection.problem}"
        if selection.pinned is not None and selection.pinned not in self._accounts():
            return f"pinned account {short_id(selection.pinned)} is gone: accounts are chosen automatically"
        return None

    def account_record(self, key: str) -> AuthRecord | None:
        """The login that serves the account now (its freshest file whose refresh token was not rejected)."""
        account = self._accounts().get(key)
        return account.record if account is not None else None

    def files(self) -> dict[str, list[Path]]:
        """Every file holding each account (a Codex CLI login may also exist as a gateway file); none in Redis."""
        return {
            key: [Path(s.where) for s in account.stores if self.backend.source(s) != "redis"]
            for key, account in self._accounts().items()
        }

    # -- choosing ----------------------------------------------------------------------------------------------

    def _candidates(self, accounts: dict[str, _Account], selection: Selection) -> list[_Account]:
        """The pinned account alone, if it is there; else every account not excluded from automatic choice."""
        if selection.pinned is not None:
            pinned = accounts.get(selection.pinned)
            if pinned is not None:
                return [pinned]
            if self._stale_pin != selection.pinned:  # once per pin, not once per request
                self._stale_pin = selection.pinned
                logger.warning("the pinned account %s is gone; choosing automatically", short_id(selection.pinned))
        if not selection.excluded:
            return list(accounts.values())
        return [a for a in accounts.values() if a.key not in selection.excluded]

    def _order(self, ready: list[_Account], sticky: str | None, now: float) -> list[_Account]:
        if len(ready) < 2:
            return ready  # nothing to choose between (the usual single login): skip the quota arithmetic

        def load(a: _Account) -> tuple[bool, float, float, float]:
            quota = self.state.get(a.key).quota
            # Dead logins last (tried only if nothing else works); then least used; equal quotas alternate
            # (least recently leased) so load spreads out.
            used = effective_used(quota, "primary", now), effective_used(quota, "secondary", now)
            return a.store.login_required, *used, a.leased_at

        ordered = sorted(ready, key=load)
        if sticky is not None:
            ordered.sort(key=lambda a: a.key != sticky)  # stable: the rest keep their order as fallbacks
        return ordered

    def _set_cooldown(self, label: str, state: AccountState, until: float, reason: str) -> None:
        until = min(until, self.clock() + MAX_COOLDOWN_S)
        if until > state.cooldown_until:
            state.cooldown_until, state.cooldown_reason = until, reason
            logger.warning("account %s cools down until %s: %s", label, _utc(until), reason)

    def _all_cooling(self, cooling: list[_Account], now: float) -> GatewayError:
        until = min(self.state.get(a.key).cooldown_until for a in cooling)
        retry = max(1, math.ceil(until - now))
        n = len(cooling)
        which = "The ChatGPT account has" if n == 1 else f"All {n} ChatGPT accounts have"
        headers = {"retry-after": str(retry)}
        if retry > 120:
            headers["x-should-retry"] = "false"  # the OpenAI SDK would otherwise sleep through its retries
        return GatewayError(
            429,
            f"{which} reached the usage limit. The first resets in {human_duration(retry)} (at {_utc(until)}).",
            type="rate_limit_error",
            code="usage_limit_reached",
            headers=headers,
        )

    # -- scanning ---------------------------------------------------------------------------------------------

    def _accounts(self) -> dict[str, _Account]:
        scan = self.backend.scan()
        if scan is self._scan:
            return self._accounts_cache
        accounts: dict[str, _Account] = {}
        for key, stores in scan.accounts.items():
            account = accounts[key] = _Account(key, stores)
            if (old := self._accounts_cache.get(key)) is not None:
                account.leased_at, account.skipped = old.leased_at, old.skipped
        self._scan, self._accounts_cache = scan, accounts
        return accounts

    def _label(self, account: _Account) -> str:
        record = account.record
        if record is not None:
            return record.label
        return account.store.where if account.key.startswith("file:") else short_id(account.key)


def save_login(
    gateway_home: Path, tokens: TokenResponse, now: float | None = None, backend: StateBackend | None = None
) -> tuple[str, AuthRecord]:
    """Stores a new login (Codex layout; as `accounts/<account_id>.json`, 0600, with the file backend) and
    returns where it went and the login parsed."""
    doc: dict[str, Any] = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": tokens.id_token,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "account_id": None,
        },
        "last_refresh": format_iso(time.time() if now is None else now),
    }
    record = parse_auth_doc(doc)
    if not record.account_id:
        raise ValueError("the issued tokens name no ChatGPT account (chatgpt_account_id claim)")
    doc["tokens"]["account_id"] = record.account_id
    if backend is None:
        backend = FileState(gateway_home.parent, gateway_home, "")  # only its accounts directory is used
    return backend.put_login(doc), parse_auth_doc(doc)


def format_status(rows: list[dict[str, Any]], now: float | None = None) -> str:
    """A plain-text table of `AccountPool.status()` rows (for the CLI and the mitmproxy console)."""
    now = time.time() if now is None else now
    header = ("ACCOUNT", "PLAN", "ID", "SOURCE", "TOKEN EXPIRES", "LAST REFRESH", "QUOTA 5H/WEEK", "STATE")
    lines = [header]
    for r in rows:
        quota = r.get("quota") or {}
        used = "/".join(_pct(quota.get(w)) for w in ("primary", "secondary")) if quota else "-"
        if r.get("login_required"):
            state = "login required"
        elif r.get("cooldown_until"):
            state = f"cooling down until {_utc(r['cooldown_until'])}"
        elif r.get("problem"):
            state = f"problem: {r['problem']}"
        else:
            state = "ok"
        if r.get("pinned"):
            state = f"PINNED (every request), {state}"
        elif r.get("excluded"):
            state = f"excluded from automatic choice, {state}"
        expires = r.get("token_expires_at")
        lines.append(
            (
                str(r.get("label") or "-"),
                str(r.get("plan") or "-"),
                str(r.get("account") or "-"),
                str(r.get("source") or "-"),
                _relative(expires, now) if expires else "-",
                _relative(r["last_refresh"], now) if r.get("last_refresh") else "-",
                used,
                state,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) + "  " + line[-1] for line in lines
    )


def _pct(entry: Any) -> str:
    return f"{entry['used_percent']:g}%" if isinstance(entry, dict) and "used_percent" in entry else "?"


def _relative(ts: float, now: float) -> str:
    delta = ts - now
    return f"{_utc(ts)} ({'in ' if delta >= 0 else ''}{human_duration(abs(delta))}{'' if delta >= 0 else ' ago'})"


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
