"""Tests for the fake Codex backend: it must reject what the real one rejects and stream like it."""

from __future__ import annotations

import copy
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import RecordedRequest
from scripts.fakes.codex_backend import SSEScript

AUTH = {"authorization": "Bearer tok-1", "chatgpt-account-id": "acct-1"}
PNG = "data:image/png;base64,iVBORw0KGgo="
HEX_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def shared_backend() -> Iterator[FakeCodexBackend]:
    with FakeCodexBackend() as b:
        yield b


@pytest.fixture
def backend(shared_backend: FakeCodexBackend) -> FakeCodexBackend:
    """One server per module keeps the suite fast; every test starts from a clean, default state."""
    fresh = FakeCodexBackend()
    for knob in ("accept_tokens", "models", "strict", "require_instructions", "allowed_models", "extra_routes"):
        setattr(shared_backend, knob, getattr(fresh, knob))
    shared_backend.reset()
    return shared_backend


@pytest.fixture(scope="module")
def shared_client(shared_backend: FakeCodexBackend) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_backend.codex_base, headers=AUTH, timeout=5.0) as c:
        yield c


@pytest.fixture
def client(backend: FakeCodexBackend, shared_client: httpx.Client) -> httpx.Client:
    return shared_client


def body(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "gpt-5.4",
        "instructions": "You are helpful.",
        "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}],
        "store": False,
        "stream": True,
    }
    base.update(over)
    return base


def parse_sse(raw: bytes) -> list[tuple[str | None, Any]]:
    """Minimal SSE parser: (event name, parsed data or None) per block."""
    out: list[tuple[str | None, Any]] = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data = orjson.loads(line[5:].strip())
        out.append((name, data))
    return out


def raw_exchange(port: int, requests: list[bytes]) -> bytes:
    """Send requests on ONE socket (keep-alive), half-close, return everything read."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        for req in requests:
            sock.sendall(req)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def post_bytes(payload: dict[str, Any], extra: str = "") -> bytes:
    data = orjson.dumps(payload)
    head = (
        "POST /backend-api/codex/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n"
        f"ChatGPT-Account-ID: a\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n{extra}\r\n"
    )
    return head.encode() + data


def dechunk(raw: bytes) -> tuple[list[int], bytes, bytes]:
    """Split one chunked response into (chunk sizes, body, remaining bytes)."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    sizes: list[int] = []
    out = b""
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            return sizes, out, rest[2:]
        sizes.append(size)
        out, rest = out + rest[:size], rest[size + 2 :]


# ------------------------------------------------------------------ validation table

USER_MSG = {"type": "message", "role": "user", "content": "hi"}
REJECTED_FIELDS = [
    "max_output_tokens", "max_tokens", "max_completion_tokens", "temperature", "top_p", "truncation", "user",
    "context_management", "previous_response_id", "frequency_penalty", "presence_penalty", "seed", "stop", "n",
    "logit_bias", "metadata", "stream_options", "response_format", "functions", "function_call",
    "reasoning_effort", "verbosity", "foo_bar",
]  # fmt: skip


