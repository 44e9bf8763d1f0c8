"""`scripts/accounts.py` run as users run it (`.venv/bin/python scripts/accounts.py …` from the repo root)."""

from __future__ import annotations

import os
import queue
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import orjson
import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.token_store import atomic_write_json

from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "scripts/accounts.py"


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_leftover_logins() -> Iterator[None]:
    """A failed test must not leave a login waiting for its callback for ten minutes."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def env(tmp_path: Path, issuer: FakeIssuer) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_"))}
    base.update(
        CODEX_AUTH_ISSUER=issuer.url,
        CODEX_GATEWAY_HOME=str(tmp_path / "gateway"),
        CODEX_HOME=str(tmp_path / "codex"),
        PYTHONUNBUFFERED="1",
    )
    base.pop("DISPLAY", None)  # never start a real browser from the tests
    base.pop("WAYLAND_DISPLAY", None)
    return base


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


class Running:
    """A `login` in progress: lines of its stdout arrive through a queue so the test can wait for one."""

    def __init__(self, env: dict[str, str], *args: str, stdin: int | None = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, SCRIPT, *args],
            cwd=ROOT,
            env=env,
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _STARTED.append(self.proc)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stdout is not None
        self.pump = threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True)
        self.pump.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, needle: str) -> str:
        while True:
            line = self.lines.get(timeout=20)
            self.seen.append(line)
            if needle in line:
                return line

    def finish(self) -> tuple[int, str, str]:
        """Exit code, all stdout, all stderr (stdout is only ever read by the pump thread)."""
        self.proc.wait(timeout=30)
        self.pump.join(timeout=10)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.proc.returncode, "".join(self.seen), err


def saved_tokens(gateway_home: Path) -> list[str]:
    out = []
    for path in (gateway_home / "accounts").glob("*.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        tokens = orjson.loads(path.read_bytes())["tokens"]
        out += [tokens["access_token"], tokens["refresh_token"], tokens["id_token"]]
    return out


def test_browser_login_end_to_end(env: dict[str, str], issuer: FakeIssuer, tmp_path: Path) -> None:
    issuer.add_account("me@example.com", plan="pro")
    login = Running(env, "login", "--port", "0", "--no-browser")
    port = login.wait_for("Callback server listening on port").split()[-1]
    url = login.wait_for("/oauth/authorize?").strip()
    assert f"redirect_uri=http%3A%2F%2Flocalhost%3A{port}%2Fauth%2Fcallback" in url
    page = httpx.get(url, follow_redirects=True, timeout=10)  # the simulated browser
    assert page.status_code == 200
    code, out, err = login.finish()
    assert code == 0, err
    assert "Logged in as me@example.com (pro" in out
    secrets = saved_tokens(tmp_path / "gateway")
    assert len(secrets) == 3 and not [s for s in secrets if s in out + err]


def test_browser_login_by_pasting_the_redirect(env: dict[str, str], issuer: FakeIssuer, tmp_path: Path) -> None:
    issuer.add_account("paste@example.com")
    login = Running(env, "login", "--port", "0", "--no-browser", stdin=subprocess.PIPE)
    url = login.wait_for("/oauth/authorize?").strip()
    redirect = httpx.get(url, timeout=10).headers["location"]  # the browser could not reach this machine
    assert login.proc.stdin is not None
    login.proc.stdin.write(redirect + "\n")
    login.proc.stdin.flush()
    code, out, err = login.finish()
    assert code == 0, err
    assert "paste@example.com" in out and len(saved_tokens(tmp_path / "gateway")) == 3


def test_device_login_end_to_end(env: dict[str, str], issuer: FakeIssuer, tmp_path: Path) -> None:
    issuer.add_account("headless@example.com")
    login = Running(env, "login", "--device", "--poll-interval", "0.02")
    login.wait_for("/codex/device")
    user_code = login.wait_for("-").strip()
    issuer.wait_for_device_polls(2)  # still pending after two polls
    issuer.approve(user_code)
    code, out, err = login.finish()
    assert code == 0, err
    assert "Logged in as headless@example.com" in out
    assert issuer.count(path="/api/accounts/deviceauth/token") >= 3
    assert not [s for s in saved_tokens(tmp_path / "gateway") if s in out + err]


def write_codex(tmp_path: Path, tokens: IssuedTokens) -> None:
    atomic_write_json(tmp_path / "codex" / "auth.json", tokens.auth_json(format_iso(1_700_000_000)))


def test_list_status_remove(env: dict[str, str], issuer: FakeIssuer, tmp_path: Path) -> None:
    codex = issuer.issue(issuer.add_account("cli@example.com"))
    write_codex(tmp_path, codex)
    issuer.login_as = issuer.add_account("second@example.com", plan="team")
    login = Running(env, "login", "--device", "--poll-interval", "0.02")
    login.wait_for("/codex/device")
    issuer.approve(login.wait_for("-").strip())
    assert login.finish()[0] == 0
    state = {"version": 1, "accounts": {codex.account_id: {"quota": {"at": 1.0, "primary": {"used_percent": 42.0}}}}}
    atomic_write_json(tmp_path / "gateway" / "state.json", state)

    listing = run(env, "list")
    status = run(env, "status")
    as_json = run(env, "status", "--json")
    assert listing.returncode == status.returncode == as_json.returncode == 0
    assert "cli@example.com" in listing.stdout and "second@example.com" in listing.stdout
    assert "42%" in status.stdout and "team" in status.stdout and "TOKEN EXPIRES" in status.stdout
    rows = orjson.loads(as_json.stdout)
    assert {r["email"] for r in rows} == {"cli@example.com", "second@example.com"}
    secrets = [codex.access_token, codex.refresh_token, codex.id_token, *saved_tokens(tmp_path / "gateway")]
    everything = listing.stdout + status.stdout + as_json.stdout + listing.stderr + status.stderr
    assert not [s for s in secrets if s in everything or s.split(".")[-1] in everything]

    refused = run(env, "remove", "cli@example.com")  # the Codex CLI's login is not ours to delete
    assert refused.returncode == 1 and "codex logout" in refused.stderr
    assert (tmp_path / "codex" / "auth.json").exists()
    removed = run(env, "--gateway-home", str(tmp_path / "gateway"), "remove", "second@example.com")
    assert removed.returncode == 0, removed.stderr
    assert list((tmp_path / "gateway" / "accounts").glob("*.json")) == []
    assert run(env, "remove", "nobody@example.com").returncode == 1


def test_status_without_any_login(env: dict[str, str]) -> None:
    result = run(env, "status")
    assert result.returncode == 0 and "No accounts" in result.stdout
