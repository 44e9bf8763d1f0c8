"""No secret in any artefact: a gateway with unique random tokens and key runs the suite's scenarios, then every
artefact is searched for every token, every JWT segment of the tokens, the account id and the gateway key.

Artefacts: the gateway's log output, the `-w` capture (raw bytes, and each saved flow's metadata, comment,
headers and decoded bodies), what the client received (bodies and headers, errors included), the gateway's own
state files (except the account logins it keeps on purpose), and a mitmweb's flow JSON, flow dump, event log
and per-flow contents.

Scenarios: streamed tool call, non-streamed text, /v1/responses stream, upstream 429 and 500, a 401 that makes the
gateway refresh the login and retry (so the refreshed tokens are secrets too), an in-stream failure, a client
that disconnects mid-stream, an upstream cut, a bad request, a wrong key, /v1/models.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from mitmproxy import http

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import free_port
from scripts.gateway_process import read_saved_flows
from scripts.gateway_process import write_login

EXPIRED = {
    "error": {
        "message": "Provided authentication token is expired. Please try signing in again.",
        "type": "invalid_request_error",
        "code": "token_expired",
        "param": None,
    }
}
TOOLS = [{"type": "function", "function": {"name": "read", "parameters": {"type": "object", "properties": {}}}}]


def chat(text: str, *, stream: bool, **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-5.4", "messages": [{"role": "user", "content": text}], "stream": stream, **extra}


@dataclass
class Run:
    """What one gateway run left behind, and the secrets it had."""

    secrets: dict[str, str]
    received: list[bytes] = field(default_factory=list)  # bodies and headers the client got
    requests: int = 0


def secrets_of(login: FakeLogin, key: str, prefix: str = "") -> dict[str, str]:
    """Every token, each of its JWT segments, the account id and the key."""
    found = {
        f"{prefix}access_token": login.access_token,
        f"{prefix}refresh_token": login.refresh_token,
        f"{prefix}id_token": login.id_token,
        f"{prefix}account_id": login.account_id,
        "gateway_api_key": key,
    }
    for name in ("access_token", "id_token", "refresh_token"):
        for i, segment in enumerate(getattr(login, name).split(".")):
            if len(segment) >= 8:
                found[f"{prefix}{name} segment {i}"] = segment
    return found


def current_login(home: Path) -> FakeLogin:
    tokens = json.loads((home / "auth.json").read_text())["tokens"]
    return FakeLogin(tokens["access_token"], tokens["refresh_token"], tokens["id_token"], tokens["account_id"], "")


def leaks(blob: bytes | str, found: dict[str, str]) -> list[str]:
    data = blob.encode() if isinstance(blob, str) else blob
    return [name for name, secret in found.items() if secret.encode() in data]


def keep(run: Run, r: httpx.Response, body: bytes) -> None:
    run.requests += 1
    run.received.append(body)
    run.received.append("\n".join(f"{k}: {v}" for k, v in r.headers.multi_items()).encode())


def send(client: httpx.Client, run: Run, method: str, path: str, **kw: Any) -> httpx.Response:
    """One request; the body is read to its end or to the cut (a cut upstream stream)."""
    with client.stream(method, path, **kw) as r:
        body = b""
        try:
            for piece in r.iter_raw():
                body += piece
        except httpx.RemoteProtocolError:
            pass
        keep(run, r, body)
        return r


def disconnect_mid_stream(client: httpx.Client, run: Run, backend: FakeCodexBackend) -> None:
    release = threading.Event()
    events = ev.text(["first", " second"])
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.delta")
    backend.enqueue(SSEScript(events, hold_after=first_delta + 1, release=release))
    with client.stream("POST", "/v1/chat/completions", json=chat("a long story", stream=True)) as r:
        body = b""
        for line in r.iter_lines():
            body += line.encode() + b"\n"
            if '"content":"first"' in line:
                break
        keep(run, r, body)
    assert backend.responses_requests()[-1].disconnected.wait(10), "the gateway never let go of the upstream"
    release.set()


def scenarios(base_url: str, key: str, backend: FakeCodexBackend, run: Run) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, headers=auth, timeout=30) as c:
        backend.enqueue(SSEScript(ev.tool_calls([("read", '{"path":"a.txt"}', "call_1")])))
        r = send(c, run, "POST", "/v1/chat/completions", json=chat("read a.txt", stream=True, tools=TOOLS))
        assert r.status_code == 200
        assert send(c, run, "POST", "/v1/chat/completions", json=chat("hi", stream=False)).status_code == 200
        responses = {"model": "gpt-5.4", "input": "hi", "stream": True}
        assert send(c, run, "POST", "/v1/responses", json=responses).status_code == 200
        backend.enqueue(ErrorScript(429, {"error": {"type": "rate_limit_exceeded", "message": "Slow down."}}))
        assert send(c, run, "POST", "/v1/chat/completions", json=chat("again", stream=True)).status_code == 429
        backend.enqueue(ErrorScript(500, {"detail": "Internal server error"}))
        assert send(c, run, "POST", "/v1/chat/completions", json=chat("oops", stream=False)).status_code == 500
        backend.enqueue(ErrorScript(401, EXPIRED))  # refresh at the issuer, then the retry gets the default answer
        assert send(c, run, "POST", "/v1/chat/completions", json=chat("expired", stream=False)).status_code == 200
        backend.enqueue(SSEScript(ev.failed("server_is_overloaded", "Try again later.", after=ev.text("Par"))))
        assert send(c, run, "POST", "/v1/chat/completions", json=chat("fail", stream=True)).status_code == 200
        disconnect_mid_stream(c, run, backend)
        backend.enqueue(SSEScript(ev.text(["one", "two"]), cut_after=4))
        assert send(c, run, "POST", "/v1/chat/completions", json=chat("cut", stream=True)).status_code == 200
        bad = chat("x", stream=False, messages=[{"role": "robot", "content": "x"}])
        assert send(c, run, "POST", "/v1/chat/completions", json=bad).status_code == 400
        assert send(c, run, "GET", "/v1/models").status_code == 200
        x_api_key = {"Authorization": "", "x-api-key": key}
        assert send(c, run, "GET", "/v1/models", headers=x_api_key).status_code == 200
        wrong = {"Authorization": "Bearer not-the-key"}
        assert (
            send(c, run, "POST", "/v1/chat/completions", json=chat("x", stream=False), headers=wrong).status_code == 401
        )


read_flows = read_saved_flows


def flow_texts(f: http.HTTPFlow) -> dict[str, bytes]:
    """What a saved flow holds, readable: metadata, comment, headers and decoded bodies."""
    out = {
        "metadata": orjson.dumps(f.metadata, default=repr),
        "comment": f.comment.encode(),
        "state": orjson.dumps(f.get_state(), default=lambda b: b.decode("utf-8", "replace")),
    }
    for name, message in (("request", f.request), ("response", f.response)):
        if message is not None:
            out[f"{name} headers"] = bytes(message.headers)
            out[f"{name} body"] = message.get_content(strict=False) or b""
    return out


@dataclass
class Capture:
    run: Run
    log: str
    capture: bytes
    flows: list[http.HTTPFlow]
    state_files: dict[str, bytes]
    home: Path


@pytest.fixture(scope="module")
def capture(
    backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Capture]:
    work = tmp_path_factory.mktemp("secrets")
    home = work / "codex-home"
    first = write_login(home, issuer.issue(issuer.add_account("secrets@example.com")).auth_json())
    key = "gwk-" + secrets.token_urlsafe(24)
    path = work / "flows.mitm"
    run = Run(secrets_of(first, key))
    backend.reset()
    gw = GatewayProcess(backend.port, home, work / "gw", extra=["-w", str(path), "--set", f"gateway_api_key={key}"])
    with gw:
        scenarios(gw.base_url, key, backend, run)
        flows = read_flows(path, run.requests)
    refreshed = current_login(home)
    assert refreshed.access_token != first.access_token, "the 401 scenario refreshed the login"
    run.secrets.update(secrets_of(refreshed, key, prefix="refreshed "))
    gateway_home = work / "gw" / "gateway-home"
    state = {
        str(p.relative_to(gateway_home)): p.read_bytes()
        for p in gateway_home.rglob("*")
        if p.is_file() and "accounts" not in p.relative_to(gateway_home).parts
    }
    yield Capture(run, gw.log(), path.read_bytes(), flows, state, home)


def test_every_request_was_captured(capture: Capture) -> None:
    assert len(capture.flows) == capture.run.requests


def test_the_search_finds_the_secrets_where_they_belong(capture: Capture) -> None:
    """A control: the codex home's auth.json holds the current login, every token and segment of it found."""
    current = {name: s for name, s in capture.run.secrets.items() if name.startswith("refreshed ")}
    assert sorted(leaks((capture.home / "auth.json").read_bytes(), current)) == sorted(current)


