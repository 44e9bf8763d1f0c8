"""Team mode: two real gateways (mitmdump, each with its own homes) sharing one account pool through a real
redis-server, with the fake backend and issuer behind them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens
from scripts.gateway_process import ROOT
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import free_port
from scripts.gateway_process import read_saved_flows
from scripts.gateway_process import refused_start
from scripts.redis_server import RedisServer
from scripts.redis_server import missing_reason

CHAT = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}
SECRET = "team secret " + uuid.uuid4().hex


def _usage_limit(resets_in: int) -> dict[str, object]:
    return {"error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": resets_in}}


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if (why := missing_reason()) is not None:
        pytest.skip(why)
    with RedisServer(tmp_path_factory.mktemp("redis"), password="pw-" + uuid.uuid4().hex) as server:
        yield server


class Team:
    """One store (a fresh key prefix on the shared redis-server) and the gateways and commands using it."""

    def __init__(self, backend: FakeCodexBackend, server: RedisServer, tmp_path: Path, secret: str | None) -> None:
        self.backend, self.server, self.tmp_path, self.secret = backend, server, tmp_path, secret
        self.prefix = "team-" + uuid.uuid4().hex[:8]
        self.gateways: list[GatewayProcess] = []

    def gateway(self, name: str) -> GatewayProcess:
        home = self.tmp_path / name
        (home / "codex").mkdir(parents=True, exist_ok=True)
        extra = ["--set", f"gateway_state={self.server.url}", "--set", f"gateway_state_prefix={self.prefix}"]
        extra += ["--set", f"gateway_state_secret={self.secret}"] if self.secret else []
        extra += ["-w", str(home / "flows.mitm")]
        gw = GatewayProcess(self.backend.port, home / "codex", home, extra=extra).start()
        self.gateways.append(gw)
        return gw

    def accounts(self, on: str, *args: str) -> subprocess.CompletedProcess[str]:
        """`scripts/accounts.py` on the machine `on` (its own homes), with the store in the environment."""
        home = self.tmp_path / on
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_"))}
        env |= {"CODEX_GATEWAY_STATE": self.server.url, "CODEX_GATEWAY_STATE_PREFIX": self.prefix}
        env |= {"CODEX_GATEWAY_HOME": str(home / "gateway-home"), "CODEX_HOME": str(home / "codex")}
        env |= {"CODEX_AUTH_ISSUER": self.backend.base_url}
        if self.secret:
            env["CODEX_GATEWAY_STATE_SECRET"] = self.secret
        cmd = [sys.executable, str(ROOT / "scripts" / "accounts.py"), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def import_login(self, tokens: IssuedTokens, on: str = "a") -> None:
        path = self.tmp_path / f"login-{uuid.uuid4().hex}.json"
        path.write_text(orjson.dumps(tokens.auth_json()).decode())
        self.accounts(on, "import", str(path))
        path.unlink()

    def dump(self) -> bytes:
        """Every key and value under this team's prefix."""
        client = redis.Redis.from_url(self.server.url)
        out = []
        for key in client.scan_iter(f"{self.prefix}:*"):
            out.append(key)
            if client.type(key) == b"hash":
                out += [b for kv in client.hgetall(key).items() for b in kv]
            elif client.type(key) == b"string":
                out.append(client.get(key) or b"")
        return b"\n".join(out)

    def stop(self) -> None:
        for gw in self.gateways:
            gw.stop()


@pytest.fixture
def team(backend: FakeCodexBackend, redis_server: RedisServer, tmp_path: Path) -> Iterator[Team]:
    t = Team(backend, redis_server, tmp_path, None)
    yield t
    t.stop()


async def chat(client: httpx.AsyncClient, gw: GatewayProcess, **extra: Any) -> httpx.Response:
    return await client.post(f"{gw.base_url}/v1/chat/completions", json={**CHAT, **extra})


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_forty_concurrent_requests_on_two_gateways_make_one_refresh(
    team: Team, issuer: FakeIssuer, backend: FakeCodexBackend
) -> None:
    team.import_login(issuer.issue(issuer.add_account("expired@example.com"), expires_in=-60))
    a, b = team.gateway("a"), team.gateway("b")
    before = issuer.count("refresh_token")
    issuer.refresh_delay = 0.3  # the refresh takes a while: every request arrives while it is under way
    try:

        async def all_forty() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=60) as client:
                return await asyncio.gather(*(chat(client, (a, b)[i % 2]) for i in range(40)))

        answers = run(all_forty())
    finally:
        issuer.refresh_delay = 0.0
    assert [r.status_code for r in answers] == [200] * 40
    assert issuer.count("refresh_token") - before == 1


def test_a_usage_limit_seen_on_one_gateway_cools_the_account_on_the_other(
    team: Team, issuer: FakeIssuer, backend: FakeCodexBackend
) -> None:
    team.import_login(issuer.issue(issuer.add_account("limited@example.com")))
    a, b = team.gateway("a"), team.gateway("b")

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            await chat(client, b)  # B has served with the account before
            backend.enqueue(ErrorScript(429, _usage_limit(7200)))
            on_a = await chat(client, a)
            backend.reset()
            return on_a, await chat(client, b)

    on_a, on_b = run(scenario())
    assert on_a.status_code == 429
    assert on_b.status_code == 429 and 7000 < int(on_b.headers["retry-after"]) <= 7200
    assert backend.requests == [], "B answered from the shared cooldown, without calling upstream"


