"""Capture with `mitmdump -w`, then replay: offline server replay of the capture, and scripts/replay_capture.py.

One gateway (with a gateway key) in front of a module-local fake backend answers a streamed tool call, a
non-streamed text, an upstream 429, an in-stream error event, a client that disconnects mid-stream and an
upstream that cuts the stream; plus /v1/models and a bad request. The saved file is checked for content and
secrets; then the fake is stopped and a second gateway answers the same requests from the file alone.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from codex_gateway.flow_record import FlowRecord
from codex_gateway.flow_record import record_of
from codex_gateway.http.headers import REDACTED
from codex_gateway.inspect.contentviews import chat_answer
from codex_gateway.inspect.summary import FAILED_MARK
from mitmproxy import http

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import ROOT
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import read_saved_flows
from scripts.gateway_process import write_codex_home

TRACE = "0af7651916cd43dd8448eb211c80319c"
BAD_REQUEST = {"model": "gpt-5.4", "messages": []}
RATE_LIMITED = "Rate limit reached for gpt-5.4. Please try again in 2s."
SYSTEM = "<!-- openclaw:attempt:STABLE -->\nYou are a personal assistant running inside OpenClaw."
TOOLS = [
    {
        "type": "function",
        "function": {"name": "read", "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}},
    }
]


def _chat(text: str, *, stream: bool, include_usage: bool = False, tools: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-5.4",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
        "stream": stream,
        "max_completion_tokens": 8192,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    if tools:
        body["tools"], body["tool_choice"] = TOOLS, "auto"
    return body


@dataclass
class Exchange:
    """One client request of the capture run, with the script the fake answered and what the client got."""

    name: str
    body: dict[str, Any]
    script: SSEScript | ErrorScript
    status: int | None = None
    content_type: str = ""
    answer: bytes = b""

    @property
    def replayable(self) -> bool:
        return self.name not in ("disconnect", "cut")


def _exchanges() -> list[Exchange]:
    tool_call = ev.tool_calls(
        [("read", '{"path":"HELLO.txt"}', "call_r1")],
        text_before="Reading.",
        response_id="resp_tc",
        usage=ev.usage(1200, 35, cached=1024, reasoning=12),
    )
    return [
        Exchange(
            "streamed", _chat("read HELLO.txt", stream=True, include_usage=True, tools=True), SSEScript(tool_call)
        ),
        Exchange("buffered", _chat("say hi", stream=False), SSEScript(ev.text(["Hel", "lo"], response_id="resp_bf"))),
        Exchange(
            "upstream_error",
            _chat("are you there?", stream=True),
            ErrorScript(
                429,
                {"error": {"type": "rate_limit_exceeded", "code": "rate_limit_exceeded", "message": RATE_LIMITED}},
                headers={"retry-after": "2"},
            ),
        ),
        Exchange(
            "error_event",
            _chat("fail please", stream=True),
            SSEScript(
                ev.failed("server_is_overloaded", "Try again later.", after=ev.text("Par"), response_id="resp_f")
            ),
        ),
        Exchange("disconnect", _chat("a long story", stream=True), SSEScript([])),  # script set in `capture`
        Exchange(
            "cut",
            _chat("cut me off", stream=True),
            SSEScript(ev.text(["one", "two"], response_id="resp_c"), cut_after=4),
        ),
    ]


@dataclass
class Capture:
    path: Path
    login: FakeLogin
    key: str
    upstream_port: int
    home: Path
    exchanges: list[Exchange]
    flows: list[http.HTTPFlow]

    def chat_flow(self, name: str) -> http.HTTPFlow:
        """The saved flow of an exchange, found by its request (flows are saved in the order they end)."""
        return self.flows[self.index(next(e.body for e in self.exchanges if e.name == name))]

    def index(self, body: dict[str, Any]) -> int:
        """Where the flow of a chat request is in the file (scripts/replay_capture.py names it `sessions#<index>`)."""
        (found,) = [
            i
            for i, f in enumerate(self.flows)
            if (original := _record(f).original_request) is not None
            and original.body is not None
            and orjson.loads(original.body) == body
        ]
        return found

    def in_file_order(self) -> list[Exchange]:
        return sorted(self.exchanges, key=lambda e: self.index(e.body))


def _send(base_url: str, key: str, ex: Exchange) -> None:
    headers = {"Authorization": f"Bearer {key}", "traceparent": f"00-{TRACE}-b7ad6b7169203331-01"}
    with httpx.Client(base_url=base_url, timeout=20) as client:
        try:
            with client.stream("POST", "/v1/chat/completions", json=ex.body, headers=headers) as r:
                ex.status, ex.content_type = r.status_code, r.headers.get("content-type", "")
                ex.answer = r.read()
        except httpx.RemoteProtocolError:
            pass  # the cut stream: the client sees an incomplete chunked body


def _disconnect(base_url: str, key: str, ex: Exchange, backend: FakeCodexBackend) -> None:
    """Reads the first content chunk, then closes the connection while the fake holds the rest back."""
    release = threading.Event()
    events = ev.text(["first", " second"], response_id="resp_dc")
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.delta")
    ex.script = SSEScript(events, hold_after=first_delta + 1, release=release)
    backend.enqueue(ex.script)
    with httpx.Client(base_url=base_url, timeout=20) as client:
        with client.stream(
            "POST", "/v1/chat/completions", json=ex.body, headers={"Authorization": f"Bearer {key}"}
        ) as r:
            ex.status = r.status_code
            for line in r.iter_lines():
                if '"content":"first"' in line:
                    break
    rec = backend.responses_requests()[-1]
    assert rec.disconnected.wait(10), "the fake never saw the client go away"
    release.set()


_read_flows = read_saved_flows


def _record(f: http.HTTPFlow) -> FlowRecord:
    return record_of(f) or FlowRecord()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Capture:
    work = tmp_path_factory.mktemp("capture")
    home = work / "codex-home"
    login = write_codex_home(home)
    key = "gwkey-" + secrets.token_hex(12)
    path = work / "sessions.flows"
    exchanges = _exchanges()
    with FakeCodexBackend() as backend:
        extra = ["-w", str(path), "--set", f"gateway_api_key={key}"]
        with GatewayProcess(backend.port, home, work / "gw", extra=extra) as gw:
            for ex in exchanges:
                if ex.name == "disconnect":
                    _disconnect(gw.base_url, key, ex, backend)
                    continue
                backend.enqueue(ex.script)
                _send(gw.base_url, key, ex)
            auth = {"Authorization": f"Bearer {key}"}
            models = httpx.get(gw.base_url + "/v1/models", headers=auth)
            bad = httpx.post(
                gw.base_url + "/v1/chat/completions", json={"model": "gpt-5.4", "messages": []}, headers=auth
            )
            assert (models.status_code, bad.status_code) == (200, 400)
            flows = _read_flows(path, len(exchanges) + 2)
        port = backend.port
    # The fake is stopped now: its port stays unreachable for the offline replay below.
    return Capture(path, login, key, port, home, exchanges, flows)


# -- the capture ---------------------------------------------------------------------------------------------


def test_capture_holds_every_exchange(capture: Capture) -> None:
    assert len(capture.flows) == len(capture.exchanges) + 2
    by_name = {ex.name: ex for ex in capture.exchanges}
    assert [by_name[n].status for n in ("streamed", "buffered", "upstream_error", "error_event", "disconnect")] == [
        200,
        200,
        429,
        200,
        200,
    ]


@pytest.mark.parametrize("name", ["streamed", "buffered", "upstream_error", "error_event", "disconnect", "cut"])
def test_saved_flow_holds_the_original_request_and_the_upstream_request(capture: Capture, name: str) -> None:
    ex = next(e for e in capture.exchanges if e.name == name)
    f = capture.chat_flow(name)
    original = _record(f).original_request
    assert original is not None
    assert (original.method, original.path) == ("POST", "/v1/chat/completions")
    assert orjson.loads(original.body or "") == ex.body
    assert dict(original.headers)["Authorization"] == REDACTED
    assert f.request.path == "/backend-api/codex/responses"
    upstream = orjson.loads(f.request.content or b"")
    assert upstream["instructions"] == SYSTEM and upstream["stream"] is True and "max_completion_tokens" not in upstream
    assert f.request.headers["authorization"] == REDACTED
    assert f.request.headers["chatgpt-account-id"] == REDACTED


@pytest.mark.parametrize("name", ["streamed", "buffered", "upstream_error", "error_event"])
def test_saved_flow_holds_the_raw_upstream_body(capture: Capture, name: str) -> None:
    ex = next(e for e in capture.exchanges if e.name == name)
    f = capture.chat_flow(name)
    assert f.response is not None
    if isinstance(ex.script, SSEScript):
        assert f.response.raw_content == b"".join(ex.script.encoded())
    else:
        assert f.response.status_code == 429
        assert orjson.loads(f.response.raw_content or b"") == ex.script.body


@pytest.mark.parametrize("name", ["streamed", "buffered", "upstream_error", "error_event"])
def test_what_the_client_received_is_rebuilt_from_the_saved_flow(capture: Capture, name: str) -> None:
    ex = next(e for e in capture.exchanges if e.name == name)
    f = capture.chat_flow(name)
    assert f.response is not None and ex.status is not None
    record = _record(f)
    saved = chat_answer(f.response.raw_content or b"", f.response.status_code, f.response.headers, record)
    received = chat_answer(ex.answer, ex.status, {"content-type": ex.content_type}, record)
    fields = ("id", "model", "finish_reason", "content", "reasoning", "tool_calls", "error", "streamed", "chunks")
    assert {k: getattr(saved, k) for k in fields} == {k: getattr(received, k) for k in fields}
    assert (saved.usage if saved.usage_sent is not False else None) == received.usage


def test_summaries_and_marks(capture: Capture) -> None:
    comments = {ex.name: capture.chat_flow(ex.name).comment for ex in capture.exchanges}
    marks = {ex.name: capture.chat_flow(ex.name).marked for ex in capture.exchanges}
    assert comments["streamed"].startswith(
        "OpenClaw run 0af76519 | gpt-5.4 stream | 2 msgs, 1 tools | finish tool_calls (read)"
        " | in 1200 (cached 1024) out 35 (reasoning 12) | ttft "
    )
    assert comments["streamed"].endswith(" | acct user@example.com | dropped max_completion_tokens,stream_options")
    assert comments["buffered"].startswith(
        "OpenClaw run 0af76519 | gpt-5.4 non-stream | 2 msgs, 0 tools | finish stop |"
    )
    assert comments["upstream_error"].startswith("FAILED upstream 429: ")
    assert comments["error_event"].startswith("FAILED error event: Try again later. | OpenClaw")
    assert comments["disconnect"].startswith("FAILED client disconnected | OpenClaw")
    assert comments["cut"].startswith("FAILED upstream cut the answer off (")
    assert marks == {
        "streamed": "",
        "buffered": "",
        "upstream_error": FAILED_MARK,
        "error_event": FAILED_MARK,
        "disconnect": FAILED_MARK,
        "cut": FAILED_MARK,
    }
    assert capture.chat_flow("disconnect").error is not None
    assert capture.chat_flow("disconnect").error.msg == "Client disconnected."  # type: ignore[union-attr]


def test_failed_flows_are_saved_redacted(capture: Capture) -> None:
    for name in ("upstream_error", "error_event", "disconnect", "cut"):
        f = capture.chat_flow(name)
        assert f.request.headers["authorization"] == REDACTED, name
        assert f.request.headers["chatgpt-account-id"] == REDACTED, name
        assert f.response is None or "set-cookie" not in f.response.headers, name


def test_no_login_secret_in_the_capture_file(capture: Capture) -> None:
    data = capture.path.read_bytes()
    login = capture.login
    for name, secret in [
        ("access_token", login.access_token),
        ("refresh_token", login.refresh_token),
        ("id_token", login.id_token),
        ("account_id", login.account_id),
    ]:
        assert secret.encode() not in data, name
    # Tokens are JWTs: no segment of them may appear either (e.g. a re-encoded payload).
    for part in login.access_token.split(".")[1:] + login.id_token.split(".")[1:]:
        assert part.encode() not in data
    assert b"__cf_bm=" not in data, "upstream Set-Cookie headers are dropped"


def test_no_gateway_key_in_the_chat_flows(capture: Capture) -> None:
    for f in capture.flows:
        if record_of(f) is not None:
            blob = orjson.dumps(f.get_state(), default=lambda b: b.decode("utf-8", "replace"))
            assert capture.key.encode() not in blob, f.request.path


def test_no_gateway_key_anywhere_in_the_capture_file(capture: Capture) -> None:
    assert capture.key.encode() not in capture.path.read_bytes()


# -- offline server replay -----------------------------------------------------------------------------------


def _replay(capture: Capture, home: Path, workdir: Path, *, save: Path | None = None) -> list[Exchange]:
    extra = [
        "--server-replay",
        str(capture.path),
        "--set",
        "server_replay_extra=kill",
        "--set",
        f"gateway_api_key={capture.key}",
    ]
    if save is not None:
        extra += ["-w", str(save)]
    replayed = []
    with GatewayProcess(capture.upstream_port, home, workdir, extra=extra) as gw:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{capture.upstream_port}/", timeout=2)  # the upstream really is down
        for ex in capture.exchanges:
            if ex.replayable:
                again = Exchange(ex.name, ex.body, ex.script)
                _send(gw.base_url, capture.key, again)
                replayed.append(again)
        if save is not None:
            _read_flows(save, len(replayed))
    return replayed


@pytest.fixture(scope="module")
def replayed(capture: Capture, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Exchange], list[http.HTTPFlow]]:
    work = tmp_path_factory.mktemp("replay")
    save = work / "replayed.flows"
    exchanges = _replay(capture, capture.home, work / "gw", save=save)
    return exchanges, _read_flows(save, len(exchanges))


def test_offline_replay_answers_exactly_as_recorded(capture: Capture, replayed: tuple[list[Exchange], Any]) -> None:
    exchanges, _ = replayed
    recorded = {ex.name: ex for ex in capture.exchanges}
    assert [ex.name for ex in exchanges] == ["streamed", "buffered", "upstream_error", "error_event"]
    for ex in exchanges:
        before = recorded[ex.name]
        assert (ex.status, ex.content_type) == (before.status, before.content_type), ex.name
        assert ex.answer == before.answer, ex.name  # byte for byte: ids and timestamps come from upstream


def test_offline_replay_compares_content_tool_calls_finish_and_usage(
    capture: Capture, replayed: tuple[list[Exchange], Any]
) -> None:
    exchanges, _ = replayed
    streamed = next(ex for ex in exchanges if ex.name == "streamed")
    answer = chat_answer(streamed.answer, 200, {}, None)
    assert (answer.content, answer.finish_reason) == ("Reading.", "tool_calls")
    assert answer.tool_calls == [("call_r1", "read", '{"path":"HELLO.txt"}')]
    assert answer.usage is not None and (answer.usage["prompt_tokens"], answer.usage["completion_tokens"]) == (1200, 35)
    buffered = orjson.loads(next(ex for ex in exchanges if ex.name == "buffered").answer)
    assert buffered["choices"][0]["message"]["content"] == "Hello" and buffered["usage"]["total_tokens"] == 16


def test_replayed_flows_are_annotated_as_replays(replayed: tuple[list[Exchange], list[http.HTTPFlow]]) -> None:
    _, flows = replayed
    comments = [f.comment for f in flows]
    assert len(comments) == 4
    assert all(c.split(" | ")[0 if not c.startswith("FAILED") else 1].endswith("(replayed)") for c in comments), (
        comments
    )


@pytest.mark.parametrize("login", ["missing", "expired"])
def test_offline_replay_needs_no_credentials(capture: Capture, tmp_path: Path, login: str) -> None:
    """No login at all, or an expired one whose refresh would need the (unreachable) issuer: no refresh is tried."""
    home = tmp_path / "home"
    home.mkdir()
    if login == "expired":
        write_codex_home(home, expires_in=-60)
    exchanges = _replay(capture, home, tmp_path / "gw")
    recorded = {ex.name: ex for ex in capture.exchanges}
    assert [(ex.status, ex.answer) for ex in exchanges] == [
        (recorded[ex.name].status, recorded[ex.name].answer) for ex in exchanges
    ]


# -- scripts/replay_capture.py -------------------------------------------------------------------------------

SCRIPT = ROOT / "scripts" / "replay_capture.py"


def _run_script(*args: str) -> tuple[int, list[dict[str, Any]]]:
    proc = subprocess.run([sys.executable, str(SCRIPT), *args, "--json"], capture_output=True, text=True, timeout=60)
    return proc.returncode, [orjson.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def live(
    capture: Capture, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, FakeCodexBackend]]:
    with FakeCodexBackend() as backend:
        with GatewayProcess(
            backend.port,
            capture.home,
            tmp_path_factory.mktemp("live"),
            extra=["--set", f"gateway_api_key={capture.key}"],
        ) as gw:
            yield gw, backend


def test_script_replays_a_gateway_capture(capture: Capture, live: tuple[GatewayProcess, FakeCodexBackend]) -> None:
    gw, backend = live
    backend.reset()
    for ex in capture.in_file_order():  # the same answers again; the two requests that got none now get text
        backend.enqueue(ex.script if ex.replayable else SSEScript(ev.text("complete this time")))
    code, results = _run_script(str(capture.path), "--gateway", gw.base_url, "--api-key", capture.key)
    got = {r["name"]: (r["status"], r["verdict"], r["finish_reason"], r["tool_calls"]) for r in results}
    cut = capture.chat_flow("cut").error
    assert code == 0, results
    assert cut is not None
    assert got == {
        _name(capture, "streamed"): (200, "same shape", "tool_calls", ["read"]),
        _name(capture, "buffered"): (200, "same shape", "stop", []),
        _name(capture, "upstream_error"): (429, "error as recorded", None, []),
        _name(capture, "error_event"): (200, "error as recorded", None, []),
        _name(capture, "disconnect"): (200, "no recorded answer (Client disconnected.)", "stop", []),
        _name(capture, "cut"): (200, f"no recorded answer ({cut.msg})", "stop", []),
        f"sessions#{capture.index(BAD_REQUEST)}": (400, "error as recorded", None, []),
    }


def _name(capture: Capture, exchange: str) -> str:
    return f"sessions#{capture.index(next(e.body for e in capture.exchanges if e.name == exchange))}"


def test_script_reports_a_recorded_error_answered_with_200_and_real_mismatches(
    capture: Capture, live: tuple[GatewayProcess, FakeCodexBackend]
) -> None:
    gw, backend = live
    backend.reset()  # every request gets the fake's default text answer
    code, results = _run_script(str(capture.path), "--gateway", gw.base_url, "--api-key", capture.key)
    got = {r["name"]: (r["verdict"], r["details"]) for r in results}
    assert code == 1
    assert got[_name(capture, "streamed")] == (
        "MISMATCH",
        ["finish_reason 'stop' != recorded 'tool_calls'", "tool calls [] != recorded ['read']"],
    )
    assert got[_name(capture, "buffered")] == ("same shape", [])
    assert got[_name(capture, "upstream_error")] == ("recorded error 429, answered 200 now", [])
    assert got[_name(capture, "error_event")] == ("recorded error event, answered 200 now", [])
    assert [r["mismatch"] for r in results].count(True) == 1


def test_script_replays_the_openclaw_captures(capture: Capture, live: tuple[GatewayProcess, FakeCodexBackend]) -> None:
    from tests.e2e.test_openclaw_captures import CAPTURES as OPENCLAW
    from tests.e2e.test_openclaw_captures import RECORDINGS

    gw, backend = live
    backend.reset()
    backend.enqueue(*(rec.codex_script() for rec in RECORDINGS))  # what the recording provider answered, as Codex
    code, results = _run_script(str(OPENCLAW), "--gateway", gw.base_url, "--api-key", capture.key)
    assert code == 0, results
    assert [(r["name"], r["status"], r["verdict"]) for r in results] == [
        (f"{rec.session}#{rec.index}", rec.status, "same shape" if rec.status == 200 else "error as recorded")
        for rec in RECORDINGS
    ]
    assert [r["tool_calls"] for r in results if r["name"] in ("session-1#0", "session-3#0", "session-6#0")] == [
        ["read"],
        ["view_image"],
        ["ls"],
    ]


def test_reading_a_capture_back_keeps_its_summaries(capture: Capture, tmp_path: Path) -> None:
    out = tmp_path / "reread.flows"
    args = [
        str(ROOT / ".venv" / "bin" / "mitmdump"),
        *("-n", "-q", "-s", str(ROOT / "addons" / "gateway.py"), "-r", str(capture.path), "-w", str(out)),
        *("--set", f"confdir={tmp_path / 'confdir'}", "--set", f"codex_home={capture.home}"),
        *("--set", f"gateway_home={tmp_path / 'gateway-home'}"),
    ]
    subprocess.run(args, check=True, capture_output=True, timeout=60)
    before = {f.id: (f.comment, r.finished_at) for f in capture.flows if (r := record_of(f)) is not None}
    after = {f.id: (f.comment, r.finished_at) for f in _read_flows(out, 1) if (r := record_of(f)) is not None}
    assert {k: after[k] for k in before} == before
