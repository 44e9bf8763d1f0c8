"""Upstream faults through a real gateway, for streaming and non-streaming clients: what the client sees.

The rule behind every failure test: a client never gets a clean ending (`finish_reason` + `data: [DONE]`, or a
200 chat.completion) when the upstream failed. It gets an HTTP error (an OpenAI envelope where the gateway
answers, mitmproxy's own 502 page where mitmproxy does), an in-stream `data: {"error": ...}` event, or a cut
(incomplete chunked) body.

Scenarios needing the fake Codex backend use the session gateway; faults the fake cannot produce (nothing sent
before the status line for a while, a TCP reset before or during the answer) use `RawUpstream`, a socket server
scripted byte by byte, behind a gateway of its own.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from tests.conftest import DONE
from tests.conftest import ChatSummary
from tests.conftest import check_chat_stream
from tests.conftest import parse_chat_sse

CHAT = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}
ENVELOPE_KEYS = {"message", "type", "param", "code"}
STREAM = pytest.mark.parametrize("stream", [True, False], ids=["streaming", "non-streaming"])
CLOUDFLARE_403 = (
    "<!DOCTYPE html><html lang='en-US'><head><title>Just a moment...</title>"
    "<meta http-equiv='refresh' content='390'></head><body><div id='cf-wrapper'>Checking your browser"
    "<script>window._cf_chl_opt={cvId: '3'}</script></div></body></html>"
)


@dataclass
class Seen:
    """Everything the client got: status, headers and the body bytes up to the end or the cut."""

    status: int
    headers: httpx.Headers
    body: bytes
    cut: bool  # the connection ended before the (chunked) body was complete

    @property
    def is_sse(self) -> bool:
        return self.headers.get("content-type", "").startswith("text/event-stream")

    def stream(self) -> ChatSummary:
        """The received events checked as a chat stream (a valid prefix when the stream was cut)."""
        assert self.is_sse and self.status == 200
        events = parse_chat_sse(self.body)
        if self.cut:
            events = [*events, {"error": {"message": "cut", "type": "cut", "param": None, "code": None}}]
        return check_chat_stream(events, include_usage=False)

    def envelope(self, status: int) -> dict[str, Any]:
        assert self.status == status, (self.status, self.body[:300])
        assert self.headers["content-type"] == "application/json" and not self.cut
        doc = orjson.loads(self.body)
        assert set(doc) == {"error"} and set(doc["error"]) == ENVELOPE_KEYS, doc
        assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
        return dict(doc["error"])

    def completion(self) -> dict[str, Any]:
        assert self.status == 200 and self.headers["content-type"] == "application/json" and not self.cut
        return dict(orjson.loads(self.body))


def call(base_url: str, *, stream: bool, timeout: float = 30) -> Seen:
    body = {**CHAT, "stream": stream}
    received = b""
    with httpx.Client(timeout=timeout) as client:
        with client.stream("POST", base_url + "/v1/chat/completions", json=body) as r:
            try:
                for piece in r.iter_raw():
                    received += piece
            except httpx.RemoteProtocolError:
                return Seen(r.status_code, r.headers, received, cut=True)
            return Seen(r.status_code, r.headers, received, cut=False)


def assert_not_clean(seen: Seen) -> None:
    """The upstream failed: no finish_reason with [DONE], no 200 chat.completion."""
    if seen.is_sse:
        events = parse_chat_sse(seen.body) if seen.body else []
        assert DONE not in events, "a failed stream ended with [DONE]"
        finishes = [c for c in events if isinstance(c, dict) for ch in c.get("choices", ()) if ch.get("finish_reason")]
        assert not finishes, "a failed stream carries a finish_reason"
        assert seen.cut or (events and isinstance(events[-1], dict) and "error" in events[-1])
    else:
        assert seen.status != 200, seen.body[:300]


# -- fake backend scenarios ------------------------------------------------------------------------------------


@STREAM
def test_slow_deltas_still_complete(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool) -> None:
    deltas = ["One", " slow", " word", " at", " a", " time."]
    backend.enqueue(SSEScript(ev.text(deltas), delay_s=0.05))
    seen = call(gateway.base_url, stream=stream)
    if stream:
        summary = seen.stream()
        assert (summary.ok, summary.content, summary.finish_reason) == (True, "".join(deltas), "stop")
        assert [c["choices"][0]["delta"].get("content") for c in summary.chunks[1:-1]] == deltas
    else:
        choice = seen.completion()["choices"][0]
        assert (choice["message"]["content"], choice["finish_reason"]) == ("".join(deltas), "stop")


@STREAM
def test_a_late_first_event_still_completes(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool) -> None:
    """Headers at once, then nothing until the fake is released (well inside codex_idle_timeout)."""
    release = threading.Event()
    backend.enqueue(SSEScript(ev.text(["late", " but fine"]), hold_after=0, release=release))
    timer = threading.Timer(0.5, release.set)  # the delay itself, not a timing assertion
    timer.start()
    try:
        seen = call(gateway.base_url, stream=stream)
    finally:
        timer.cancel()
        release.set()
    if stream:
        assert (seen.stream().ok, seen.stream().content) == (True, "late but fine")
    else:
        assert seen.completion()["choices"][0]["message"]["content"] == "late but fine"


@STREAM
def test_headers_then_connection_closed(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool) -> None:
    """A 200 with no event at all before the upstream closes: a streaming client's body is cut (it got the
    headers already); a non-streaming client gets mitmproxy's own 502 page (HTML, no envelope)."""
    backend.enqueue(SSEScript(ev.text(["never"]), cut_after=0))
    seen = call(gateway.base_url, stream=stream)
    if stream:
        assert (seen.status, seen.cut, seen.body) == (200, True, b"")
    else:
        assert (seen.status, seen.headers["content-type"]) == (502, "text/html")
    assert_not_clean(seen)


