"""Quota snapshots from `x-codex-*` headers, cooldowns, and their persistence in `gateway_home/state.json`.

Cooldowns are stored as absolute unix times and compared with the clock on every read, so they end by
themselves at the reset time: no timer, nothing to get stuck (the peers' most reported multi-account bug).
Several gateways may share the state file; writes merge under a lock (newest snapshot, latest cooldown win).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import orjson

from .token_store import atomic_write_json
from .token_store import sync_file_lock

__all__ = [
    "AccountState",
    "StateFile",
    "RateLimitParser",
    "decode_fields",
    "parse_rate_limit_headers",
    "resets_at_from_error",
    "MAX_COOLDOWN_S",
]

logger = logging.getLogger(__name__)

MAX_COOLDOWN_S = 8 * 24 * 3600  # the weekly window plus a day: a larger reset time is a bug, not a limit
DEFAULT_COOLDOWN_S = 60  # a usage-limit 429 without any reset time
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_rate_limit_headers(headers: Mapping[str, str], now: float) -> dict[str, Any] | None:
    """The rate-limit headers as a JSON-able snapshot; None when the response has none.

    The backend sends them on 200s and 429s: `x-codex-{primary,secondary}-{used-percent,window-minutes,reset-at,
    reset-after-seconds}` (typically the 5-hour and the weekly window), `x-codex-plan-type`,
    `x-codex-active-limit` and `x-codex-credits-*`."""
    return _parse(headers, now)[0]


def decode_fields(fields: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """Raw header fields by lower-case name (latin-1, as HTTP allows; the last of repeated names wins)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in fields}


class RateLimitParser:
    """`parse_rate_limit_headers` for every answer of an account, without parsing the same headers twice.

    Consecutive answers mostly repeat the previous quota headers (the values move by a percent at a time), and
    a snapshot depends on `now` only through its `at` and through relative reset times (`reset-after-seconds`
    without `reset-at`). So the last parse per account is kept and, for the same headers, reused with a new `at`.
    """

    def __init__(self) -> None:
        # account key -> (header items or raw fields, snapshot, whether it holds reset times relative to `now`)
        self._last: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None, bool]] = {}

    def parse(self, account: str, headers: Mapping[str, str], now: float) -> dict[str, Any] | None:
        return self._memo(account, tuple(headers.items()), lambda: headers, now)

    def parse_fields(self, account: str, fields: tuple[tuple[bytes, bytes], ...], now: float) -> dict[str, Any] | None:
        """The same for raw header fields (latin-1), decoded only when they differ from the last answer's."""
        return self._memo(account, fields, lambda: decode_fields(fields), now)

    def _memo(
        self, account: str, items: tuple[Any, ...], headers: Callable[[], Mapping[str, str]], now: float
    ) -> dict[str, Any] | None:
        last = self._last.get(account)
        if last is not None and last[0] == items and not last[2]:
            snapshot = last[1]
            if snapshot is None:
                return None
            # Every answer gets its own snapshot; the window entries are shared (snapshots are never modified).
            fresh = dict(snapshot)
            fresh["at"] = now
            return fresh
        snapshot, relative = _parse(headers(), now)
        self._last[account] = (items, snapshot, relative)
        return snapshot


def _parse(headers: Mapping[str, str], now: float) -> tuple[dict[str, Any] | None, bool]:
    """The snapshot, and whether a reset time in it was computed from `now` (`reset-after-seconds` alone)."""
    h = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    snapshot: dict[str, Any] = {"at": now}
    relative = False
    for window in ("primary", "secondary"):
        prefix = f"x-codex-{window}-"
        used = _num(h.get(prefix + "used-percent"))
        if used is None:
            continue
        entry: dict[str, Any] = {"used_percent": used}
        minutes = _num(h.get(prefix + "window-minutes"))
        if minutes is not None:
            entry["window_minutes"] = int(minutes)
        resets_at = _epoch(_num(h.get(prefix + "reset-at")))
        after = _num(h.get(prefix + "reset-after-seconds"))
        if resets_at is None and after is not None:
            resets_at = now + after
            relative = True
        if resets_at is not None:
            entry["resets_at"] = resets_at
        snapshot[window] = entry
    for name, key in (("plan_type", "x-codex-plan-type"), ("active_limit", "x-codex-active-limit")):
        if h.get(key):
            snapshot[name] = h[key]
    credits: dict[str, bool | float] = {
        name: value
        for name in ("has-credits", "unlimited")
        if (value := _bool(h.get(f"x-codex-credits-{name}"))) is not None
    }
    if (balance := _num(h.get("x-codex-credits-balance"))) is not None:
        credits["balance"] = balance
    if credits:
        snapshot["credits"] = {k.replace("-", "_"): v for k, v in credits.items()}
    return (snapshot if len(snapshot) > 1 else None), relative