def envelope(message: str, code: str | None, param: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def _drop(key: str) -> dict[str, Any]:
    b = body()
    del b[key]
    return b


def _img(url: str) -> dict[str, Any]:
    part = {"type": "input_image", "image_url": url}
    return body(input=[{"role": "user", "content": [{"type": "input_text", "text": "x"}, part]}])


IMG_HEAD = (
    "Invalid 'input[0].content[1].image_url'. Expected a base64-encoded data URL with an image MIME type "
    "(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got "
)
CALL = {"type": "function_call", "name": "shell", "arguments": '{"command":["ls"]}', "call_id": "call_a"}
OUT = {"type": "function_call_output", "call_id": "call_a", "output": "ok"}
FN_TOOL = {"type": "function", "name": "shell", "parameters": {"type": "object", "properties": {}}}
NOT_FOUND = (
    f"Item with id 'rs_{HEX_ID}' not found. Items are not persisted when `store` is set to false. "
    "Try again with `store` set to true, or remove this item from your input."
)

REJECT_CASES: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = [
    ("no instructions", _drop("instructions"), 400, {"detail": "Instructions are required"}),
    ("empty instructions", body(instructions=""), 400, {"detail": "Instructions are required"}),
    ("no store", _drop("store"), 400, {"detail": "Store must be set to false"}),
    ("store true", body(store=True), 400, {"detail": "Store must be set to false"}),
    ("store 0", body(store=0), 400, {"detail": "Store must be set to false"}),
    ("no stream", _drop("stream"), 400, {"detail": "Stream must be set to true"}),
    ("stream false", body(stream=False), 400, {"detail": "Stream must be set to true"}),
    ("system msg", body(input=[{"type": "message", "role": "system", "content": "x"}]), 400,
     {"detail": "System messages are not allowed"}),
    ("system easy msg", body(input=[USER_MSG, {"role": "system", "content": "x"}]), 400,
     {"detail": "System messages are not allowed"}),
    ("no model", _drop("model"), 400,
     envelope("Missing required parameter: 'model'.", "missing_required_parameter", "model")),
    ("bad mime", _img("data:text/plain;base64,aGk="), 400,
     envelope(IMG_HEAD + "unsupported MIME type 'text/plain'.", "invalid_value", "input[0].content[1].image_url")),
    ("empty b64", _img("data:image/png;base64,"), 400,
     envelope(IMG_HEAD + "empty base64-encoded bytes.", "invalid_value", "input[0].content[1].image_url")),
    ("b64 newline", _img("data:image/png;base64,iVBO\nRw0KGgo="), 400,
     envelope(IMG_HEAD + "a value with an invalid format.", "invalid_value", "input[0].content[1].image_url")),
    ("image_url object",
     body(input=[{"role": "user", "content": [{"type": "input_image", "image_url": {"url": PNG}}]}]), 400,
     envelope("Invalid type for 'input[0].content[0].image_url': Input should be a valid string.",
              "invalid_type", "input[0].content[0].image_url")),
    ("user output_text", body(input=[{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]), 400,
     envelope("Invalid value: 'output_text'. Supported values are: 'input_text', 'input_image'.",
              "invalid_value", "input[0].content[0].type")),
    ("assistant input_text", body(input=[{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]),
     400, envelope("Invalid value: 'input_text'. Supported values are: 'output_text', 'refusal'.",
                   "invalid_value", "input[0].content[0].type")),
    ("chat text part", body(input=[{"role": "user", "content": [{"type": "text", "text": "x"}]}]), 400,
     envelope("Invalid value: 'text'. Supported values are: 'input_text', 'input_image'.",
              "invalid_value", "input[0].content[0].type")),
    ("unknown item", body(input=[{"type": "item_reference", "id": "x"}]), 400,
     envelope("Invalid value: 'item_reference'. Supported values are: 'message', 'function_call', "
              "'function_call_output', 'reasoning', 'custom_tool_call', 'custom_tool_call_output'.",
              "invalid_value", "input[0].type")),
    ("extra item field", body(input=[{**USER_MSG, "name": "bob"}]), 400,
     envelope("Unknown parameter: 'input[0].name'.", "unknown_parameter", "input[0].name")),
    ("server id", body(input=[USER_MSG, {"type": "reasoning", "id": f"rs_{HEX_ID}", "summary": [],
                                         "encrypted_content": "gAAA"}]), 404, envelope(NOT_FOUND, None, "input")),
    ("args not json", body(input=[{**CALL, "arguments": "{bad"}, OUT]), 400,
     envelope("Invalid 'input[0].arguments': expected a JSON-encoded string.", "invalid_value", "input[0].arguments")),
    ("orphan output", body(input=[USER_MSG, OUT]), 400,
     {"detail": "No tool call found for function call output with call_id call_a."}),
    ("call without output", body(input=[USER_MSG, CALL]), 400,
     {"detail": "No tool output found for function call call_a."}),
    ("output before call", body(input=[OUT, CALL]), 400,
     {"detail": "No tool call found for function call output with call_id call_a."}),
    ("nested tool", body(tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}]), 400,
     envelope("Missing required parameter: 'tools[0].name'.", "missing_required_parameter", "tools[0].name")),
    ("tool no params", body(tools=[{"type": "function", "name": "f"}]), 400,
     envelope("Missing required parameter: 'tools[0].parameters'.", "missing_required_parameter",
              "tools[0].parameters")),
    ("tool bad name", body(tools=[{**FN_TOOL, "name": "a.b"}]), 400,
     envelope("Invalid 'tools[0].name': string does not match pattern. Expected a string that matches the "
              "pattern '^[a-zA-Z0-9_-]+$'.", "invalid_value", "tools[0].name")),
    ("tool type", body(tools=[{"type": "file_search"}]), 400,
     envelope("Invalid value: 'file_search'. Supported values are: 'function', 'web_search', 'local_shell', "
              "'custom', 'namespace', 'image_generation'.", "invalid_value", "tools[0].type")),
    ("effort", body(reasoning={"effort": "max"}), 400,
     envelope("Invalid value: 'max'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high' or 'xhigh'.",
              "invalid_value", "reasoning.effort")),
    ("chat json_schema", body(text={"format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}}),
     400, envelope("Missing required parameter: 'text.format.name'.", "missing_required_parameter",
                   "text.format.name")),
    ("chat tool_choice", body(tools=[FN_TOOL], tool_choice={"type": "function", "function": {"name": "shell"}}),
     400, envelope("Missing required parameter: 'tool_choice.name'.", "missing_required_parameter",
                   "tool_choice.name")),
    ("tool_choice unknown", body(tool_choice={"type": "function", "name": "nope"}), 400,
     envelope("Tool choice 'function' not found in 'tools' parameter: 'nope'.", "invalid_value", "tool_choice")),
]  # fmt: skip


@pytest.mark.parametrize(("payload", "status", "expected"), [c[1:] for c in REJECT_CASES],
                         ids=[c[0] for c in REJECT_CASES])  # fmt: skip
def test_rejections(backend: FakeCodexBackend, client: httpx.Client, payload: dict[str, Any], status: int,
                    expected: dict[str, Any]) -> None:  # fmt: skip
    resp = client.post("/responses", json=payload)
    assert (resp.status_code, resp.json()) == (status, expected)
    rec = backend.requests[-1]
    assert rec.status == status
    assert rec.error == (expected.get("detail") or expected["error"]["message"])


@pytest.mark.parametrize("field", REJECTED_FIELDS)
def test_unsupported_parameters(client: httpx.Client, field: str) -> None:
    resp = client.post("/responses", json=body(**{field: 1}))
    assert (resp.status_code, resp.json()) == (400, {"detail": f"Unsupported parameter: {field}"})


ACCEPT_CASES: list[tuple[str, dict[str, Any]]] = [
    ("codex shape", body(tools=[FN_TOOL, {"type": "local_shell"}, {"type": "web_search"},
                                {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
                                {"type": "namespace", "name": "multi_agent_v1", "tools": []}],
                         tool_choice="auto", parallel_tool_calls=False,
                         reasoning={"effort": "xhigh", "summary": "auto"},
                         include=["reasoning.encrypted_content"], prompt_cache_key="abc",
                         text={"verbosity": "low", "format": {"type": "json_schema", "name": "o", "schema": {},
                                                              "strict": True}},
                         client_metadata={"x-codex-installation-id": "u"}, service_tier="priority")),
    ("history", body(input=[
        {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "rules"}]},
        {"type": "message", "id": "msg_6f1c9f2e-1111-4d2b-9c1e-0a1b2c3d4e5f", "role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "s"}], "encrypted_content": "gAAA"},
        {"type": "message", "role": "assistant", "phase": "commentary",
         "content": [{"type": "output_text", "text": "a", "annotations": []}, {"type": "refusal", "refusal": "no"}]},
        CALL,
        {"type": "function_call_output", "call_id": "call_a",
         "output": [{"type": "input_text", "text": "x"}, {"type": "input_image", "image_url": PNG}]},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "*** Begin"},
        {"type": "custom_tool_call_output", "call_id": "c2", "output": "done"},
        {"role": "user", "content": [{"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"}]},
    ])),
    ("tool_choice function", body(tools=[FN_TOOL], tool_choice={"type": "function", "name": "shell"})),
    ("nulls", body(tools=None, text=None, reasoning=None, include=[])),
]  # fmt: skip


@pytest.mark.parametrize("payload", [c[1] for c in ACCEPT_CASES], ids=[c[0] for c in ACCEPT_CASES])
def test_accepts_valid_bodies(client: httpx.Client, payload: dict[str, Any]) -> None:
    resp = client.post("/responses", json=payload)
    assert resp.status_code == 200, resp.text
    assert parse_sse(resp.content)[-1][0] == "response.completed"


def test_knobs_relax_or_tighten_rules(backend: FakeCodexBackend, client: httpx.Client) -> None:
    backend.require_instructions = False
    assert client.post("/responses", json=_drop("instructions")).status_code == 200
    backend.allowed_models = {"gpt-5.4"}
    resp = client.post("/responses", json=body(model="gpt-4o"))
    assert resp.json() == {"detail": "The 'gpt-4o' model is not supported when using Codex with a ChatGPT account."}
    backend.strict = False
    assert client.post("/responses", json=body(temperature=1)).status_code == 200


# ------------------------------------------------------------------ auth


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer x"}, {"authorization": "Basic x", "chatgpt-account-id": "a"},
                {"authorization": "Bearer", "chatgpt-account-id": "a"}]
)  # fmt: skip
def test_auth_shape(backend: FakeCodexBackend, headers: dict[str, str]) -> None:
    resp = httpx.post(f"{backend.codex_base}/responses", json=body(), headers=headers)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "token_invalidated"
    assert backend.requests[-1].error is not None and "[fake:" in backend.requests[-1].error