@STREAM
def test_connection_closed_mid_stream(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool) -> None:
    events = ev.text(["Hel", "lo", " world"])
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.delta")
    backend.enqueue(SSEScript(events, cut_after=first_delta + 1))
    seen = call(gateway.base_url, stream=stream)
    if stream:
        assert seen.cut and seen.stream().content == "Hel"
    else:
        assert (seen.status, seen.headers["content-type"]) == (502, "text/html")
    assert_not_clean(seen)


@STREAM
def test_junk_lines_around_a_complete_answer_are_skipped(
    gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool
) -> None:
    """Comments, non-JSON data lines and lines without a field carry no content: like Codex, the gateway skips
    them. The answer itself is complete (every delta and response.completed arrived), so it finishes cleanly."""
    events: list[Any] = list(ev.text(["Hel", "lo"]))
    events[2:2] = [": keep-alive\n\n", "data: not json\n\n", "data: [1, 2\n\n", "garbage without a colon\n\n"]
    events.insert(-1, "event: response.output_text.delta\ndata: <html>\n\n")
    backend.enqueue(SSEScript(events))
    seen = call(gateway.base_url, stream=stream)
    if stream:
        assert (seen.stream().ok, seen.stream().content) == (True, "Hello")
    else:
        assert seen.completion()["choices"][0]["message"]["content"] == "Hello"


@STREAM
@pytest.mark.parametrize(
    "script",
    [
        SSEScript(["data: {not json\n\n", "event: response.created\ndata: <<<\n\n", "data: [DONE]\n\n"]),
        ErrorScript(200, "<html><body>Sign in to the Wi-Fi</body></html>", headers={"content-type": "text/html"}),
    ],
    ids=["only malformed events", "200 with an HTML page"],
)
def test_a_body_without_events_is_an_incomplete_answer(
    gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool, script: SSEScript | ErrorScript
) -> None:
    backend.enqueue(script)
    seen = call(gateway.base_url, stream=stream)
    if stream:
        summary = seen.stream()
        assert not summary.ok and summary.error is not None and summary.error["code"] == "stream_incomplete"
    else:
        assert seen.envelope(502)["code"] == "stream_incomplete"
    assert_not_clean(seen)


def corrupt_delta(events: list[Any], n: int) -> list[Any]:
    """The n-th text delta's data line cut off mid-JSON: the gateway cannot parse it (and skips it, as Codex)."""
    at = [i for i, e in enumerate(events) if isinstance(e, dict) and e["type"] == "response.output_text.delta"][n]
    delta = events[at]["delta"]
    return [*events[:at], f'data: {{"type":"response.output_text.delta","delta":"{delta}\n\n', *events[at + 1 :]]


@STREAM
def test_a_lost_last_delta_is_restored_from_the_finished_item(
    gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool
) -> None:
    """The finished item (response.output_item.done) holds the whole text: a missing tail is sent from it."""
    backend.enqueue(SSEScript(corrupt_delta(ev.text(["Hel", "lo"]), 1)))
    seen = call(gateway.base_url, stream=stream)
    if stream:
        assert (seen.stream().ok, seen.stream().content, seen.stream().finish_reason) == (True, "Hello", "stop")
    else:
        assert seen.completion()["choices"][0]["message"]["content"] == "Hello"


@STREAM
def test_a_lost_middle_delta_fails_the_answer(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool) -> None:
    """Text lost before other text cannot be repaired: never a clean but different answer."""
    backend.enqueue(SSEScript(corrupt_delta(ev.text(["Hel", "lo", " world"]), 0)))
    seen = call(gateway.base_url, stream=stream)
    if stream:
        summary = seen.stream()
        assert not summary.ok and summary.error is not None and summary.error["code"] == "stream_corrupted"
    else:
        assert seen.envelope(502)["code"] == "stream_corrupted"
    assert_not_clean(seen)


