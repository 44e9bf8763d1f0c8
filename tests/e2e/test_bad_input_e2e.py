"""Hostile input through a real gateway (mitmdump + the addon), over real HTTP.

The promise: every answer to a well-formed HTTP request carrying bad input is a 4xx OpenAI envelope
`{"error": {"message", "type", "param", "code"}}` (with `param` naming the field where there is one), never a 5xx
or a dropped connection, and nothing reaches the backend (`backend.requests == []`).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from tests.test_request_fuzz import Mutation
from tests.test_request_fuzz import deep_schema
from tests.test_request_fuzz import mutated_requests

CHAT_PATH = "/v1/chat/completions"
CHAT = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}
JSON = {"content-type": "application/json"}
ENVELOPE_KEYS = {"message", "type", "param", "code"}
DEEP_ARRAYS = b"[" * 10_000 + b"]" * 10_000
MIB = 1024 * 1024


def assert_envelope(r: httpx.Response, status: int, *, param: str | None = None, code: str | None = None) -> None:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == ENVELOPE_KEYS, body
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["param"] == param, error
    if code is not None:
        assert error["code"] == code, error


@pytest.fixture
def http(gateway: GatewayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=30) as c:
        yield c


def _with(**changes: Any) -> bytes:
    return orjson.dumps({**CHAT, **changes})


# -- bytes that are not a JSON object ---------------------------------------------------------------------------

NOT_JSON: dict[str, bytes] = {
    "truncated": b'{"model": "gpt-5.4", "messages": [',
    "trailing garbage": orjson.dumps(CHAT) + b" }",
    "NaN literal": b'{"model": "gpt-5.4", "messages": [], "temperature": NaN}',
    "single quotes": b"{'model': 'gpt-5.4'}",
    "utf-8 BOM": b"\xef\xbb\xbf" + orjson.dumps(CHAT),
    "invalid utf-8 byte": b'{"model": "gpt-\xff", "messages": [{"role": "user", "content": "hi"}]}',
    "overlong utf-8": b'{"model": "gpt-5.4", "messages": [{"role": "user", "content": "\xc0\xaf"}]}',
    "utf-8 surrogate bytes": b'{"model": "gpt-5.4", "messages": [{"role": "user", "content": "\xed\xa0\x80"}]}',
    "truncated utf-8 sequence": b'{"model": "gpt-5.4", "messages": [{"role": "user", "content": "\xe2\x82"}]}',
    "lone surrogate escape": b'{"model": "gpt-5.4", "messages": [{"role": "user", "content": "\\ud800"}]}',
    "10k nested arrays": b'{"model": "gpt-5.4", "messages": ' + DEEP_ARRAYS + b"}",
    "10k nested objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "10k nested arrays as the body": DEEP_ARRAYS,
    "empty body": b"",
    "whitespace only": b" \n\t ",
}


@pytest.mark.parametrize("body", NOT_JSON.values(), ids=NOT_JSON.keys())
def test_bytes_that_are_not_json_are_a_400(http: httpx.Client, backend: FakeCodexBackend, body: bytes) -> None:
    assert_envelope(http.post(CHAT_PATH, content=body, headers=JSON), 400, code="invalid_json")
    assert backend.requests == []


@pytest.mark.parametrize("body", [b"[]", orjson.dumps([CHAT]), b"null", b'"hi"', b"42", b"true"])
def test_json_that_is_not_an_object_is_a_400(http: httpx.Client, backend: FakeCodexBackend, body: bytes) -> None:
    assert_envelope(http.post(CHAT_PATH, content=body, headers=JSON), 400, code="invalid_type")
    assert backend.requests == []


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/images/generations"])
@pytest.mark.parametrize("body", [NOT_JSON["invalid utf-8 byte"], NOT_JSON["10k nested arrays"], b"", b"[]"])
def test_other_json_endpoints_reject_broken_bodies_too(
    http: httpx.Client, backend: FakeCodexBackend, path: str, body: bytes
) -> None:
    r = http.post(path, content=body, headers=JSON)
    assert_envelope(r, 400, code="invalid_type" if body == b"[]" else "invalid_json")
    assert backend.requests == []


# -- well-formed JSON, bad fields -------------------------------------------------------------------------------

BAD_FIELDS: dict[str, tuple[bytes, str]] = {
    "unknown role": (_with(messages=[{"role": "robot", "content": "hi"}]), "messages[0].role"),
    "unknown content part type": (
        _with(messages=[{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]),
        "messages[0].content[0].type",
    ),
    "unknown tool type": (_with(tools=[{"type": "code_interpreter"}]), "tools[0].type"),
    "tool schema that is a list": (
        _with(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
        "tools[0].function.parameters",
    ),
    "tool message without a matching call": (
        _with(messages=[CHAT["messages"][0], {"role": "tool", "tool_call_id": "call_x", "content": "42"}]),
        "messages[1].tool_call_id",
    ),
    "tool call without a result": (
        _with(
            messages=[
                CHAT["messages"][0],
                {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
            ]
        ),
        "messages[1].tool_calls",
    ),
    "messages not a list": (_with(messages="hi"), "messages"),
    "no messages": (_with(messages=[]), "messages"),
    "model missing": (orjson.dumps({"messages": CHAT["messages"]}), "model"),
    "stream not a boolean": (_with(stream="yes"), "stream"),
    "tool schema of type string": (
        _with(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}]),
        "tools[0].function.parameters",
    ),
    "dotted tool name": (
        _with(tools=[{"type": "function", "function": {"name": "web.search"}}]),
        "tools[0].function.name",
    ),
    "non-JSON tool-call arguments": (
        _with(
            messages=[
                CHAT["messages"][0],
                {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "q=1"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "x"},
            ]
        ),
        "messages[1].tool_calls[0].function.arguments",
    ),
    "image url that is no url": (
        _with(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "cat.png"}}]}]),
        "messages[0].content[0].image_url.url",
    ),
    "1 MiB role": (_with(messages=[{"role": "r" * MIB, "content": "hi"}]), "messages[0].role"),
    "1 MiB tool name": (_with(tools=[{"type": "function", "function": {"name": "f" * MIB}}]), "tools[0].function.name"),
    "1 MiB reasoning effort": (_with(reasoning_effort="e" * MIB), "reasoning_effort"),
    "1k nested arrays as content": (
        b'{"model":"gpt-5.4","messages":[{"role":"user","content":[' + b"[" * 1000 + b"]" * 1000 + b"]}]}",
        "messages[0].content[0]",
    ),
}


@pytest.mark.parametrize(("body", "param"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_a_bad_field_is_a_400_naming_it(http: httpx.Client, backend: FakeCodexBackend, body: bytes, param: str) -> None:
    assert_envelope(http.post(CHAT_PATH, content=body, headers=JSON), 400, param=param)
    assert backend.requests == []


def test_a_deeply_nested_tool_schema_is_a_400(http: httpx.Client, backend: FakeCodexBackend) -> None:
    r = http.post(CHAT_PATH, content=deep_schema(300), headers=JSON)
    assert backend.requests == []
    assert_envelope(r, 400, param="tools[0].function.parameters")


TOOL = b'{"type":"function","name":"f","parameters":{"type":"object","properties":%s}}'
RESPONSES_DEEP = {  # where a value nested 300 levels deep sits in a /v1/responses body → the param naming it
    "tool schema": (b'"input":"hi","tools":[' + TOOL + b"]", "tools[0]"),
    "input item": (b'"input":[{"role":"user","content":"hi","extra":%s}]', "input[0]"),
    "text format schema": (b'"input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":%s}}', "text"),
}


@pytest.mark.parametrize(("template", "where"), RESPONSES_DEEP.values(), ids=RESPONSES_DEEP.keys())
def test_a_deeply_nested_responses_body_is_a_400(
    http: httpx.Client, backend: FakeCodexBackend, template: bytes, where: str
) -> None:
    nested = b'{"a":' * 300 + b"{}" + b"}" * 300
    r = http.post("/v1/responses", content=b'{"model":"gpt-5.4",' + template % nested + b"}", headers=JSON)
    assert r.status_code == 400, r.text[:300]
    param = r.json()["error"]["param"]
    assert_envelope(r, 400, param=param)
    assert isinstance(param, str) and param.startswith(where)
    assert backend.requests == []


# -- methods, paths, content types, framing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", CHAT_PATH, "POST"),
        ("PUT", CHAT_PATH, "POST"),
        ("DELETE", CHAT_PATH, "POST"),
        ("PATCH", CHAT_PATH, "POST"),
        ("OPTIONS", CHAT_PATH, "POST"),
        ("POST", "/v1/models", "GET"),
        ("DELETE", "/v1/models/gpt-5.4", "GET"),
        ("GET", "/v1/responses", "POST"),
    ],
)
def test_a_wrong_method_is_a_405_naming_the_allowed_one(
    http: httpx.Client, backend: FakeCodexBackend, method: str, path: str, allowed: str
) -> None:
    r = http.request(method, path, content=orjson.dumps(CHAT), headers=JSON)
    assert_envelope(r, 405, code="method_not_allowed")
    assert r.headers["allow"] == allowed
    assert backend.requests == []


@pytest.mark.parametrize("path", ["/", "/v1", "/v1/embeddings", "/v2/chat/completions", "/v1/chat/completion"])
def test_an_unknown_path_is_a_404(http: httpx.Client, backend: FakeCodexBackend, path: str) -> None:
    assert_envelope(http.post(path, content=orjson.dumps(CHAT), headers=JSON), 404, code="unknown_url")
    assert backend.requests == []


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/html; charset=utf-8",
        "application/xml",
        "application/octet-stream",
        "multipart/form-data; boundary=xyz",
        "image/png",
    ],
)
def test_an_odd_content_type_is_a_415(http: httpx.Client, backend: FakeCodexBackend, content_type: str) -> None:
    r = http.post(CHAT_PATH, content=orjson.dumps(CHAT), headers={"content-type": content_type})
    assert_envelope(r, 415, code="unsupported_media_type")
    assert backend.requests == []


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/vnd.api+json", "text/json"]
)
def test_json_spelled_differently_is_accepted(http: httpx.Client, backend: FakeCodexBackend, content_type: str) -> None:
    r = http.post(CHAT_PATH, content=orjson.dumps(CHAT), headers={"content-type": content_type})
    assert r.status_code == 200, r.text
    assert [rec.status for rec in backend.responses_requests()] == [200]


def _chunks(body: bytes, size: int = 7) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def test_a_chunked_request_body_is_read_whole(http: httpx.Client, backend: FakeCodexBackend) -> None:
    r = http.post(CHAT_PATH, content=_chunks(orjson.dumps(CHAT)), headers=JSON)  # an iterator: Transfer-Encoding
    assert r.status_code == 200, r.text
    assert r.request.headers["transfer-encoding"] == "chunked"
    sent = backend.responses_requests()[0].json
    assert isinstance(sent, dict) and sent["input"][0]["content"][0]["text"] == "hi"


def test_a_chunked_bad_body_is_a_400(http: httpx.Client, backend: FakeCodexBackend) -> None:
    body = _with(messages=[{"role": "robot", "content": "hi"}])
    r = http.post(CHAT_PATH, content=_chunks(body), headers=JSON)
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert_envelope(r, 400, param="messages[0].role")
    assert backend.requests == []


def test_answers_keep_the_connection_usable(http: httpx.Client, backend: FakeCodexBackend) -> None:
    """Local error answers are framed correctly: the next request on the same keep-alive connection works."""
    for body in (b"{", b"[]", _with(messages=[])):
        assert http.post(CHAT_PATH, content=body, headers=JSON).status_code == 400
    assert http.get("/v1/chat/completions").status_code == 405
    assert http.post(CHAT_PATH, json=CHAT).status_code == 200
    assert len(backend.responses_requests()) == 1


def test_a_head_request_leaves_the_connection_usable(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    # Two pipelined requests, the second closing the connection: everything the gateway sends is read to EOF.
    requests = b"HEAD /v1/chat/completions HTTP/1.1\r\nHost: x\r\n\r\n"
    requests += b"GET /v1/unknown HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as s:
        s.sendall(requests)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 405 ")
    assert rest.startswith(b"HTTP/1.1 404 "), rest[:200]
    assert backend.requests == []


def _first_response(port: int, request: bytes) -> tuple[bytes, bytes]:
    """Sends raw bytes, reads one response (head and Content-Length body) and leaves the connection open."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536) or pytest.fail(f"connection closed after {data!r}")
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(v) for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length"
        )
        while len(body) < length:
            body += s.recv(65536) or pytest.fail(f"connection closed after {body!r}")
    return head, body