def test_accept_tokens(backend: FakeCodexBackend, client: httpx.Client) -> None:
    backend.accept_tokens = {"fresh"}
    backend.enqueue(ev.text("queued"))
    resp = client.post("/responses", json=body())
    assert resp.status_code == 401
    assert resp.json() == envelope(
        "Provided authentication token is expired. Please try signing in again.", "token_expired", None
    )
    assert backend.pending() == 1  # rejected requests do not consume scripts
    resp = client.post("/responses", json=body(), headers={"authorization": "Bearer fresh"})
    assert "queued" in resp.text and backend.pending() == 0
    assert client.get("/models", params={"client_version": "0.1.0"}).status_code == 401


# ------------------------------------------------------------------ streaming


def test_default_answer_and_records(backend: FakeCodexBackend, client: httpx.Client) -> None:
    resp = client.post("/responses?x=1", json=body(), headers={"X-Custom": "v"})
    assert resp.headers["content-type"] == "text/event-stream"
    assert resp.headers["transfer-encoding"] == "chunked"
    for name in ("x-codex-primary-used-percent", "x-codex-plan-type", "x-request-id", "set-cookie", "cf-ray"):
        assert name in resp.headers
    events = parse_sse(resp.content)
    assert all(name == data["type"] for name, data in events)
    assert [d["sequence_number"] for _, d in events] == list(range(len(events)))
    deltas = [d["delta"] for n, d in events if n == "response.output_text.delta"]
    assert deltas == ["Hello", " from fake", " Codex"]
    assert events[-1][1]["response"]["output"] == []
    rec = backend.responses_requests()[0]
    assert (rec.method, rec.path, rec.status, rec.error) == ("POST", "/backend-api/codex/responses?x=1", 200, None)
    assert rec.headers["x-custom"] == "v" and rec.json == body() and orjson.loads(rec.body) == body()
    assert rec.finished.wait(5) and not rec.disconnected.is_set()
    backend.reset()
    assert backend.requests == [] and backend.responses_requests() == []


