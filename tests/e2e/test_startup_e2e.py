"""How the gateway starts: bare `mitmdump -s addons/gateway.py`, explicit modes, options, the gateway key."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.gateway_process import MITMDUMP
from scripts.gateway_process import ROOT
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import refused_start


@pytest.fixture
def busy_8080() -> Iterator[None]:
    """Occupies *:8080 (mitmproxy's default listener) if nothing else does already."""
    s = socket.socket()
    try:
        s.bind(("0.0.0.0", 8080))
        s.listen()
    except OSError:
        pass  # already busy: just as good
    try:
        yield
    finally:
        s.close()


def test_bare_start_serves_the_gateway_on_8787(
    busy_8080: None, tmp_path: Path, login_home: tuple[Path, FakeLogin]
) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 8787)) == 0:
            pytest.skip("127.0.0.1:8787 is in use by another program")
    log = tmp_path / "bare.log"
    args = [
        str(MITMDUMP),
        "-s",
        str(ROOT / "addons" / "gateway.py"),
        "--set",
        f"confdir={tmp_path}",
        "--set",
        f"codex_home={login_home[0]}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        try:
            deadline = time.monotonic() + 30
            while "listening at 127.0.0.1:8787" not in log.read_text() and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.05)  # start-up polling, not a timing assertion
            r = httpx.get("http://127.0.0.1:8787/v1/models", timeout=10)
            assert r.status_code == 200 and r.json()["object"] == "list"
            assert "switching the listener" in log.read_text()
        finally:
            proc.terminate()
            proc.wait(10)


def test_explicit_mode_is_never_overridden(gateway: GatewayProcess) -> None:
    assert "switching the listener" not in gateway.log()
    assert httpx.get(gateway.base_url + "/v1/models").status_code == 200


@pytest.mark.parametrize(
    ("option", "values"),
    [
        ("codex_upstream", ["ftp://example.com"]),
        ("codex_auth_issuer", ["not a url"]),
        # mitmproxy itself fails on these while loading the script, which would leave a plain reverse proxy
        ("codex_idle_timeout", ["soon"]),
        ("codex_originator", ["a", "b"]),
    ],
)
def test_invalid_options_are_refused(tmp_path: Path, option: str, values: list[str]) -> None:
    printed = refused_start("reverse:http://127.0.0.1:9@127.0.0.1:0", tmp_path, *(f"{option}={v}" for v in values))
    assert option in printed


@pytest.fixture(scope="module")
def keyed_gateway(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    extra = ["--set", "gateway_api_key=gw-key-123"]
    with GatewayProcess(backend.port, login_home[0], tmp_path_factory.mktemp("gwkey"), extra=extra) as gw:
        yield gw


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_gateway_key_is_required(keyed_gateway: GatewayProcess, backend: FakeCodexBackend, key: str | None) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for method, path in [("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/v1/nope")]:
        r = httpx.request(method, keyed_gateway.base_url + path, headers=headers, json={})
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "invalid_api_key"
    assert backend.requests == []


def test_gateway_key_accepted_and_not_forwarded(keyed_gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    with openai.OpenAI(base_url=keyed_gateway.base_url + "/v1", api_key="gw-key-123", max_retries=0) as c:
        c.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "hi"}])
    (rec,) = backend.responses_requests()
    assert "gw-key-123" not in str(rec.headers) and "gw-key-123" not in rec.body.decode()
