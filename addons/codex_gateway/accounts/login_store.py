"""One stored login, refreshed exactly once however many requests, processes and machines need it refreshed.

Refresh tokens rotate and a reused one is rejected for good (`refresh_token_reused`), so two refreshes racing on
the same login can log the user out. `LoginStore` holds the algorithm; where the login lives (a file with a file
lock, or a shared Redis store with a Redis lock) is up to a subclass. Three layers keep a refresh to one:
- an asyncio lock per store: concurrent requests in one gateway wait for the first one's refresh;
- the subclass's shared lock (an `flock`, or a Redis lock with an owner and an expiry): processes wait for each
  other;
- under both locks the stored login is re-read and the refresh is skipped when the tokens there are already fresh
  (or, after an upstream 401, no longer the rejected ones): whoever waited uses what the winner wrote. The rotated
  tokens are written before the shared lock is released.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import LOGIN_HINT
from ..errors import GatewayError
from .auth_file import AuthRecord
from .auth_file import Credentials
from .auth_file import format_iso
from .auth_file import parse_auth_doc
from .oauth import OAuthError
from .oauth import refresh_tokens

__all__ = ["LoginStore", "StoreUnavailable", "fingerprint"]

logger = logging.getLogger(__name__)

PROACTIVE_MARGIN_S = 5 * 60  # refresh when the access token expires within 5 minutes
NO_EXP_MAX_AGE_S = 8 * 24 * 3600  # Codex's TOKEN_REFRESH_INTERVAL, for tokens without a readable `exp`
JUST_REFRESHED_S = 60  # a token this young is not refreshed again, even if its `exp` looks near (clock skew)
BACKOFF_S = (5, 10, 30, 60, 120)  # after transient failures: nobody calls the issuer before this elapsed
UNAVAILABLE_RETRY_S = 5  # what a client is told to wait when the shared store cannot be reached


class StoreUnavailable(Exception):
    """The shared state store cannot be reached (its message names no password, token or secret)."""


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class LoginStore(abc.ABC):
    """Credentials of one stored login, refreshed proactively (near expiry) and reactively (after a 401)."""

    where: str  # where the login lives, for messages (a path, or the store's redacted address)

    def __init__(
        self, issuer: str, *, clock: Callable[[], float] = time.time, http: httpx.AsyncClient | None = None
    ) -> None:
        self.issuer = issuer
        self.clock = clock
        self.http = http
        self.problem: str | None = None  # why the store holds no usable login (safe to show)
        self.last_error: str | None = None  # the last refresh failure (safe to show)
        self.refreshes = 0  # refreshes done by this process, and failed ones (for /metrics)
        self.refresh_failures = 0
        self._lock = asyncio.Lock()
        self._dead_refresh: str | None = None  # fingerprint of a refresh token the issuer rejected for good
        self._retry_at = 0.0  # transient-failure backoff
        self._failures = 0
        self._reactive: tuple[str, float] | None = None  # (token obtained by a 401-refresh, when)
        self._unsaved: AuthRecord | None = None  # refreshed tokens we could not write yet (disk full, store down)
        self._fallback_warned: str | None = None
        self._tasks: set[asyncio.Task[Credentials]] = set()

    # -- what a subclass provides ----------------------------------------------------------------------------

    @abc.abstractmethod
    def load(self, hint: Any = None) -> AuthRecord | None:
        """The login as last read (cheap, no waiting: this runs on every request); None when there is none."""

    @abc.abstractmethod
    async def reread(self) -> AuthRecord | None:
        """The login as the store holds it now (called under the shared lock). Raises StoreUnavailable."""

    @abc.abstractmethod
    async def _write(self, doc: dict[str, Any]) -> None:
        """Stores rotated tokens. Raises OSError or StoreUnavailable."""

    @abc.abstractmethod
    def _shared_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The lock every process sharing this login takes around a refresh. Raises TimeoutError when another
        holder keeps it too long, StoreUnavailable when it cannot be taken at all."""

    def _kept_unsaved(self) -> None:
        """Called when rotated tokens could not be written (they are served from memory meanwhile)."""
        return None

    # -- reading ---------------------------------------------------------------------------------------------

    @property
    def login_required(self) -> bool:
        """True when the store still holds a refresh token the issuer rejected for good."""
        if self._dead_refresh is None:
            return False  # nothing was ever rejected: no need to look at the login (this runs on every request)
        record = self.load()
        return record is not None and self._dead_refresh == fingerprint(record.refresh_token)

    def is_stale(self, record: AuthRecord) -> bool:
        now = self.clock()
        if record.expires_at is None:
            return record.last_refresh is not None and now - record.last_refresh > NO_EXP_MAX_AGE_S
        if record.last_refresh is not None and 0 <= now - record.last_refresh < JUST_REFRESHED_S:
            return record.expires_at <= now
        return record.expires_at - now < PROACTIVE_MARGIN_S

    # -- the two entry points -----------------------------------------------------------------------------

    async def fresh(self, hint: Any = None) -> Credentials:
        """Credentials valid for at least a few minutes, refreshing first if needed (proactive refresh).

        `hint`: what the caller learnt about the stored login just now (a file's stat), passed on to `load`."""
        record = self.load(hint)
        if record is None:
            raise self._no_login()
        if not self.is_stale(record):
            return record.credentials()
        try:
            return await self._refresh_if(self.is_stale)
        except GatewayError as e:
            current = self.load()
            usable = current is not None and (
                # The old token still works for a while: serve with it, the next request tries the refresh again.
                (current.expires_at is not None and current.expires_at > self.clock() + 10)
                # No expiry to go by (an opaque token, refreshed long ago) and only a transient refresh failure:
                # let the backend judge it; a 401 there leads to the reactive refresh.
                or (current.expires_at is None and e.status != 401)
            )
            if current is not None and usable:
                if self._fallback_warned != self.last_error:
                    self._fallback_warned = self.last_error
                    logger.warning("using the token of %s until it expires: %s", current.label, self.last_error)
                return current.credentials()
            raise

    async def after_unauthorized(self, rejected_access_token: str) -> Credentials:
        """After an upstream 401: refresh once, unless the store already holds other tokens (someone rotated)."""
        rejected = fingerprint(rejected_access_token)
        return await self._refresh_if(lambda record: fingerprint(record.access_token) == rejected, rejected=rejected)

    # -- the refresh under both locks ------------------------------------------------------------------------

    async def _refresh_if(self, needed: Callable[[AuthRecord], bool], rejected: str | None = None) -> Credentials:
        # The locked section runs as its own task, shielded: a caller cancelled mid-refresh (its client went
        # away) must neither release the locks early nor drop tokens the issuer has already rotated.
        task = asyncio.get_running_loop().create_task(self._locked(needed, rejected))
        self._tasks.add(task)  # a reference until done, so the task cannot be garbage-collected
        task.add_done_callback(self._task_done)
        return await asyncio.shield(task)

    def _task_done(self, task: asyncio.Task[Credentials]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller that awaited it may be gone

    async def _locked(self, needed: Callable[[AuthRecord], bool], rejected: str | None) -> Credentials:
        async with self._lock:
            try:
                async with self._shared_lock():
                    return await self._refresh_locked(needed, rejected)
            except TimeoutError:
                raise self._transient("another process holds the refresh lock", 5) from None
            except StoreUnavailable as exc:
                raise self._transient(str(exc), UNAVAILABLE_RETRY_S) from None

    async def _refresh_locked(self, needed: Callable[[AuthRecord], bool], rejected: str | None) -> Credentials:
        record = await self.reread()  # always re-read under the lock: another process may have rotated the tokens
        if record is None:
            raise self._no_login()
        if self._unsaved is not None:
            await self._save(self._unsaved.doc)
            record = self.load() or record
        if not needed(record):
            return record.credentials()
        if rejected is not None and self._reactive is not None:
            token, at = self._reactive
            if token == rejected and 0 <= self.clock() - at < JUST_REFRESHED_S:
                # The backend rejects the token our own 401-refresh just obtained: another refresh would not
                # help, and refreshing on every request would hammer the issuer.
                raise GatewayError(
                    401,
                    f"The Codex backend rejected the freshly refreshed ChatGPT login of {record.label}. {LOGIN_HINT}",
                    code="login_required",
                )
        if self._dead_refresh == fingerprint(record.refresh_token):
            raise self._permanent(record, self.last_error or "the refresh token was rejected")
        now = self.clock()
        if now < self._retry_at:
            raise self._transient(self.last_error or "the token endpoint failed", self._retry_at - now)
        if not record.refresh_token:
            raise self._permanent(record, "the stored login holds no refresh token")
        logger.info("refreshing the ChatGPT token of %s", record.label)
        try:
            fields = await refresh_tokens(self.http, self.issuer, record.refresh_token)
        except OAuthError as exc:
            return await self._refresh_failed(record, exc)
        self._failures, self._retry_at, self.last_error = 0, 0.0, None
        await self._save(_rotated(record, fields, self.clock()))
        fresh = self.load()
        if fresh is None:
            raise self._no_login()
        if rejected is not None:
            self._reactive = (fingerprint(fresh.access_token), self.clock())
        self.refreshes += 1
        logger.info("refreshed the ChatGPT token of %s", fresh.label)
        return fresh.credentials()

    async def _save(self, doc: dict[str, Any]) -> None:
        """Writes refreshed tokens; if that fails they live on in memory (the old refresh token is dead now)."""
        try:
            await self._write(doc)
        except (OSError, StoreUnavailable) as exc:
            self._unsaved = parse_auth_doc(doc)
            self._kept_unsaved()
            logger.error("could not save the refreshed tokens to %s (%s); keeping them in memory", self.where, exc)
            return
        self._unsaved = None

    async def _refresh_failed(self, record: AuthRecord, exc: OAuthError) -> Credentials:
        self.last_error = exc.message
        if exc.code == "refresh_token_reused":
            # Someone else (the Codex CLI, another gateway) rotated the tokens: if they are stored, use them.
            with contextlib.suppress(StoreUnavailable):
                again = await self.reread()
                if again is not None and again.refresh_token != record.refresh_token:
                    logger.info("tokens of %s were rotated by another process; using them", again.label)
                    self.last_error = None
                    return again.credentials()
        self.refresh_failures += 1
        if exc.permanent:
            self._dead_refresh = fingerprint(record.refresh_token)
            logger.error("the ChatGPT login of %s is no longer valid: %s", record.label, exc.message)
            raise self._permanent(record, exc.message)
        self._failures += 1
        delay = max(exc.retry_after or 0, BACKOFF_S[min(self._failures, len(BACKOFF_S)) - 1])
        self._retry_at = self.clock() + delay
        logger.warning("refreshing the ChatGPT token of %s failed (%s); retry in %d s", record.label, exc, delay)
        raise self._transient(exc.message, delay)

    # -- errors -------------------------------------------------------------------------------------------

    def _no_login(self) -> GatewayError:
        where = self.problem or f"No ChatGPT login found at {self.where}"
        return GatewayError(401, f"{where}. {LOGIN_HINT}", code="no_login")

    def _permanent(self, record: AuthRecord, reason: str) -> GatewayError:
        return GatewayError(
            401,
            f"The ChatGPT login of {record.label} has expired or was revoked ({reason}). {LOGIN_HINT}",
            code="login_required",
        )

    def _transient(self, reason: str, retry_after: float) -> GatewayError:
        seconds = max(1, int(retry_after + 0.999))
        return GatewayError(
            503,
            f"Could not refresh the ChatGPT login ({reason}). Try again in {seconds} s.",
            code="token_refresh_failed",
            headers={"retry-after": str(seconds)},
        )


def _rotated(record: AuthRecord, fields: dict[str, str], now: float) -> dict[str, Any]:
    """The stored login with the issuer's new tokens (unknown keys kept), as the Codex CLI writes it."""
    doc = dict(record.doc)
    tokens = dict(doc.get("tokens") or {})
    tokens.update(fields)
    if not tokens.get("account_id") and record.account_id:
        tokens["account_id"] = record.account_id
    doc["tokens"] = tokens
    doc["last_refresh"] = format_iso(now)
    doc.setdefault("OPENAI_API_KEY", None)  # the Codex CLI always serializes it
    return doc
