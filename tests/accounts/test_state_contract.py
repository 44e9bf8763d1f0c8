"""The state backends against one contract: the files (today's layout) and Redis (a real redis-server on a free
loopback port). Two backend instances on the same store stand for two gateways."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.backends import open_backend
from codex_gateway.accounts.pool import AccountPool
from codex_gateway.accounts.pool import Lease
from codex_gateway.accounts.selection import Selection
from codex_gateway.accounts.state import StateBackend
from codex_gateway.accounts.state import StateConfig

from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens
from scripts.redis_server import RedisServer
from scripts.redis_server import missing_reason

HOUR = 3600


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if (why := missing_reason()) is not None:
        pytest.skip(why)
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer(access_ttl=30 * 24 * HOUR) as fake:
        yield fake


class Store:
    """Opens backends (gateways, and a command that sets the store up) on one store of the given kind."""

    def __init__(self, kind: str, tmp_path: Path, issuer: FakeIssuer, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        self.homes = tmp_path / "codex", tmp_path / "gateway"
        self.issuer = issuer
        self.config = StateConfig()
        if kind == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            self.config = StateConfig(server.url, prefix=f"t{time.monotonic_ns()}")
        self.opened: list[StateBackend] = []

    def open(self, *, command: bool = False) -> StateBackend:
        backend = open_backend(self.config, *self.homes, self.issuer.url, command=command)
        self.opened.append(backend)
        return backend

    def pool(self) -> AccountPool:
        return AccountPool(*self.homes, self.issuer.url, backend=self.open())

    async def seed(self, tokens: IssuedTokens, last_refresh: float | None = None) -> None:
        command = self.open(command=True)
        command.put_login(tokens.auth_json(format_iso(last_refresh or time.time() - HOUR)))
        await command.flush()


@pytest.fixture(params=["files", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, issuer: FakeIssuer) -> AsyncIterator[Store]:
    s = Store(request.param, tmp_path, issuer, request)
    yield s
    for backend in s.opened:
        await backend.aclose()


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> None:
    """Waits for another gateway's change to arrive (a notification), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the change never arrived"
        await asyncio.sleep(0.01)


def cooldown_of(pool: AccountPool, key: str) -> float:
    """What `status` (which reads the store as a request would) says about the account's cooldown."""
    return next((row["cooldown_until"] or 0.0 for row in pool.status() if row["account_id"] == key), 0.0)


def login(issuer: FakeIssuer, email: str = "a@example.com", **kw: int) -> IssuedTokens:
    return issuer.issue(issuer.add_account(email), **kw)


async def test_a_login_added_elsewhere_serves_here(store: Store, issuer: FakeIssuer) -> None:
    pool = store.pool()
    await pool.backend.ready()
    tokens = login(issuer)
    await store.seed(tokens)
    await eventually(lambda: tokens.account_id in pool.status()[0]["account_id"] if pool.status() else False)
    lease = await pool.acquire()
    assert lease.credentials.access_token == tokens.access_token


async def test_a_removed_login_is_gone_everywhere(store: Store, issuer: FakeIssuer) -> None:
    tokens = login(issuer)
    await store.seed(tokens)
    pool = store.pool()
    await pool.acquire()
    command = store.open(command=True)
    await command.ready()
    assert command.remove_login(tokens.account_id)
    await command.flush()
    await eventually(lambda: pool.status() == [])


async def test_a_cooldown_seen_by_one_gateway_cools_the_account_on_the_other(store: Store, issuer: FakeIssuer) -> None:
    first, second = login(issuer, "a@example.com"), login(issuer, "b@example.com")
    await store.seed(first)
    await store.seed(second)
    a, b = store.pool(), store.pool()
    lease = await a.acquire()
    await b.acquire()
    a.cool_down(lease, time.time() + HOUR)
    await a.backend.flush()
    await eventually(lambda: cooldown_of(b, lease.key) > time.time())
    for _ in range(3):
        assert (await b.acquire()).key != lease.key


async def test_a_later_cooldown_is_never_shortened_by_an_earlier_one(store: Store, issuer: FakeIssuer) -> None:
    tokens = login(issuer)
    await store.seed(tokens)
    a, b = store.pool(), store.pool()
    lease = await a.acquire()
    await b.acquire()
    a.cool_down(lease, time.time() + 2 * HOUR)
    await a.backend.flush()
    b.cool_down(Lease(lease.key, lease.credentials), time.time() + HOUR)
    await b.backend.flush()
    fresh = store.pool()
    await fresh.backend.ready()
    await eventually(lambda: cooldown_of(fresh, lease.key) > time.time() + 1.5 * HOUR)


async def test_refresh_is_single_flight_across_gateways(store: Store, issuer: FakeIssuer) -> None:
    tokens = login(issuer, expires_in=-60)
    await store.seed(tokens, time.time() - 2 * 24 * HOUR)
    issuer.refresh_delay = 0.2  # widens the race window
    pools = [store.pool() for _ in range(3)]
    leases = await asyncio.gather(*(p.acquire() for p in pools for _ in range(10)))
    assert issuer.count("refresh_token") == 1
    assert len({lease.credentials.access_token for lease in leases}) == 1
    assert leases[0].credentials.access_token != tokens.access_token


async def test_the_model_catalog_cache_is_shared(store: Store, issuer: FakeIssuer) -> None:
    await store.seed(login(issuer))
    a, b = store.open(), store.open()
    await a.ready()
    await b.ready()
    a.catalog.write({"upstream": "u", "models": [{"slug": "m"}]})
    await a.flush()
    await eventually(lambda: (b.catalog.read() or {}).get("models") == [{"slug": "m"}])


async def test_conversation_affinity_is_shared_only_by_redis(store: Store, issuer: FakeIssuer) -> None:
    await store.seed(login(issuer))
    a, b = store.open(), store.open()
    await a.ready()
    await b.ready()
    a.affinity.set("conversation-1", "acct-x")
    await a.flush()
    assert b.affinity.shared == (store.kind == "redis")
    assert await b.affinity.fetch("conversation-1") == ("acct-x" if store.kind == "redis" else None)


async def test_quota_snapshots_reach_the_other_gateway(store: Store, issuer: FakeIssuer) -> None:
    tokens = login(issuer)
    await store.seed(tokens)
    a, b = store.pool(), store.pool()
    lease = await a.acquire()
    await b.acquire()
    a.state.get(lease.key).quota = {"at": time.time(), "primary": {"used_percent": 42.0}}
    a.state.save(time.time())
    await a.backend.flush()
    await eventually(lambda: (b.status()[0]["quota"] or {}).get("primary") == {"used_percent": 42.0})


async def test_a_pin_made_by_a_command_is_honoured_by_a_running_gateway(store: Store, issuer: FakeIssuer) -> None:
    first, second = login(issuer, "a@example.com"), login(issuer, "b@example.com")
    await store.seed(first)
    await store.seed(second)
    gateway = store.pool()
    await gateway.acquire()
    command = store.open(command=True)
    await command.ready()
    command.selection.update(lambda s: Selection(second.account_id, s.excluded))
    await command.flush()
    await eventually(lambda: gateway.status() and [r["pinned"] for r in gateway.status()].count(True) == 1)
    for _ in range(3):
        assert (await gateway.acquire()).key == second.account_id
