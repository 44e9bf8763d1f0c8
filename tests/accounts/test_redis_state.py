"""The Redis backend's own promises, against a real redis-server: the lock, encryption at rest, start-up checks,
outages and a store that lost its state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.login_store import StoreUnavailable
from codex_gateway.accounts.pool import AccountPool
from codex_gateway.accounts.pool import Lease
from codex_gateway.accounts.redis_lock import redis_lock
from codex_gateway.accounts.redis_state import RedisState
from codex_gateway.accounts.redis_state import StoreKeys
from codex_gateway.accounts.redis_state import probe
from codex_gateway.accounts.state import StateConfig
from codex_gateway.errors import GatewayError

from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens
from scripts.redis_server import RedisServer
from scripts.redis_server import missing_reason

HOUR = 3600


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    if (why := missing_reason()) is not None:
        pytest.skip(why)
    with RedisServer(tmp_path, password="pw-" + str(time.monotonic_ns())) as s:
        yield s


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer(access_ttl=30 * 24 * HOUR) as fake:
        yield fake


class Team:
    def __init__(self, server: RedisServer, issuer: FakeIssuer, tmp_path: Path, secret: str | None = None) -> None:
        self.config = StateConfig(server.url, prefix="team", secret=secret)
        self.server, self.issuer, self.tmp_path = server, issuer, tmp_path
        self.opened: list[RedisState] = []

    def backend(self, *, command: bool = False) -> RedisState:
        backend = RedisState(self.config, self.issuer.url, listen=not command, may_initialize=command)
        self.opened.append(backend)
        return backend

    def pool(self) -> AccountPool:
        return AccountPool(self.tmp_path / "codex", self.tmp_path / "gw", self.issuer.url, backend=self.backend())

    async def seed(self, tokens: IssuedTokens, last_refresh: float | None = None) -> None:
        command = self.backend(command=True)
        command.put_login(tokens.auth_json(format_iso(last_refresh or time.time() - HOUR)))
        await command.aclose()

    def raw(self) -> redis.Redis:
        return redis.Redis.from_url(self.server.url)


@pytest.fixture
async def team(server: RedisServer, issuer: FakeIssuer, tmp_path: Path) -> AsyncIterator[Team]:
    t = Team(server, issuer, tmp_path)
    yield t
    for backend in t.opened:
        try:
            await backend.aclose()
        except StoreUnavailable:
            pass


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the change never arrived"
        await asyncio.sleep(0.01)


# -- the lock ---------------------------------------------------------------------------------------------------


async def test_the_lock_is_released_only_by_its_owner(team: Team) -> None:
    client = team.backend().client()
    async with redis_lock(client, "team:lock:x") as owner:
        assert team.raw().get("team:lock:x") == owner.encode()
        team.raw().set("team:lock:x", b"someone-else")  # as if ours had expired and another gateway took it
    assert team.raw().get("team:lock:x") == b"someone-else", "our release left the new holder's lock alone"


async def test_a_dead_holder_s_lock_expires_and_the_next_one_rereads_first(team: Team, issuer: FakeIssuer) -> None:
    account = issuer.add_account("a@example.com")
    expired = issuer.issue(account, expires_in=-60)
    await team.seed(expired, time.time() - 2 * 24 * HOUR)
    pool = team.pool()
    await pool.backend.ready()
    # A gateway took the lock, rotated the tokens, stored them, and died before releasing it.
    team.raw().set(StoreKeys("team").lock(account.account_id), b"dead-holder", px=300)
    rotated = issuer.issue(account)
    await team.seed(rotated)
    lease = await pool.acquire()
    assert lease.credentials.access_token == rotated.access_token
    assert issuer.count("refresh_token") == 0, "the waiter re-read the store instead of refreshing again"


# -- secrets ----------------------------------------------------------------------------------------------------


async def test_with_a_secret_no_token_is_in_redis_in_clear(
    server: RedisServer, issuer: FakeIssuer, tmp_path: Path
) -> None:
    team = Team(server, issuer, tmp_path, secret="correct horse battery staple")
    expired = issuer.issue(issuer.add_account("a@example.com"), expires_in=-60)
    await team.seed(expired, time.time() - 2 * 24 * HOUR)
    pool = team.pool()
    lease = await pool.acquire()  # refreshes: the rotated tokens are written sealed too
    pool.cool_down(lease, time.time() + HOUR)
    await pool.backend.aclose()
    everything = _dump(team.raw())
    secrets_ = [expired.access_token, expired.refresh_token, expired.id_token, lease.credentials.access_token]
    for secret in secrets_:
        for part in secret.split("."):  # nor any piece of a JWT (its claims are base64 of the email, ids, …)
            assert len(part) < 20 or part.encode() not in everything
    assert b"correct horse" not in everything


def _dump(client: redis.Redis) -> bytes:
    out = []
    for key in client.scan_iter("*"):
        out.append(key)
        kind = client.type(key)
        if kind == b"hash":
            for k, v in client.hgetall(key).items():
                out += [k, v]
        elif kind == b"string":
            out.append(client.get(key) or b"")
    return b"\n".join(out)


async def test_a_sealed_store_refuses_a_gateway_without_the_secret(
    server: RedisServer, issuer: FakeIssuer, tmp_path: Path
) -> None:
    sealed = Team(server, issuer, tmp_path, secret="s1")
    await sealed.seed(issuer.issue(issuer.add_account("a@example.com")))
    for secret, says in ((None, "set gateway_state_secret"), ("s2", "not the secret")):
        with pytest.raises(StoreUnavailable, match=says):
            probe(StateConfig(server.url, prefix="team", secret=secret))


def test_an_unreachable_store_is_a_clear_start_up_error(server: RedisServer) -> None:
    server.kill()
    with pytest.raises(StoreUnavailable) as info:
        probe(StateConfig(server.url, prefix="team"))
    assert "cannot reach the shared state store redis://***@127.0.0.1:" in str(info.value)
    assert server.password is not None and server.password not in str(info.value)


# -- outages ----------------------------------------------------------------------------------------------------


async def test_while_redis_is_down_valid_tokens_serve_and_one_line_is_logged(
    team: Team, issuer: FakeIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    valid = issuer.issue(issuer.add_account("a@example.com"))
    await team.seed(valid)
    pool = team.pool()
    await pool.acquire()
    team.server.kill()
    with caplog.at_level(logging.ERROR):
        for _ in range(20):
            lease = await pool.acquire("conversation")
            assert lease.credentials.access_token == valid.access_token
            pool.cool_down(Lease("another-account", lease.credentials), None)  # queued writes fail too
            await asyncio.sleep(0)
    outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(outage_lines) == 1, [r.getMessage() for r in outage_lines]


async def test_a_refresh_while_redis_is_down_is_a_retryable_503_and_works_once_it_is_back(
    team: Team, issuer: FakeIssuer
) -> None:
    valid = issuer.issue(issuer.add_account("a@example.com"))
    await team.seed(valid)
    pool = team.pool()
    lease = await pool.acquire()
    team.server.kill()
    with pytest.raises(GatewayError) as info:
        await pool.after_unauthorized(lease)  # the backend rejected the token: a refresh needs the lock
    assert info.value.status == 503 and info.value.headers["retry-after"].isdigit()
    team.server.start()
    await eventually(lambda: not pool.backend.is_down)  # type: ignore[attr-defined]
    fresh = await pool.after_unauthorized(lease)
    assert fresh.credentials.access_token != valid.access_token and issuer.count("refresh_token") == 1


async def test_a_store_that_lost_its_state_is_reported_and_not_recreated(team: Team, issuer: FakeIssuer) -> None:
    tokens = issuer.issue(issuer.add_account("a@example.com"))
    await team.seed(tokens)
    pool = team.pool()
    lease = await pool.acquire()
    team.server.wipe()
    team.server.start()
    await eventually(lambda: pool.backend.unavailable() is not None)
    with pytest.raises(GatewayError) as info:
        await pool.acquire()
    assert info.value.code == "state_store_empty" and info.value.status == 503
    pool.cool_down(lease, time.time() + HOUR)
    await pool.backend.flush()
    assert team.raw().keys("*") == [], "the gateway wrote nothing into the empty store"
    await team.seed(tokens)  # `accounts import`
    await eventually(lambda: pool.backend.unavailable() is None)
    assert (await pool.acquire()).key == tokens.account_id


async def test_tokens_rotated_while_the_store_could_not_take_them_are_written_when_it_is_back(
    team: Team, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    valid = issuer.issue(issuer.add_account("a@example.com"))
    await team.seed(valid)
    pool = team.pool()
    lease = await pool.acquire()
    backend = pool.backend
    assert isinstance(backend, RedisState)
    real_write = backend.write_login

    async def lost(key: str, doc: dict[str, Any]) -> None:
        monkeypatch.setattr(backend, "write_login", real_write)
        team.server.kill()  # the grant succeeded; the store went away before the rotated tokens were written
        raise StoreUnavailable("the shared state store is unreachable")

    monkeypatch.setattr(backend, "write_login", lost)
    fresh = await pool.after_unauthorized(lease)
    assert fresh.credentials.access_token != valid.access_token, "served from memory meanwhile"
    team.server.start()
    await eventually(lambda: fresh.credentials.access_token.encode() in b"".join(team.raw().hvals("team:accounts")))
