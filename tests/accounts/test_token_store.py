"""Token store: proactive/reactive refresh exactly once, across tasks and processes; atomic 0600 writes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.auth_file import parse_auth_doc
from codex_gateway.accounts.token_store import TokenStore
from codex_gateway.accounts.token_store import atomic_write_json
from codex_gateway.errors import GatewayError

from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens

ADDONS = Path(__file__).resolve().parents[2] / "addons"
DAY = 24 * 3600


class Clock:
    def __init__(self, now: float | None = None) -> None:
        import time

        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> Iterator[FakeIssuer]:
    with FakeIssuer(clock=clock) as fake:
        yield fake


def write_login(path: Path, tokens: IssuedTokens, last_refresh: float, **extra: Any) -> None:
    doc = tokens.auth_json(format_iso(last_refresh))
    doc.update(extra)
    atomic_write_json(path, doc)


def read_doc(path: Path) -> dict[str, Any]:
    data = orjson.loads(path.read_bytes())
    assert isinstance(data, dict)
    return data


def expired_login(issuer: FakeIssuer, clock: Clock, path: Path, **extra: Any) -> IssuedTokens:
    tokens = issuer.issue(issuer.add_account("a@example.com"), expires_in=-60)
    write_login(path, tokens, clock() - 2 * DAY, **extra)
    return tokens


async def test_valid_token_needs_no_refresh(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    tokens = issuer.issue(issuer.add_account("a@example.com"))
    write_login(tmp_path / "auth.json", tokens, clock() - 3600)
    creds = await TokenStore(tmp_path / "auth.json", issuer.url, clock=clock).fresh()
    assert creds.access_token == tokens.access_token
    assert creds.account_id == tokens.account_id and creds.label == "a@example.com"
    assert issuer.count() == 0


async def test_expired_token_is_refreshed_once_and_file_keeps_layout(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock
) -> None:
    path = tmp_path / "auth.json"
    old = expired_login(issuer, clock, path, custom_key={"kept": True})
    store = TokenStore(path, issuer.url, clock=clock)
    creds = await store.fresh()
    assert creds.access_token != old.access_token
    assert issuer.count("refresh_token") == 1
    assert issuer.calls[0].encoding == "json"  # as the Codex CLI sends it: the refresh is a JSON POST
    doc = read_doc(path)
    assert doc["custom_key"] == {"kept": True}  # unknown keys survive
    assert doc["auth_mode"] == "chatgpt" and doc["OPENAI_API_KEY"] is None
    assert set(doc["tokens"]) == {"id_token", "access_token", "refresh_token", "account_id"}
    assert doc["tokens"]["access_token"] == creds.access_token
    assert doc["tokens"]["refresh_token"] != old.refresh_token
    assert doc["tokens"]["account_id"] == old.account_id
    assert doc["last_refresh"].endswith("Z") and parse_auth_doc(doc).last_refresh == pytest.approx(clock(), abs=1e-3)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    await store.fresh()
    assert issuer.count("refresh_token") == 1


@pytest.mark.parametrize(("expires_in", "refreshes"), [(4 * 60, 1), (6 * 60, 0)])
async def test_proactive_refresh_within_five_minutes(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock, expires_in: int, refreshes: int
) -> None:
    tokens = issuer.issue(issuer.add_account("a@example.com"), expires_in=expires_in)
    write_login(tmp_path / "auth.json", tokens, clock() - DAY)
    await TokenStore(tmp_path / "auth.json", issuer.url, clock=clock).fresh()
    assert issuer.count("refresh_token") == refreshes


@pytest.mark.parametrize(("age_days", "refreshes"), [(9, 1), (7, 0)])
async def test_token_without_exp_is_refreshed_after_eight_days(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock, age_days: int, refreshes: int
) -> None:
    tokens = issuer.issue(issuer.add_account("a@example.com"))
    doc = tokens.auth_json(format_iso(clock() - age_days * DAY))
    doc["tokens"]["access_token"] = "opaque-access-token"
    atomic_write_json(tmp_path / "auth.json", doc)
    await TokenStore(tmp_path / "auth.json", issuer.url, clock=clock).fresh()
    assert issuer.count("refresh_token") == refreshes


async def test_fifty_concurrent_requests_cause_one_refresh(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    expired_login(issuer, clock, tmp_path / "auth.json")
    issuer.refresh_delay = 0.05  # all 50 arrive while the refresh is in flight
    store = TokenStore(tmp_path / "auth.json", issuer.url, clock=clock)
    results = await asyncio.gather(*(store.fresh() for _ in range(50)))
    assert issuer.count("refresh_token") == 1
    assert len({c.access_token for c in results}) == 1
    assert issuer.errors() == []


SNIPPET = """
import asyncio, hashlib, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from codex_gateway.accounts.token_store import TokenStore
store = TokenStore(Path(sys.argv[1]), sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()
creds = asyncio.run(store.fresh())
print(hashlib.sha256(creds.access_token.encode()).hexdigest(), flush=True)
"""


def test_two_processes_refresh_the_same_file_once(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    path = tmp_path / "auth.json"
    expired_login(issuer, clock, path)
    issuer.refresh_delay = 0.3  # the second process asks for the lock while the first one's refresh is in flight
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", SNIPPET, str(path), issuer.url, str(ADDONS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:  # release both at the same moment
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outputs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert issuer.count("refresh_token") == 1
    assert "refresh_token_reused" not in issuer.errors()
    final = read_doc(path)["tokens"]["access_token"]
    digest = hashlib.sha256(final.encode()).hexdigest()
    assert [out.strip() for out, _ in outputs] == [digest, digest]


async def test_file_rotated_by_another_process_is_picked_up(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    path = tmp_path / "auth.json"
    account = issuer.add_account("a@example.com")
    first = issuer.issue(account)
    write_login(path, first, clock() - 3600)
    store = TokenStore(path, issuer.url, clock=clock)
    assert (await store.fresh()).access_token == first.access_token
    second = issuer.issue(account)  # e.g. the Codex CLI refreshed and rewrote the file
    write_login(path, second, clock())
    assert (await store.fresh()).access_token == second.access_token
    # A 401 for the old token: the file already holds another one, so no refresh.
    assert (await store.after_unauthorized(first.access_token)).access_token == second.access_token
    assert issuer.count() == 0


async def test_unauthorized_refreshes_once_for_concurrent_rejections(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock
) -> None:
    path = tmp_path / "auth.json"
    tokens = issuer.issue(issuer.add_account("a@example.com"))
    write_login(path, tokens, clock() - 3600)
    store = TokenStore(path, issuer.url, clock=clock)
    results = await asyncio.gather(*(store.after_unauthorized(tokens.access_token) for _ in range(10)))
    assert issuer.count("refresh_token") == 1
    assert {c.access_token for c in results} == {read_doc(path)["tokens"]["access_token"]}
    assert results[0].access_token != tokens.access_token


async def test_token_rejected_right_after_our_refresh_is_not_refreshed_again(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock
) -> None:
    path = tmp_path / "auth.json"
    tokens = issuer.issue(issuer.add_account("a@example.com"))
    write_login(path, tokens, clock() - 3600)
    store = TokenStore(path, issuer.url, clock=clock)
    fresh = await store.after_unauthorized(tokens.access_token)
    with pytest.raises(GatewayError) as err:
        await store.after_unauthorized(fresh.access_token)
    assert err.value.status == 401 and issuer.count("refresh_token") == 1
    clock.now += 120
    await store.after_unauthorized(fresh.access_token)
    assert issuer.count("refresh_token") == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"error": {"code": "refresh_token_expired", "message": "Your refresh token has expired."}}),
        (400, {"error": "refresh_token_invalidated", "error_description": "revoked"}),
        (400, {"code": "refresh_token_reused"}),
        (401, {"detail": "Unauthorized"}),
    ],
)
async def test_permanent_refresh_failure_asks_for_login(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock, status: int, body: dict[str, Any]
) -> None:
    expired_login(issuer, clock, tmp_path / "auth.json")
    issuer.fail_next(status, body)
    store = TokenStore(tmp_path / "auth.json", issuer.url, clock=clock)
    with pytest.raises(GatewayError) as err:
        await store.fresh()
    assert err.value.status == 401 and err.value.code == "login_required"
    assert "codex login" in err.value.message and "scripts/accounts.py login" in err.value.message
    assert store.login_required
    with pytest.raises(GatewayError):  # remembered: the dead refresh token is not sent again
        await store.fresh()
    assert issuer.count() == 1


async def test_reused_refresh_token_is_permanent_when_file_unchanged(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock
) -> None:
    path = tmp_path / "auth.json"
    tokens = expired_login(issuer, clock, path)
    # Another client used this refresh token but kept the new tokens to itself: our copy is dead.
    body = {
        "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
        "grant_type": "refresh_token",
        "refresh_token": tokens.refresh_token,
    }
    assert httpx.post(issuer.url + "/oauth/token", json=body).status_code == 200
    with pytest.raises(GatewayError) as err:
        await TokenStore(path, issuer.url, clock=clock).fresh()
    assert err.value.status == 401 and err.value.code == "login_required"
    assert issuer.errors() == ["refresh_token_reused"]
    assert read_doc(path)["tokens"]["refresh_token"] == tokens.refresh_token  # the file is left for `codex login`


async def test_reused_refresh_token_uses_tokens_another_process_wrote(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock
) -> None:
    path = tmp_path / "auth.json"
    account = issuer.add_account("a@example.com")
    old = issuer.issue(account, expires_in=-60)
    write_login(path, old, clock() - DAY)
    rotated = issuer.issue(account)

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        # The Codex CLI (which ignores our lock) refreshed in the meantime; the issuer rejects our stale token.
        write_login(path, rotated, clock())
        return httpx.Response(401, json={"error": {"code": "refresh_token_reused", "message": "already used"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as http:
        creds = await TokenStore(path, issuer.url, clock=clock, http=http).fresh()
    assert creds.access_token == rotated.access_token


async def test_partial_refresh_answer_keeps_the_other_tokens(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    path = tmp_path / "auth.json"
    old = expired_login(issuer, clock, path)
    new_access = issuer.issue(issuer.accounts[0]).access_token

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        assert orjson.loads(request.content) == {
            "client_id": "app_EMoamEEZ73f0CkXaXp7hrann",
            "grant_type": "refresh_token",
            "refresh_token": old.refresh_token,
        }
        return httpx.Response(200, json={"access_token": new_access})

    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as http:
        creds = await TokenStore(path, issuer.url, clock=clock, http=http).fresh()
    tokens = read_doc(path)["tokens"]
    assert creds.access_token == new_access == tokens["access_token"]
    assert tokens["refresh_token"] == old.refresh_token and tokens["id_token"] == old.id_token


async def test_transient_failure_is_retryable_and_backs_off(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    expired_login(issuer, clock, tmp_path / "auth.json")
    issuer.fail_next(502, {"detail": "bad gateway"})
    store = TokenStore(tmp_path / "auth.json", issuer.url, clock=clock)
    with pytest.raises(GatewayError) as err:
        await store.fresh()
    assert err.value.status == 503 and err.value.headers["retry-after"] == "5"
    with pytest.raises(GatewayError) as again:  # inside the back-off: no call to the issuer
        await store.fresh()
    assert again.value.status == 503 and issuer.count() == 1
    clock.now += 6
    issuer.refresh_delay = 0
    await store.fresh()  # the fake's clock moved too, so the new token is valid "now"
    assert issuer.count("refresh_token") == 2


async def test_unreachable_issuer_is_transient(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    expired_login(issuer, clock, tmp_path / "auth.json")
    issuer.stop()
    with pytest.raises(GatewayError) as err:
        await TokenStore(tmp_path / "auth.json", issuer.url, clock=clock).fresh()
    assert err.value.status == 503 and int(err.value.headers["retry-after"]) > 0
    assert err.value.code == "token_refresh_failed"


async def test_failed_proactive_refresh_keeps_using_a_still_valid_token(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock
) -> None:
    tokens = issuer.issue(issuer.add_account("a@example.com"), expires_in=120)
    write_login(tmp_path / "auth.json", tokens, clock() - DAY)
    issuer.fail_next(500, {"detail": "down"})
    creds = await TokenStore(tmp_path / "auth.json", issuer.url, clock=clock).fresh()
    assert creds.access_token == tokens.access_token


async def test_opaque_token_is_used_when_a_due_refresh_fails_transiently(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock
) -> None:
    """No expiry to judge it by: the backend decides (a 401 there triggers the reactive refresh)."""
    tokens = issuer.issue(issuer.add_account("a@example.com"))
    doc = tokens.auth_json(format_iso(clock() - 9 * DAY))
    doc["tokens"]["access_token"] = "opaque-access-token"
    atomic_write_json(tmp_path / "auth.json", doc)
    issuer.fail_next(502, {"detail": "bad gateway"})
    creds = await TokenStore(tmp_path / "auth.json", issuer.url, clock=clock).fresh()
    assert creds.access_token == "opaque-access-token" and issuer.count("refresh_token") == 1


async def test_missing_file_is_a_401(tmp_path: Path, issuer: FakeIssuer) -> None:
    with pytest.raises(GatewayError) as err:
        await TokenStore(tmp_path / "auth.json", issuer.url).fresh()
    assert err.value.status == 401 and err.value.code == "no_login"


def test_atomic_write_is_0600_from_creation_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        path = tmp_path / "auth.json"
        atomic_write_json(path, {"a": 1})
        inode = path.stat().st_ino
        atomic_write_json(path, {"a": 2})
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode  # replaced by rename, never rewritten in place
    assert read_doc(path) == {"a": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json"]

    def broken_fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        atomic_write_json(path, {"a": 3})
    assert read_doc(path) == {"a": 2}  # the old content is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["auth.json"]


def test_atomic_write_keeps_a_symlinked_file_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    atomic_write_json(real, {"a": 1})
    link = tmp_path / "auth.json"
    link.symlink_to(real)
    atomic_write_json(link, {"a": 2})
    assert link.is_symlink() and read_doc(real) == {"a": 2}


async def test_cancelled_caller_does_not_lose_rotated_tokens(tmp_path: Path, issuer: FakeIssuer, clock: Clock) -> None:
    path = tmp_path / "auth.json"
    old = expired_login(issuer, clock, path)
    new = issuer.issue(issuer.accounts[0])
    started, release = asyncio.Event(), asyncio.Event()
    calls = 0

    async def token_endpoint(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        started.set()
        await release.wait()  # the issuer has rotated; the answer is on its way
        return httpx.Response(200, json={"access_token": new.access_token, "refresh_token": new.refresh_token})

    async with httpx.AsyncClient(transport=httpx.MockTransport(token_endpoint)) as http:
        store = TokenStore(path, issuer.url, clock=clock, http=http)
        caller = asyncio.ensure_future(store.fresh())
        await started.wait()
        caller.cancel()  # e.g. the client disconnected
        with pytest.raises(asyncio.CancelledError):
            await caller
        release.set()
        creds = await store.fresh()  # waits for the shielded refresh, then finds the file fresh
    assert creds.access_token == new.access_token and calls == 1
    assert read_doc(path)["tokens"]["refresh_token"] == new.refresh_token != old.refresh_token


async def test_refreshed_tokens_survive_a_failed_write(
    tmp_path: Path, issuer: FakeIssuer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "auth.json"
    old = expired_login(issuer, clock, path)
    store = TokenStore(path, issuer.url, clock=clock)
    import codex_gateway.accounts.token_store as module

    real_write = module.atomic_write_json

    def disk_full(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "atomic_write_json", disk_full)
    first = await store.fresh()
    assert first.access_token != old.access_token  # served from memory
    assert read_doc(path)["tokens"]["refresh_token"] == old.refresh_token  # (now dead at the issuer)
    assert (await store.fresh()).access_token == first.access_token
    monkeypatch.setattr(module, "atomic_write_json", real_write)
    again = await store.after_unauthorized(first.access_token)  # refreshes with the in-memory refresh token
    assert again.access_token != first.access_token
    assert read_doc(path)["tokens"]["access_token"] == again.access_token
    assert issuer.errors() == [] and issuer.count("refresh_token") == 2