def test_no_secret_in_the_log(capture: Capture) -> None:
    assert "codex-gateway" in capture.log
    assert leaks(capture.log, capture.run.secrets) == []


def test_no_secret_in_the_capture_file(capture: Capture) -> None:
    assert leaks(capture.capture, capture.run.secrets) == []


def test_no_secret_in_saved_flows(capture: Capture) -> None:
    found = {
        f"flow {i} ({f.request.path}) {part}": leaks(text, capture.run.secrets)
        for i, f in enumerate(capture.flows)
        for part, text in flow_texts(f).items()
    }
    assert {where: names for where, names in found.items() if names} == {}


def test_no_secret_in_what_the_client_received(capture: Capture) -> None:
    assert [leaks(blob, capture.run.secrets) for blob in capture.run.received if leaks(blob, capture.run.secrets)] == []


def test_no_token_or_key_in_the_gateway_state_files(capture: Capture) -> None:
    """Quota state and model caches; the account id is the state's key by design, so only it may appear."""
    tokens = {name: s for name, s in capture.run.secrets.items() if not name.endswith("account_id")}
    assert capture.state_files, "the gateway wrote its state"
    assert {name: leaks(data, tokens) for name, data in capture.state_files.items()} == {
        name: [] for name in capture.state_files
    }