def test_scripts_fifo_error_and_raw(backend: FakeCodexBackend, client: httpx.Client) -> None:
    usage_limit = {"error": {"type": "usage_limit_reached", "message": "The usage limit has been reached",
                             "plan_type": "plus", "resets_at": 1777936568, "resets_in_seconds": 13872}}  # fmt: skip
    backend.enqueue(
        ErrorScript(429, usage_limit, headers={"x-codex-primary-used-percent": "100"}),
        ErrorScript(502, "<html>bad gateway</html>", headers={"content-type": "text/html"}),
        SSEScript(["event: codex.rate_limits\n\n", "data: {notjson\n\n", *ev.text("ok")], headers={"cf-ray": None}),
    )
    r1, r2, r3 = (client.post("/responses", json=body()) for _ in range(3))
    assert (r1.status_code, r1.json(), r1.headers["x-codex-primary-used-percent"]) == (429, usage_limit, "100")
    assert (r2.status_code, r2.text, r2.headers["content-type"]) == (502, "<html>bad gateway</html>", "text/html")
    assert r3.content.startswith(b"event: codex.rate_limits\n\ndata: {notjson\n\nevent: response.created\n")
    assert "cf-ray" not in r3.headers
    assert [r.status for r in backend.responses_requests()] == [429, 502, 200]


