"""The Redis backend: every gateway on every machine shares one account pool.

Keys (under `<prefix>:`): `meta` (a hash saying the store was set up, and whether and with which key its tokens
are sealed), `accounts` (account id -> login in the Codex auth.json layout, sealed with `gateway_state_secret`
when set), `cooldowns` and `quota` (account id -> JSON), `selection` (pin and exclusions, as selection.json),
`catalog` (the model catalog cache), `affinity:<hash>`
(session -> account, with a TTL), `lock:<account id>` (the refresh lock). Every write is a Lua script that writes
only while `meta` exists and publishes what changed on `<prefix>:events`; each gateway keeps the whole state in
memory, subscribed to that channel, and re-reads what a message names, so another gateway's login, cooldown or
rotated tokens apply here within milliseconds, without a restart.

Faults: while Redis is unreachable requests are served from memory (tokens still valid keep working), a refresh
that needs the lock gets a retryable 503, writes wait in a queue, and one line is logged per outage. On its return
the state is read again whole and the queue written. A store that lost its state (restarted without persistence)
is reported, and nothing is written into it until an `accounts import` (or `migrate`) sets it up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import weakref
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import redis
import redis.asyncio
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..errors import GatewayError
from .auth_file import AuthRecord
from .auth_file import parse_auth_doc
from .auth_file import short_id
from .login_store import LoginStore
from .login_store import StoreUnavailable
from .quota import AccountState
from .redis_views import RedisAffinity
from .redis_views import RedisCatalog
from .redis_views import RedisLogin
from .redis_views import RedisQuota
from .redis_views import RedisSelection
from .sealing import Sealer
from .sealing import SealError
from .selection import Selection
from .state import AFFINITY_TTL_S
from .state import AccountScan
from .state import StateConfig

__all__ = ["RedisState", "StoreKeys", "probe"]

logger = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 2.0  # no request waits longer on a Redis that stopped answering
CONNECT_TIMEOUT_S = 1.0
RECONNECT_S = 0.5
CHECK_EVERY_S = 1.0  # how often an idle gateway checks that the store still holds its state
VERSION = "1"

GUARDED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local op = ARGV[1]
if op == 'hset' then redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
elseif op == 'hdel' then redis.call('HDEL', KEYS[2], ARGV[4])
elseif op == 'set' then redis.call('SET', KEYS[2], ARGV[4])
elseif op == 'setex' then redis.call('SET', KEYS[2], ARGV[4], 'EX', ARGV[5])
elseif op == 'cooldown' then
  local cur = redis.call('HGET', KEYS[2], ARGV[4])
  if cur then
    local ok, old = pcall(cjson.decode, cur)
    if ok and type(old) == 'table' and tonumber(old['until'] or 0) >= tonumber(ARGV[6]) then return 0 end
  end
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[5])
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 1
"""
# Compare-and-set of one string key (KEYS[2]) from ARGV[1] ('' = absent) to ARGV[2]; 0 when someone came first.
SWAP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""
SWAP_TRIES = 20


class StoreKeys:
    def __init__(self, prefix: str) -> None:
        p = prefix + ":"
        self.prefix = p
        self.meta, self.accounts, self.cooldowns, self.quota = p + "meta", p + "accounts", p + "cooldowns", p + "quota"
        self.catalog, self.selection, self.channel = p + "catalog", p + "selection", p + "events"

    def lock(self, account: str) -> str:
        return f"{self.prefix}lock:{account}"

    def affinity(self, session_key: str) -> str:
        return f"{self.prefix}affinity:{hashlib.sha256(session_key.encode()).hexdigest()[:32]}"


def _client_options() -> dict[str, Any]:
    return {
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "retry_on_timeout": False,
    }


def probe(config: StateConfig) -> str | None:
    """At start-up, synchronously: raises StoreUnavailable (a clear message, no password) when the store cannot
    be used; returns a warning when it holds no state yet."""
    assert config.url is not None
    try:
        client: Any = redis.Redis.from_url(config.url, retry=redis.retry.Retry(NoBackoff(), 0), **_client_options())
        with contextlib.closing(client):
            client.ping()
            meta = client.hgetall(StoreKeys(config.prefix).meta)
    except RedisError as exc:
        raise StoreUnavailable(f"cannot reach the shared state store {config.address}: {_safe(exc, config)}") from None
    if not meta:
        return (
            f"the shared state store {config.address} holds no accounts yet (`accounts import` or `migrate` sets it up)"
        )
    problem = Sealer(config.secret).problem_with(meta.get(b"sealed") == b"1", meta.get(b"check", b""))
    if problem:
        raise StoreUnavailable(f"cannot use the shared state store {config.address}: {problem}")
    return None