# -- mitmweb ----------------------------------------------------------------------------------------------------


@dataclass
class Web:
    run: Run
    blobs: dict[str, bytes]


@pytest.fixture(scope="module")
def web(capture: Capture, backend: FakeCodexBackend, tmp_path_factory: pytest.TempPathFactory) -> Web:
    key = capture.run.secrets["gateway_api_key"]
    run = Run(dict(capture.run.secrets))
    run.secrets.update(secrets_of(current_login(capture.home), key, prefix="current "))
    password = secrets.token_urlsafe(16)
    web_port = free_port()
    extra = [
        *("--set", f"web_port={web_port}", "--set", "web_open_browser=false", "--set", f"web_password={password}"),
        *("--set", f"gateway_api_key={key}"),
    ]
    backend.reset()
    gw = GatewayProcess(backend.port, capture.home, tmp_path_factory.mktemp("web"), tool="mitmweb", extra=extra)
    blobs: dict[str, bytes] = {}
    with gw:
        base = f"http://127.0.0.1:{web_port}"
        auth = {"Authorization": f"Bearer {password}"}
        deadline = time.monotonic() + 15
        while True:  # the proxy listener is up; wait for the web UI too
            try:
                httpx.get(base + "/flows", headers=auth, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # start-up polling, not a timing assertion
        scenarios(gw.base_url, key, backend, run)
        with httpx.Client(base_url=base, headers=auth, timeout=30) as c:
            deadline = time.monotonic() + 15
            while len(flows := c.get("/flows").json()) < run.requests and time.monotonic() < deadline:
                time.sleep(0.02)  # polling for the last flows to end, not a timing assertion
            blobs["/flows"] = c.get("/flows").content
            blobs["/flows.json"] = c.get("/flows.json").content
            blobs["/flows/dump"] = c.get("/flows/dump").content
            blobs["/events"] = c.get("/events").content
            for f in flows:
                for part in ("request", "response"):
                    r = c.get(f"/flows/{f['id']}/{part}/content.data")
                    if r.status_code == 200:
                        blobs[f"/flows/{f['id']}/{part}/content.data"] = r.content
        blobs["log"] = gw.log().encode()
    assert len(orjson.loads(blobs["/flows"])) == run.requests
    return Web(run, blobs)


def test_no_secret_in_mitmweb(web: Web) -> None:
    assert {where: leaks(blob, web.run.secrets) for where, blob in web.blobs.items()} == {
        where: [] for where in web.blobs
    }


def test_no_secret_in_what_mitmweb_clients_received(web: Web) -> None:
    assert [leaks(blob, web.run.secrets) for blob in web.run.received if leaks(blob, web.run.secrets)] == []