def test_hold_after_release_streams_incrementally(backend: FakeCodexBackend, client: httpx.Client) -> None:
    release = threading.Event()
    backend.enqueue(SSEScript(ev.text(["a", "b"]), hold_after=1, release=release))
    with client.stream("POST", "/responses", json=body()) as resp:
        stream = resp.iter_raw()
        first = b""
        while b"\n\n" not in first:
            first += next(stream)
        assert parse_sse(first)[0][0] == "response.created"
        assert not release.is_set()  # we got event 1 while the server still holds the rest
        release.set()
        rest = first + b"".join(stream)
    assert parse_sse(rest)[-1][0] == "response.completed"


def test_cut_after_gives_incomplete_chunked_read(backend: FakeCodexBackend, client: httpx.Client) -> None:
    backend.enqueue(SSEScript(ev.text(["a", "b"]), cut_after=3))
    got = b""
    with pytest.raises(httpx.RemoteProtocolError), client.stream("POST", "/responses", json=body()) as resp:
        for data in resp.iter_raw():
            got += data
    assert [n for n, _ in parse_sse(got)] == ["response.created", "response.in_progress", "response.output_item.added"]


@pytest.mark.parametrize("chunks", [1, 7, "whole", "per_event"])
def test_chunking_and_keep_alive(backend: FakeCodexBackend, chunks: Any) -> None:
    events = ev.text(["h\u00e9llo ", "\U0001f30d", "\u4e16\u754c"])
    backend.enqueue(SSEScript(events, chunks=chunks, crlf=True), SSEScript(events))
    raw = raw_exchange(backend.port, [post_bytes(body()), post_bytes(body())])  # one socket, two responses
    sizes, first, rest = dechunk(raw)
    expected = SSEScript(events, crlf=True).encoded()
    assert first == b"".join(expected) and b"\r\n\r\n" in first
    if isinstance(chunks, int):
        assert set(sizes[:-1]) == {chunks}
    else:
        assert sizes == ([len(first)] if chunks == "whole" else [len(e) for e in expected])
    assert dechunk(rest)[1] == b"".join(SSEScript(events).encoded())
    assert len(backend.responses_requests()) == 2