def test_a_content_length_shorter_than_the_body_reads_only_the_declared_bytes(
    gateway: GatewayProcess, backend: FakeCodexBackend
) -> None:
    """`Content-Length: 1` followed by a whole JSON body: the request is `{`, a 400; nothing is forwarded."""
    head = f"POST {CHAT_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1\r\n\r\n"
    status, body = _first_response(gateway.port, head.encode() + orjson.dumps(CHAT))
    assert status.startswith(b"HTTP/1.1 400 ")
    assert orjson.loads(body)["error"]["code"] == "invalid_json"
    assert backend.requests == []


# -- oversized bodies -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_gateway(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    extra = ["--set", "gateway_body_limit=4k"]
    with GatewayProcess(backend.port, login_home[0], tmp_path_factory.mktemp("small"), extra=extra) as gw:
        yield gw


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_over_gateway_body_limit_is_a_413(
    small_gateway: GatewayProcess, backend: FakeCodexBackend, chunked: bool
) -> None:
    body = _with(messages=[{"role": "user", "content": "x" * 8192}])
    with httpx.Client(base_url=small_gateway.base_url, timeout=30) as c:
        r = c.post(CHAT_PATH, content=_chunks(body, 1024) if chunked else body, headers=JSON)
        assert_envelope(r, 413, code="request_too_large")
        assert c.post(CHAT_PATH, json=CHAT).status_code == 200, "the connection and the gateway are still fine"
    assert len(backend.responses_requests()) == 1


# -- one mutated field, end to end ------------------------------------------------------------------------------


@given(m=mutated_requests())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_mutated_requests_are_400s_naming_the_field(http: httpx.Client, backend: FakeCodexBackend, m: Mutation) -> None:
    backend.reset()
    r = http.post(CHAT_PATH, content=m.payload(), headers=JSON)
    assert_envelope(r, 400, param=m.param)
    assert backend.requests == [], m.kind