def exhausted_until(snapshot: Mapping[str, Any], now: float) -> float | None:
    """The latest reset time among windows at >= 100 % (both can be exhausted; the later one decides)."""
    until = None
    for window in ("primary", "secondary"):
        entry = snapshot.get(window)
        if isinstance(entry, dict) and entry.get("used_percent", 0) >= 100 and entry.get("resets_at", 0) > now:
            until = max(until or 0.0, float(entry["resets_at"]))
    return until


def effective_used(snapshot: Mapping[str, Any] | None, window: str, now: float) -> float:
    """Used percent of a window, 0 once its reset time has passed (the snapshot is older than the reset)."""
    entry = snapshot.get(window) if snapshot else None
    if not isinstance(entry, dict):
        return 0.0
    resets_at = entry.get("resets_at")
    if isinstance(resets_at, int | float) and resets_at <= now:
        return 0.0
    used = entry.get("used_percent")
    return float(used) if isinstance(used, int | float) else 0.0


def resets_at_from_error(body: bytes | Mapping[str, Any], now: float | None = None) -> float | None:
    """The reset time of a 429 `usage_limit_reached` body (`resets_at`, else now + `resets_in_seconds`)."""
    if isinstance(body, bytes | bytearray):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
    err = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        return None
    at = err.get("resets_at")
    if isinstance(at, int | float) and not isinstance(at, bool):
        return _epoch(float(at))
    seconds = err.get("resets_in_seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return (time.time() if now is None else now) + float(seconds)
    return None


@dataclass
class AccountState:
    quota: dict[str, Any] | None = None
    cooldown_until: float = 0.0
    cooldown_reason: str | None = None

    def cooling(self, now: float) -> bool:
        return self.cooldown_until > now

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.quota:
            out["quota"] = self.quota
        if self.cooldown_until:
            out["cooldown_until"] = self.cooldown_until
            out["cooldown_reason"] = self.cooldown_reason
        return out

    @classmethod
    def from_json(cls, data: Any) -> AccountState:
        if not isinstance(data, dict):
            return cls()
        quota = data.get("quota") if isinstance(data.get("quota"), dict) else None
        until = data.get("cooldown_until")
        reason = data.get("cooldown_reason")
        return cls(
            quota=quota,
            cooldown_until=float(until) if isinstance(until, int | float) else 0.0,
            cooldown_reason=reason if isinstance(reason, str) else None,
        )

    def merge(self, other: AccountState) -> None:
        """Combines what another gateway saw: the newer snapshot, the later cooldown."""
        if other.quota and (not self.quota or other.quota.get("at", 0) > self.quota.get("at", 0)):
            self.quota = other.quota
        if other.cooldown_until > self.cooldown_until:
            self.cooldown_until, self.cooldown_reason = other.cooldown_until, other.cooldown_reason


@dataclass
class StateFile:
    """`state.json`: `{"version": 1, "accounts": {account_id: AccountState}}`, reloaded when another gateway writes."""

    path: Path
    accounts: dict[str, AccountState] = field(default_factory=dict)
    _stamp: tuple[int, int, int] | None = None

    def get(self, key: str) -> AccountState:
        state = self.accounts.get(key)  # not setdefault: that would build a state on every call
        if state is None:
            state = self.accounts[key] = AccountState()
        return state

    def reload_if_changed(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            for key, theirs in self._read().items():
                self.get(key).merge(theirs)
            self._stamp = stamp

    def save(self, now: float) -> None:
        """Read-merge-write under a lock, so two gateways never erase each other's cooldowns."""
        try:
            with sync_file_lock(self.path.with_name(self.path.name + ".lock")):
                for key, theirs in self._read().items():
                    self.get(key).merge(theirs)
                doc = {
                    "version": 1,
                    "accounts": {
                        k: v.to_json() for k, v in sorted(self.accounts.items()) if v.quota or v.cooldown_until > now
                    },
                }
                # Not fsynced: this is a cache of what the backend told us; losing it on a power cut is harmless.
                atomic_write_json(self.path, doc, durable=False)
                st = self.path.stat()
                self._stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError as exc:
            logger.warning("could not save %s: %s", self.path, exc)

    def _read(self) -> dict[str, AccountState]:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return {}
        accounts = doc.get("accounts") if isinstance(doc, dict) else None
        if not isinstance(accounts, dict):
            return {}
        return {str(k): AccountState.from_json(v) for k, v in accounts.items()}


def _num(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _epoch(value: float | None) -> float | None:
    """Unix seconds; a millisecond timestamp (some proxies rewrite them) is scaled down."""
    if value is None or value <= 0:
        return None
    return value / 1000 if value > 1e12 else value


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None