def test_chunked_request_body(backend: FakeCodexBackend) -> None:
    data = orjson.dumps(body())
    req = post_bytes(body()).split(b"Content-Length")[0] + b"Transfer-Encoding: chunked\r\n\r\n"
    req += b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)
    assert raw_exchange(backend.port, [req]).startswith(b"HTTP/1.1 200")
    assert backend.requests[0].json == body()


def test_64_concurrent_streams(backend: FakeCodexBackend) -> None:
    release = threading.Event()
    backend.enqueue(*(SSEScript(ev.text(f"n{i}"), hold_after=2, release=release) for i in range(64)))
    limits = httpx.Limits(max_connections=100)
    with httpx.Client(base_url=backend.codex_base, headers=AUTH, timeout=10, limits=limits) as c:

        def one(_: int) -> str:
            return c.post("/responses", json=body()).text

        with ThreadPoolExecutor(64) as pool:
            futures = [pool.submit(one, i) for i in range(64)]
            backend.wait_for_requests(64)  # all 64 are being answered at once, all held
            assert not any(f.done() for f in futures)
            release.set()
            texts = [f.result() for f in futures]
    assert sorted(t.count("event: response.completed\n") for t in texts) == [1] * 64
    assert {f"n{i}" for i in range(64)} == {d["delta"] for t in texts for n, d in parse_sse(t.encode())
                                           if n == "response.output_text.delta"}  # fmt: skip


def test_client_disconnect_during_hold_is_recorded(backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.text("x"), hold_after=1, release=threading.Event()))
    with httpx.Client(headers=AUTH, timeout=5) as c, c.stream("POST", f"{backend.codex_base}/responses",
                                                               json=body()) as resp:  # fmt: skip
        next(resp.iter_raw())
    rec = backend.responses_requests()[0]
    assert rec.disconnected.wait(5) and rec.finished.wait(5)


def test_stop_ends_held_stream() -> None:
    backend = FakeCodexBackend().start()
    backend.enqueue(SSEScript(ev.text("x"), hold_after=1, release=threading.Event()))
    with httpx.Client(headers=AUTH, timeout=5) as c, c.stream("POST", f"{backend.codex_base}/responses",
                                                               json=body()) as resp:  # fmt: skip
        stream = resp.iter_raw()
        next(stream)
        backend.stop()
        with pytest.raises(httpx.RemoteProtocolError):
            b"".join(stream)


# ------------------------------------------------------------------ other routes