def test_a_pin_made_on_one_machine_is_honoured_by_the_other_gateway(
    team: Team, issuer: FakeIssuer, backend: FakeCodexBackend
) -> None:
    first, second = (issuer.issue(issuer.add_account(f"{n}@example.com")) for n in ("one", "two"))
    team.import_login(first)
    team.import_login(second)
    gateways = team.gateway("a"), team.gateway("b")
    team.accounts("a", "use", second.email)  # the command line on A's machine

    async def six_conversations() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=30) as client:
            ask = [{"role": "user", "content": f"c{i}"} for i in range(6)]
            return [await chat(client, gateways[i % 2], messages=[ask[i]]) for i in range(6)]

    assert [r.status_code for r in run(six_conversations())] == [200] * 6
    used = {r.headers["chatgpt-account-id"] for r in backend.responses_requests()}
    assert used == {second.account_id}


def test_an_account_imported_on_one_machine_serves_on_the_other(
    team: Team, issuer: FakeIssuer, backend: FakeCodexBackend
) -> None:
    b = team.gateway("b")  # the store is empty: B says so, and waits

    async def ask() -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await chat(client, b)

    assert run(ask()).json()["error"]["code"] == "state_store_empty"
    tokens = issuer.issue(issuer.add_account("new@example.com"))
    team.import_login(tokens, on="a")
    deadline = time.monotonic() + 1.0  # another gateway's change applies within a second
    while (answer := run(ask())).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer.status_code == 200
    assert backend.responses_requests()[-1].headers["chatgpt-account-id"] == tokens.account_id


def test_redis_killed_mid_load_and_restarted(
    team: Team, issuer: FakeIssuer, backend: FakeCodexBackend, redis_server: RedisServer
) -> None:
    team.import_login(issuer.issue(issuer.add_account("steady@example.com")))
    gateways = team.gateway("a"), team.gateway("b")
    answers: list[httpx.Response | BaseException] = []

    async def worker(client: httpx.AsyncClient, i: int, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                answers.append(await chat(client, gateways[i % 2]))
            except httpx.HTTPError as exc:  # a hung or dropped request: counted as a failure below
                answers.append(exc)

    async def until(n: int) -> None:
        while len(answers) < n:
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=15) as client:
            workers = [asyncio.ensure_future(worker(client, i, stop)) for i in range(4)]
            await until(20)
            redis_server.kill()
            backend.enqueue(ErrorScript(401, {"error": {"code": "token_expired", "message": "expired"}}))
            await until(len(answers) + 40)  # served from memory meanwhile; one of them needed a refresh
            redis_server.start()
            await until(len(answers) + 20)
            stop.set()
            await asyncio.gather(*workers)

    try:
        run(scenario())
    finally:
        if redis_server.proc is None or redis_server.proc.poll() is not None:
            redis_server.start()
    failures = [a for a in answers if not isinstance(a, httpx.Response) or not _success_or_retryable(a)]
    assert failures == []
    assert any(isinstance(a, httpx.Response) and a.status_code == 503 for a in answers), "the refresh waited"
    backend.enqueue(ErrorScript(401, {"error": {"code": "token_expired", "message": "expired"}}))
    assert run(_one(gateways[0])).status_code == 200, "refreshes work again once Redis is back"
    for gw in gateways:
        assert gw.log().count("is unreachable") == 1, "one line per outage"


def _success_or_retryable(answer: httpx.Response) -> bool:
    if answer.status_code == 200:
        return True
    error = answer.json().get("error", {})
    return answer.status_code in (429, 503) and answer.headers.get("retry-after", "").isdigit() and "message" in error


async def _one(gw: GatewayProcess) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await chat(client, gw)


@pytest.fixture(scope="module")
def sealed_run(
    backend: FakeCodexBackend, issuer: FakeIssuer, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Team, list[str]]]:
    """Two gateways on a store sealed with a secret: logins imported, refreshed (proactively and after a 401)
    and used; returns the team and every secret that must not leak."""
    team = Team(backend, redis_server, tmp_path_factory.mktemp("sealed"), SECRET)
    first = len(issuer.issued)
    team.import_login(issuer.issue(issuer.add_account("sealed@example.com"), expires_in=-60))
    a, b = team.gateway("a"), team.gateway("b")
    backend.reset()
    run(_one(a))
    backend.enqueue(ErrorScript(401, {"error": {"code": "token_expired", "message": "expired"}}))
    assert run(_one(b)).status_code == 200
    team.accounts("a", "status")
    team.stop()
    tokens = [t for login in issuer.issued[first:] for t in (login.access_token, login.refresh_token, login.id_token)]
    assert len(tokens) >= 9  # the import and two refreshes
    yield team, [*tokens, SECRET, redis_server.password or ""]


def test_no_token_password_or_secret_in_logs_or_flows(sealed_run: tuple[Team, list[str]]) -> None:
    team, secrets_ = sealed_run
    artefacts = [gw.log() for gw in team.gateways]
    artefacts += [str(read_saved_flows(gw.workdir / "flows.mitm", 2)) for gw in team.gateways]
    artefacts += [(gw.workdir / "flows.mitm").read_bytes().decode("latin-1") for gw in team.gateways]
    for secret in secrets_:
        assert not any(secret in text for text in artefacts)


def test_with_a_secret_no_token_is_in_redis_in_clear(sealed_run: tuple[Team, list[str]]) -> None:
    team, secrets_ = sealed_run
    dump = team.dump()
    assert b":accounts" in dump
    for secret in secrets_:
        for piece in secret.split("."):  # no piece of a JWT either
            assert len(piece) < 20 or piece.encode() not in dump


def test_start_up_with_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    nobody = free_port()  # nothing listens there
    mode = f"reverse:http://127.0.0.1:{free_port()}@127.0.0.1:{free_port()}"
    out = refused_start(mode, tmp_path, f"gateway_state=redis://:hunter2@127.0.0.1:{nobody}/0")
    assert f"gateway_state: cannot reach the shared state store redis://***@127.0.0.1:{nobody}/0" in out
    assert "hunter2" not in out