def _safe(exc: BaseException, config: StateConfig) -> str:
    """An exception's message with the URL's password (if any) taken out."""
    text = f"{type(exc).__name__}: {exc}"
    from urllib.parse import urlsplit

    password = urlsplit(config.url or "").password
    return text.replace(password, "***") if password else text


class RedisState:
    kind = "redis"

    def __init__(
        self,
        config: StateConfig,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
        listen: bool = True,
        may_initialize: bool = False,
    ) -> None:
        """`listen`: follow other gateways' changes (a gateway) or not (a command). `may_initialize`: whether
        adding a login may set up an empty store (commands may; a gateway never invents state)."""
        assert config.url is not None
        self.config = config
        self.address = f"{config.address} (prefix {config.prefix})"
        self.keys = StoreKeys(config.prefix)
        self.issuer, self.clock, self.http = issuer, clock, http
        self.listen, self.may_initialize = listen, may_initialize
        self.sealer = Sealer(config.secret)
        self.quota = RedisQuota(self)
        self.affinity = RedisAffinity(self, AFFINITY_TTL_S)
        self.catalog = RedisCatalog(self)
        self.selection = RedisSelection(self)
        self.unsaved: set[RedisLogin] = set()
        self.is_down = False
        self.empty = False  # the store holds no state (never set up, or lost it)
        # One asyncio client per event loop (a command may run several loops one after another); typed loosely:
        # its answers are bytes here, never `str`.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._records: dict[str, AuthRecord | None] = {}
        self._stores: dict[str, RedisLogin] = {}
        self._scan = AccountScan()
        self._loaded: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._queue: list[tuple[Callable[[], Awaitable[Any]], bool]] = []
        self._pending_keys: set[str] = set()
        self._writer: asyncio.Task[None] | None = None
        self._draining = asyncio.Lock()  # one drain at a time: an op is written once
        self._closed = False

    def __repr__(self) -> str:
        return f"RedisState({self.address!r})"

    def client(self) -> Any:
        """The redis.asyncio client of the running event loop."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = redis.asyncio.Redis.from_url(
                self.config.url or "", retry=redis.asyncio.retry.Retry(NoBackoff(), 0), **_client_options()
            )
        return client

    # -- the backend interface (reads from memory) ---------------------------------------------------------------

    def scan(self) -> AccountScan:
        return self._scan

    def record(self, key: str) -> AuthRecord | None:
        return self._records.get(key)

    def unavailable(self) -> GatewayError | None:
        if self.empty:
            return GatewayError(
                503,
                f"The shared account store {self.config.address} holds no gateway state (was Redis restarted "
                "without persistence?). The gateway does not recreate it: restore it with `accounts import`.",
                code="state_store_empty",
                headers={"retry-after": "30"},
            )
        return None

    def no_login_message(self) -> str:
        return f"No ChatGPT login in the shared store {self.address}."

    def source(self, store: LoginStore) -> str:
        return "redis"

    def put_login(self, doc: dict[str, Any]) -> str:
        record = parse_auth_doc(doc)
        self._set_record(record.account_id, record)
        raw = self.sealer.seal(orjson.dumps(doc))
        self.queue(lambda: self._guarded("hset", self.keys.accounts, f"a:{record.account_id}", record.account_id, raw))
        return f"{self.address} (account {short_id(record.account_id)})"

    def remove_login(self, key: str) -> list[str]:
        if key not in self._records:
            return []
        self._set_record(key, None)
        self.queue(lambda: self._guarded("hdel", self.keys.accounts, f"a:{key}", key))
        return [f"{self.address} (account {short_id(key)})"]

    def use_http(self, http: httpx.AsyncClient) -> None:
        self.http = http
        for store in self._stores.values():
            store.http = http

    async def ready(self) -> None:
        if self._loaded is None:
            self._loaded = asyncio.get_running_loop().create_future()
            self._spawn(self._follow() if self.listen else self._load_once())
        if self._loaded.done():  # (maybe in another event loop: a command's earlier `asyncio.run`)
            self._loaded.result()
            return
        await asyncio.shield(self._loaded)

    async def flush(self) -> None:
        await self._drain(raise_errors=True)

    async def aclose(self) -> None:
        """Writes what is queued (a command learns here whether its changes were stored), then disconnects."""
        self._closed = True
        try:
            await self._drain(raise_errors=True)
        finally:
            for task in list(self._tasks):
                task.cancel()
            client = self._clients.pop(asyncio.get_running_loop(), None)
            if client is not None:
                await client.aclose()

    # -- the store's own operations ------------------------------------------------------------------------------

    async def initialize(self) -> None:
        """Sets up an empty store (commands only): `meta` with whether and how tokens are sealed."""
        meta = {"version": VERSION, "sealed": "1" if self.sealer.sealed else "0", "check": self.sealer.check_value()}
        client = self.client()
        try:
            created = await client.hsetnx(self.keys.meta, "version", VERSION)
            if created:
                await client.hset(self.keys.meta, mapping={**meta, "created_at": str(time.time())})
                await client.publish(self.keys.channel, "*")
                self.empty = False
                return
            current = await client.hgetall(self.keys.meta)
        except RedisError as exc:
            raise StoreUnavailable(f"cannot reach {self.config.address}: {_safe(exc, self.config)}") from None
        problem = self.sealer.problem_with(current.get(b"sealed") == b"1", current.get(b"check", b""))
        if problem:
            raise StoreUnavailable(f"cannot use the shared state store {self.config.address}: {problem}")

    async def fetch_login(self, key: str) -> AuthRecord | None:
        try:
            raw = await self.client().hget(self.keys.accounts, key)
        except RedisError as exc:
            self.down(exc)
            raise StoreUnavailable(f"the shared state store is unreachable ({type(exc).__name__})") from None
        self._apply_login(key, raw)
        return self._records.get(key)

    async def write_login(self, key: str, doc: dict[str, Any]) -> None:
        raw = self.sealer.seal(orjson.dumps(doc))
        try:
            done = await self._guarded("hset", self.keys.accounts, f"a:{key}", key, raw)
        except RedisError as exc:
            self.down(exc)
            raise StoreUnavailable(f"the shared state store is unreachable ({type(exc).__name__})") from None
        if done == -1:
            raise StoreUnavailable("the shared state store lost its state")
        self._set_record(key, parse_auth_doc(doc))

    async def write_account_state(self, key: str, state: AccountState) -> None:
        if state.cooldown_until:
            doc = orjson.dumps({"until": state.cooldown_until, "reason": state.cooldown_reason})
            await self._guarded("cooldown", self.keys.cooldowns, f"s:{key}", key, doc, str(state.cooldown_until))
        if state.quota:
            await self._guarded("hset", self.keys.quota, f"s:{key}", key, orjson.dumps(state.quota))

    async def write_affinity(self, session_key: str, account: str, ttl: int) -> None:
        await self._guarded("setex", self.keys.affinity(session_key), "", account, str(ttl))

    async def read_affinity(self, session_key: str) -> str | None:
        if self.is_down or self.empty:
            return None
        try:
            raw = await self.client().get(self.keys.affinity(session_key))
        except RedisError as exc:
            self.down(exc)
            return None
        return raw.decode() if raw else None

    async def write_selection(self, change: Callable[[Selection], Selection]) -> int:
        """Applies `change` to the stored selection; retried while other writers come first."""
        for _ in range(SWAP_TRIES):
            raw = await self.client().get(self.keys.selection) or b""
            try:
                before = Selection.from_json(orjson.loads(raw)) if raw else Selection()
            except ValueError:
                before = Selection()  # unreadable: replaced, as the file backend refuses to; the store is ours
            after = orjson.dumps(change(before).to_json())
            args = (raw, after, self.keys.channel, "l")
            done = int(await self.client().eval(SWAP, 2, self.keys.meta, self.keys.selection, *args))
            if done != 0:
                if done == 1:
                    self.selection.adopt(after)
                return done
        raise StoreUnavailable("the pin and exclusions kept changing under this command; try again")

    async def write_catalog(self, raw: bytes) -> None:
        await self._guarded("set", self.keys.catalog, "c", raw)

    async def _guarded(self, op: str, target: str, message: str, *args: Any) -> Any:
        return await self.client().eval(GUARDED, 2, self.keys.meta, target, op, self.keys.channel, message, *args)

    # -- the write queue -------------------------------------------------------------------------------------

    def queue(self, op: Callable[[], Awaitable[Any]], *, droppable: bool = False, key: str | None = None) -> None:
        """Writes `op` soon (in order). `droppable` ops are dropped rather than kept through an outage; an op with
        a `key` is not queued twice (it writes the latest value when it runs)."""
        if droppable and (self.is_down or self.empty):
            return
        if key is not None:
            if key in self._pending_keys:
                return
            self._pending_keys.add(key)
            op = self._unmarking(key, op)
        self._queue.append((op, droppable))
        self._kick()

    def _unmarking(self, key: str, op: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            self._pending_keys.discard(key)  # a change from now on queues the op again
            return await op()

        return run

    def _kick(self) -> None:
        if self._writer is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # a command's synchronous part: written at `aclose`
        self._writer = loop.create_task(self._drain())
        self._writer.add_done_callback(lambda _: setattr(self, "_writer", None))

    async def _drain(self, raise_errors: bool = False) -> None:
        async with self._draining:
            await self._drain_locked(raise_errors)

    async def _drain_locked(self, raise_errors: bool) -> None:
        while self._queue:
            op, droppable = self._queue[0]
            try:
                if await op() == -1 and not droppable:  # the store holds no state
                    if not self.may_initialize:
                        self._queue.pop(0)  # never written into a store that lost its state: that would invent it
                        self._report_empty()
                        continue
                    await self.initialize()
                    await op()
            except StoreUnavailable:
                if raise_errors:
                    raise
                self._queue.pop(0)
                continue
            except RedisError as exc:
                if droppable:
                    self._queue.pop(0)
                    continue
                self.down(exc)
                if raise_errors:
                    reason = _safe(exc, self.config)
                    raise StoreUnavailable(f"could not write to {self.config.address}: {reason}") from None
                return  # kept: written when the store is back
            self._queue.pop(0)

    # -- following the store ---------------------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _load_once(self) -> None:
        assert self._loaded is not None
        try:
            await self._reload()
        except RedisError as exc:
            self._loaded.set_exception(
                StoreUnavailable(f"cannot reach {self.config.address}: {_safe(exc, self.config)}")
            )
            self._loaded.exception()  # retrieved here too: nobody may be waiting
            return
        self._loaded.set_result(None)

    async def _follow(self) -> None:
        """Subscribed to the store's changes for as long as the gateway runs; reconnects after an outage."""
        assert self._loaded is not None
        while not self._closed:
            pubsub = self.client().pubsub()
            try:
                await pubsub.subscribe(self.keys.channel)
                await self._reload()  # after subscribing: no change can fall between the two
                if not self._loaded.done():
                    self._loaded.set_result(None)
                self._up()
                await self._listen(pubsub)
            except (RedisError, OSError) as exc:
                self.down(exc)
                if not self._loaded.done():
                    self._loaded.set_exception(StoreUnavailable(f"cannot reach {self.config.address}"))
                    self._loaded.exception()
                await asyncio.sleep(RECONNECT_S)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def _listen(self, pubsub: Any) -> None:
        checked = time.monotonic()
        while not self._closed:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=CHECK_EVERY_S)
            if message is not None and message.get("type") == "message":
                await self._on_event(bytes(message["data"]))
            if time.monotonic() - checked >= CHECK_EVERY_S:
                checked = time.monotonic()
                # Also a liveness check: a Redis that stopped answering raises a timeout here.
                has_state = bool(await self.client().exists(self.keys.meta))
                if has_state == self.empty:
                    await self._reload()

    async def _on_event(self, data: bytes) -> None:
        kind, _, key = data.decode(errors="replace").partition(":")
        client = self.client()
        if kind == "a" and key:
            self._apply_login(key, await client.hget(self.keys.accounts, key))
        elif kind == "s" and key:
            pipe = client.pipeline(transaction=False)  # one round trip
            pipe.hget(self.keys.cooldowns, key)
            pipe.hget(self.keys.quota, key)
            cooldown, quota = await pipe.execute()
            self.quota.merge(key, _account_state(cooldown, quota))
        elif kind == "c":
            self.catalog.doc = _json_object(await client.get(self.keys.catalog))
        elif kind == "l":
            self.selection.adopt(await client.get(self.keys.selection))
        else:
            await self._reload()

    async def _reload(self) -> None:
        """Reads the whole state (at start, after an outage, and when the store gained or lost its state)."""
        pipe = self.client().pipeline(transaction=False)
        for key in (self.keys.meta, self.keys.accounts, self.keys.cooldowns, self.keys.quota):
            pipe.hgetall(key)
        pipe.get(self.keys.catalog)
        pipe.get(self.keys.selection)
        meta, accounts, cooldowns, quota, catalog, selection = await pipe.execute()
        if not meta:
            self._report_empty()
            for key in list(self._records):
                self._set_record(key, None)  # nothing is served from a store that lost its state
            return
        if self.empty:
            logger.warning("codex-gateway: the shared state store %s holds state again", self.address)
            self.quota.forget()  # what was learnt meanwhile was never stored: the store's state is the truth
        self.empty = False
        for key in [k for k in self._records if k.encode() not in accounts]:
            self._set_record(key, None)
        for raw_key, raw in accounts.items():
            self._apply_login(raw_key.decode(), raw)
        for raw_key in set(cooldowns) | set(quota):
            self.quota.merge(raw_key.decode(), _account_state(cooldowns.get(raw_key), quota.get(raw_key)))
        self.catalog.doc = _json_object(catalog)
        self.selection.adopt(selection)
        for store in list(self.unsaved):
            self.unsaved.discard(store)
            self._spawn(store.save_unsaved())
        self._kick()

    def _report_empty(self) -> None:
        if not self.empty:
            self.empty = True
            if self.may_initialize:
                return  # a command: adding a login sets the store up
            logger.error(
                "codex-gateway: the shared state store %s holds no gateway state (never set up, or Redis restarted "
                "without persistence); not recreating it: restore it with `accounts import` or `accounts migrate`",
                self.address,
            )

    # -- the in-memory copy --------------------------------------------------------------------------------

    def _apply_login(self, key: str, raw: bytes | None) -> None:
        if raw is None:
            self._set_record(key, None)
            return
        store = self._store(key)
        try:
            record = parse_auth_doc(orjson.loads(self.sealer.open(raw)))
        except (SealError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            store.problem = f"the login of account {short_id(key)} in {self.address} {exc}"
            self._set_record(key, None, keep=True)
            return
        store.problem = None
        self._set_record(key, record)

    def _store(self, key: str) -> RedisLogin:
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = RedisLogin(self, key, self.issuer, clock=self.clock, http=self.http)
        return store

    def _set_record(self, key: str, record: AuthRecord | None, *, keep: bool = False) -> None:
        """Updates the copy; a new scan only when the set of accounts changed (the pool keeps its own per scan)."""
        known = key in self._records
        if record is None and not keep:
            self._records.pop(key, None)
        else:
            self._records[key] = record
            self._store(key)
        if known != (key in self._records):
            self._scan = AccountScan({k: [self._store(k)] for k in sorted(self._records)})

    # -- outages ---------------------------------------------------------------------------------------------

    def down(self, exc: BaseException) -> None:
        """Called on every failed Redis call; logs once per outage."""
        if not self.is_down:
            self.is_down = True
            logger.error(
                "codex-gateway: the shared state store %s is unreachable (%s); serving from memory, token refreshes "
                "wait until it is back",
                self.address,
                _safe(exc, self.config),
            )

    def _up(self) -> None:
        if self.is_down:
            self.is_down = False
            logger.warning("codex-gateway: the shared state store %s is reachable again", self.address)


def _json_object(raw: bytes | None) -> dict[str, Any] | None:
    try:
        doc = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return None
    return doc if isinstance(doc, dict) else None


def _account_state(cooldown: bytes | None, quota: bytes | None) -> AccountState:
    c = _json_object(cooldown) or {}
    until, reason = c.get("until"), c.get("reason")
    return AccountState(
        quota=_json_object(quota),
        cooldown_until=float(until) if isinstance(until, int | float) else 0.0,
        cooldown_reason=reason if isinstance(reason, str) else None,
    )