def test_models_compact_404_and_extra_routes(backend: FakeCodexBackend, client: httpx.Client) -> None:
    models = client.get("/models", params={"client_version": "0.50.0"}).json()["models"]
    assert [m["slug"] for m in models][:3] == ["gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex"]
    assert any(m["visibility"] == "hide" for m in models)
    backend.models = [{"slug": "only"}]
    assert client.get("/models").json() == {"models": [{"slug": "only"}]}
    assert client.post("/responses/compact", json={"input": []}).json()["output"][0]["type"] == "compaction"
    assert client.get("/responses").status_code == 405
    assert httpx.get(f"{backend.base_url}/oauth/token").json() == {"detail": "Not Found"}

    def token(rec: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        return 200, {"content-type": "application/json"}, orjson.dumps({"echo": rec.json})

    backend.extra_routes[("POST", "/oauth/token")] = token
    assert httpx.post(f"{backend.base_url}/oauth/token?a=1", json={"k": 1}).json() == {"echo": {"k": 1}}
    assert [(r.method, r.route, r.status) for r in backend.requests] == [
        ("GET", "/backend-api/codex/models", 200), ("GET", "/backend-api/codex/models", 200),
        ("POST", "/backend-api/codex/responses/compact", 200), ("GET", "/backend-api/codex/responses", 405),
        ("GET", "/oauth/token", 404), ("POST", "/oauth/token", 200),
    ]  # fmt: skip


def test_standalone_cli() -> None:
    root = Path(__file__).resolve().parents[3]
    cmd = [sys.executable, "-m", "scripts.fakes.codex_backend", "--port", "0"]
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on 127.0.0.1:")
        url = f"http://{line.split()[-1]}/backend-api/codex/responses"
        assert "Hello from fake Codex" in httpx.post(url, json=body(), headers=AUTH, timeout=5).text
    finally:
        proc.terminate()
        proc.wait(5)


# ------------------------------------------------------------------ event builders


def _check_stream(events: list[Any]) -> list[dict[str, Any]]:
    dicts = [e for e in events if isinstance(e, dict)]
    assert [e["sequence_number"] for e in dicts] == list(range(len(dicts)))
    assert dicts[0]["type"] == "response.created" and dicts[1]["type"] == "response.in_progress"
    return dicts


def test_builders_compose_and_renumber() -> None:
    events = ev.response(
        ev.reasoning(["**Plan**", "more"]),
        ev.tool_calls([("shell", '{"a":"\\u00e9"}', "c1"), ("read", "{}", "c2")], interleave=True, split=3),
        ev.error_event("x", "y"),
        response_id="resp_9", usage=ev.usage(900, 120, cached=768, reasoning=64), full_output=True,
    )  # fmt: skip
    dicts = _check_stream(events)
    done = [e["item"] for e in dicts if e["type"] == "response.output_item.done"]
    assert [i["type"] for i in done] == ["reasoning", "function_call", "function_call"]
    assert [e["output_index"] for e in dicts if e["type"] == "response.output_item.done"] == [0, 1, 2]
    assert len({i["id"] for i in done}) == 3 and all(i["id"].startswith(("rs_", "fc_")) for i in done)
    deltas = [e for e in dicts if e["type"] == "response.function_call_arguments.delta"]
    assert [d["output_index"] for d in deltas] == [1, 2, 1, 2, 1]  # interleaved; "{}" only splits in 2
    assert "".join(d["delta"] for d in deltas if d["output_index"] == 1) == '{"a":"\\u00e9"}'
    assert all(d["item_id"] == done[d["output_index"]]["id"] for d in deltas)
    assert done[0]["summary"][1]["text"] == "more" and done[0]["encrypted_content"].startswith("gAAAA")
    final = dicts[-1]["response"]
    assert final["usage"]["total_tokens"] == 1020 and final["output"] == done and final["id"] == "resp_9"
    assert any(e["type"] == "error" for e in dicts)


def test_builders_variants() -> None:
    calls = _check_stream(ev.tool_calls([("f", '{"x":1}', "c")], args_only_in_done=True, text_before="Sure"))
    assert [e["type"] for e in calls if "arguments" in e["type"]] == []
    assert calls[2]["item"]["type"] == "message" and calls[-2]["item"]["arguments"] == '{"x":1}'
    refusal = _check_stream(ev.refusal("no"))
    assert refusal[-2]["item"]["content"] == [{"type": "refusal", "refusal": "no"}]
    empty = _check_stream(ev.text(""))
    assert not any(e["type"] == "response.output_text.delta" for e in empty)
    assert _check_stream(ev.reasoning([]))[2]["item"]["summary"] == []
    failed = _check_stream(ev.failed("rate_limit_exceeded", "try again in 1s", after=ev.text("Hel")))
    assert failed[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "try again in 1s"}
    assert failed[-1]["type"] == "response.failed" and failed[-1]["response"]["status"] == "failed"
    inc = _check_stream(ev.incomplete("content_filter", after=ev.text("x")))
    assert inc[-1]["response"]["incomplete_details"] == {"reason": "content_filter"}
    assert _check_stream(ev.response(ev.text("x"), status=None))[-1]["type"] == "response.output_item.done"
    original = ev.text("x")
    snapshot = copy.deepcopy(original)
    ev.response(ev.text("a"), original)
    assert original == snapshot  # composing never mutates its inputs