@STREAM
def test_cloudflare_403_page_is_a_403_envelope(
    gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool
) -> None:
    backend.enqueue(ErrorScript(403, CLOUDFLARE_403, headers={"content-type": "text/html; charset=UTF-8"}))
    error = call(gateway.base_url, stream=stream).envelope(403)
    assert error["type"] == "permission_error"
    assert error["message"] == "The Codex backend refused the request (HTTP 403): Just a moment..."


@STREAM
@pytest.mark.parametrize("status", [500, 502, 503])
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The Codex backend failed (HTTP {status}): no details"),
        ({"detail": "Upstream connect error"}, "Upstream connect error"),
        ({"error": {"message": "An error occurred.", "type": "server_error", "code": None}}, "An error occurred."),
    ],
    ids=["no body", "detail body", "envelope body"],
)
def test_upstream_5xx_is_the_same_5xx_envelope(
    gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool, status: int, body: Any, message: str
) -> None:
    backend.enqueue(ErrorScript(status, body))
    error = call(gateway.base_url, stream=stream).envelope(status)
    assert (error["type"], error["message"]) == ("server_error", message.format(status=status))


def test_retry_after_of_a_503_reaches_the_client(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    backend.enqueue(ErrorScript(503, b"", headers={"retry-after": "30"}))
    seen = call(gateway.base_url, stream=True)
    seen.envelope(503)
    assert seen.headers["retry-after"] == "30"


RATE_LIMITED = {"error": {"type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "message": "Slow down."}}


@STREAM
def test_429_with_retry_after(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool) -> None:
    backend.enqueue(ErrorScript(429, RATE_LIMITED, headers={"retry-after": "7"}))
    seen = call(gateway.base_url, stream=stream)
    error = seen.envelope(429)
    assert (error["type"], error["code"], error["message"]) == ("rate_limit_error", "rate_limit_exceeded", "Slow down.")
    assert seen.headers["retry-after"] == "7"
    assert "x-should-retry" not in seen.headers, "a short wait: the SDK may retry"


@STREAM
@pytest.mark.parametrize("body", [RATE_LIMITED, b""], ids=["envelope body", "no body"])
def test_429_without_retry_after(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool, body: Any) -> None:
    backend.enqueue(ErrorScript(429, body))
    seen = call(gateway.base_url, stream=stream)
    error = seen.envelope(429)
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "retry-after" not in seen.headers


def test_a_plain_429_does_not_claim_the_usage_limit(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    backend.enqueue(ErrorScript(429, b""))
    error = call(gateway.base_url, stream=False).envelope(429)
    assert "usage limit" not in error["message"].lower()


@pytest.mark.parametrize(
    ("code", "message"),
    [("server_is_overloaded", "Try again later."), ("context_length_exceeded", "Your input exceeds the context.")],
)
def test_response_failed_after_partial_output_streaming(
    gateway: GatewayProcess, backend: FakeCodexBackend, code: str, message: str
) -> None:
    backend.enqueue(SSEScript(ev.failed(code, message, after=ev.text(["Hel", "lo"]))))
    seen = call(gateway.base_url, stream=True)
    summary = seen.stream()
    assert not seen.cut and not summary.ok and summary.content == "Hello"
    assert summary.error is not None and (summary.error["code"], summary.error["message"]) == (code, message)
    assert_not_clean(seen)


@pytest.mark.parametrize(
    ("code", "status", "etype"),
    [
        ("server_is_overloaded", 503, "server_error"),
        ("context_length_exceeded", 400, "invalid_request_error"),
        ("rate_limit_exceeded", 429, "rate_limit_error"),
        ("server_error", 502, "server_error"),
    ],
)
def test_response_failed_after_partial_output_non_streaming(
    gateway: GatewayProcess, backend: FakeCodexBackend, code: str, status: int, etype: str
) -> None:
    """The status says what kind of failure it was (a 5xx only for server trouble: the SDK retries those)."""
    backend.enqueue(SSEScript(ev.failed(code, "It failed.", after=ev.text(["Hel", "lo"]))))
    seen = call(gateway.base_url, stream=False)
    error = seen.envelope(status)
    assert (error["type"], error["code"], error["message"]) == (etype, code, "It failed.")
    assert b"Hello" not in seen.body


@STREAM
def test_error_event_after_partial_output(gateway: GatewayProcess, backend: FakeCodexBackend, stream: bool) -> None:
    backend.enqueue(SSEScript(ev.response(ev.text(["Par"]), ev.error_event("server_error", "Boom."), status=None)))
    seen = call(gateway.base_url, stream=stream)
    if stream:
        summary = seen.stream()
        assert summary.content == "Par" and summary.error is not None and summary.error["message"] == "Boom."
    else:
        assert seen.envelope(502)["message"] == "Boom."
    assert_not_clean(seen)


# -- raw socket upstream: timing and TCP resets ----------------------------------------------------------------

Step = tuple[str, Any]  # ("sleep", seconds) | ("send", bytes) | ("rst", None) | ("close", None)


class RawUpstream:
    """A loopback HTTP/1.1 'server' that reads one request per connection and then follows a scripted plan:
    POST requests take the next plan (FIFO); anything else gets a 404. Threads are daemons; `stop` closes all."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = int(self._listener.getsockname()[1])
        self.plans: list[list[Step]] = []
        self.requests: list[bytes] = []
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True, name=f"raw-upstream-{self.port}").start()

    def enqueue(self, *steps: Step) -> None:
        with self._lock:
            self.plans.append(list(steps))

    def stop(self) -> None:
        self._listener.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            line = self._read_request(conn)
            if line is None:
                return
            with self._lock:
                self.requests.append(line)
                plan = self.plans.pop(0) if line.startswith(b"POST ") and self.plans else None
            for kind, arg in plan or [("send", b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")]:
                if kind == "sleep":
                    time.sleep(arg)
                elif kind == "send":
                    conn.sendall(arg)
                elif kind == "rst":  # SO_LINGER 0: close() sends a TCP RST instead of a FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                elif kind == "close":
                    return
        except OSError:
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()

    @staticmethod
    def _read_request(conn: socket.socket) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for header in head.split(b"\r\n")[1:]:
            name, _, value = header.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head.split(b"\r\n", 1)[0]


SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def chunked(*blobs: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(b), b) for b in blobs if b)


@pytest.fixture(scope="module")
def raw() -> Iterator[RawUpstream]:
    upstream = RawUpstream()
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def raw_gateway(
    raw: RawUpstream, login_home: tuple[Path, FakeLogin], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with GatewayProcess(raw.port, login_home[0], tmp_path_factory.mktemp("raw-gw")) as gw:
        yield gw


@pytest.fixture(autouse=True)
def _fresh_raw(request: pytest.FixtureRequest) -> None:
    if "raw" in request.fixturenames:
        request.getfixturevalue("raw").plans.clear()


@STREAM
def test_slow_first_byte_still_completes(raw: RawUpstream, raw_gateway: GatewayProcess, stream: bool) -> None:
    """Nothing at all (not even the status line) for a while, then a normal answer."""
    events = SSEScript(ev.text(["after", " a wait"])).encoded()
    raw.enqueue(("sleep", 0.5), ("send", SSE_HEAD + chunked(*events) + b"0\r\n\r\n"))
    seen = call(raw_gateway.base_url, stream=stream)
    if stream:
        assert (seen.stream().ok, seen.stream().content) == (True, "after a wait")
    else:
        assert seen.completion()["choices"][0]["message"]["content"] == "after a wait"


@STREAM
@pytest.mark.parametrize("how", ["rst", "close"])
def test_connection_reset_before_headers(raw: RawUpstream, raw_gateway: GatewayProcess, stream: bool, how: str) -> None:
    """mitmproxy answers itself (README, 'What mitmproxy answers itself'): a 502 page in HTML, no envelope."""
    raw.enqueue((how, None))
    seen = call(raw_gateway.base_url, stream=stream)
    assert (seen.status, seen.headers["content-type"], seen.cut) == (502, "text/html", False)
    assert b"502 Bad Gateway" in seen.body
    assert_not_clean(seen)


@STREAM
def test_connection_reset_mid_stream(raw: RawUpstream, raw_gateway: GatewayProcess, stream: bool) -> None:
    events = SSEScript(ev.text(["Hel", "lo"])).encoded()
    first_delta = next(i for i, blob in enumerate(events) if b"output_text.delta" in blob)
    raw.enqueue(("send", SSE_HEAD + chunked(*events[: first_delta + 1])), ("rst", None))
    seen = call(raw_gateway.base_url, stream=stream)
    if stream:
        assert seen.cut and seen.stream().content == "Hel"
    else:
        assert (seen.status, seen.headers["content-type"]) == (502, "text/html")
    assert_not_clean(seen)


@STREAM
def test_body_shorter_than_its_content_length(raw: RawUpstream, raw_gateway: GatewayProcess, stream: bool) -> None:
    events = SSEScript(ev.text(["Hel", "lo"])).encoded()
    partial = b"".join(events[:-1])  # everything but response.completed
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % (len(partial) + 999)
    raw.enqueue(("send", head + partial), ("close", None))
    seen = call(raw_gateway.base_url, stream=stream)
    if stream:
        assert seen.cut and seen.stream().content == "Hello"
    else:
        assert seen.status == 502
    assert_not_clean(seen)
