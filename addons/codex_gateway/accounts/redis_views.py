"""The parts of the Redis backend the pool reads on every request, all served from the backend's memory: a
login (`RedisLogin`, refreshed under the Redis lock), cooldowns and quota snapshots, conversation affinity and
the model catalog cache. What they learn is queued for writing (`RedisState.queue`): no request waits for Redis.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING
from typing import Any

import httpx
import orjson

from .auth_file import AuthRecord
from .auth_file import short_id
from .file_state import STICKY_MAX
from .login_store import LoginStore
from .quota import AccountState
from .redis_lock import RELEASE
from .redis_lock import redis_lock
from .selection import Selection

if TYPE_CHECKING:
    from .redis_state import RedisState

__all__ = ["RedisLogin", "RedisQuota", "RedisAffinity", "RedisCatalog", "RedisSelection"]

AFFINITY_REWRITE_S = 600  # an unchanged affinity is written again (its TTL renewed) at most this often


class RedisLogin(LoginStore):
    """One account's login in the shared store: read from memory, re-read and rotated under the Redis lock."""

    def __init__(
        self,
        state: RedisState,
        key: str,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(issuer, clock=clock, http=http)
        self.state = state
        self.key = key
        self.where = f"{state.address} (account {short_id(key)})"
        self._unsaved_base: str | None = None  # the refresh token our unsaved tokens replaced

    def __repr__(self) -> str:
        return f"RedisLogin({short_id(self.key)!r})"

    def load(self, hint: Any = None) -> AuthRecord | None:
        if self._unsaved is not None:
            return self._unsaved
        return self.state.record(self.key)

    async def reread(self) -> AuthRecord | None:
        record = await self.state.fetch_login(self.key)
        if self._unsaved is not None and (record is None or record.refresh_token != self._unsaved_base):
            self._unsaved = None  # the store holds another login now (an import): ours is outdated
        return self._unsaved or record

    async def _write(self, doc: dict[str, Any]) -> None:
        await self.state.write_login(self.key, doc)

    def _kept_unsaved(self) -> None:
        stored = self.state.record(self.key)
        self._unsaved_base = stored.refresh_token if stored is not None else None
        self.state.unsaved.add(self)

    def _shared_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        client, key = self.state.client(), self.state.keys.lock(self.key)

        def release_later(owner: str) -> None:  # when the store is back: not a lock expiry's wait for the next one
            self.state.queue(lambda: client.eval(RELEASE, 1, key, owner))

        return _as_none(redis_lock(client, key, on_error=self.state.down, on_unreleased=release_later))

    async def save_unsaved(self) -> None:
        """After an outage: writes the tokens rotated meanwhile (under the lock, after re-reading)."""
        if self._unsaved is not None:
            await self._refresh_if(lambda record: False)


@contextlib.asynccontextmanager
async def _as_none(lock: contextlib.AbstractAsyncContextManager[str]) -> Any:
    async with lock:
        yield None


class RedisQuota:
    """Cooldowns and quota snapshots: kept in memory, merged with what other gateways publish, written on `save`."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.accounts: dict[str, AccountState] = {}
        self._written: dict[str, tuple[float, float]] = {}  # key -> (quota `at`, cooldown) last queued

    def get(self, key: str) -> AccountState:
        state = self.accounts.get(key)
        if state is None:
            state = self.accounts[key] = AccountState()
        return state

    def reload_if_changed(self) -> None:
        return None  # other gateways' changes arrive by notification

    def save(self, now: float) -> None:
        for key, state in self.accounts.items():
            seen = ((state.quota or {}).get("at", 0.0), state.cooldown_until)
            if self._written.get(key, (0.0, 0.0)) != seen:
                self._written[key] = seen
                self.state.queue(functools.partial(self.state.write_account_state, key, state), key=f"s:{key}")

    def forget(self) -> None:
        self.accounts.clear()
        self._written.clear()

    def merge(self, key: str, theirs: AccountState) -> None:
        state = self.get(key)
        state.merge(theirs)
        self._written[key] = ((state.quota or {}).get("at", 0.0), state.cooldown_until)


class RedisAffinity:
    """Session key -> account: a local LRU in front of `affinity:<hash>` keys with a TTL shared by all gateways."""

    shared = True

    def __init__(self, state: RedisState, ttl: int) -> None:
        self.state = state
        self.ttl = ttl
        self._local: OrderedDict[str, tuple[str, float]] = OrderedDict()  # session -> (account, written at)

    def get(self, session_key: str) -> str | None:
        entry = self._local.get(session_key)
        return entry[0] if entry is not None else None

    async def fetch(self, session_key: str) -> str | None:
        account = await self.state.read_affinity(session_key)
        if account is not None:
            self._remember(session_key, account, time.monotonic())
        return account

    def set(self, session_key: str, account_key: str) -> None:
        entry = self._local.get(session_key)
        now = time.monotonic()
        if entry is not None and entry[0] == account_key and now - entry[1] < AFFINITY_REWRITE_S:
            self._local.move_to_end(session_key)
            return
        self._remember(session_key, account_key, now)
        self.state.queue(lambda: self.state.write_affinity(session_key, account_key, self.ttl), droppable=True)

    def _remember(self, session_key: str, account_key: str, at: float) -> None:
        self._local[session_key] = (account_key, at)
        self._local.move_to_end(session_key)
        while len(self._local) > STICKY_MAX:
            self._local.popitem(last=False)


class RedisCatalog:
    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.where = f"{state.address} (model catalog)"
        self.doc: dict[str, Any] | None = None

    def read(self) -> dict[str, Any] | None:
        return self.doc

    def write(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        raw = orjson.dumps(doc)
        self.state.queue(lambda: self.state.write_catalog(raw))


class RedisSelection:
    """Pin and exclusions: changed here at once, stored with a compare-and-set (so two commands never undo each
    other's change), and followed when another gateway or command changes them."""

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.where = f"{state.address} (pin and exclusions)"
        self.problem: str | None = None
        self._current = Selection()

    def current(self) -> Selection:
        return self._current

    def update(self, change: Callable[[Selection], Selection]) -> Selection:
        self._current = change(self._current)
        self.state.queue(lambda: self.state.write_selection(change))
        return self._current

    def adopt(self, raw: bytes | None) -> None:
        try:
            self._current, self.problem = (Selection.from_json(orjson.loads(raw)) if raw else Selection()), None
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            self._current, self.problem = Selection(), f"{self.where} {exc}; ignored"
