"""responses.stream: the `/v1/responses` SSE pass-through, the non-streamed aggregate, and buffered answers.

The gateway's output is checked against the real OpenAI SDK (`responses.create(stream=True)`,
`responses.stream()`, non-streamed `responses.create`) through an in-memory transport, so "the SDK gets a
non-empty output_text" is tested with the SDK's own accumulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import httpx2
import openai
import orjson
import pytest
from codex_gateway.responses.request import prepare
from codex_gateway.responses.request import upstream_session_headers
from codex_gateway.responses.stream import STREAM_INCOMPLETE
from codex_gateway.responses.stream import ResponsesSSEPassThrough
from codex_gateway.responses.stream import aggregate_response
from codex_gateway.responses.stream import buffered_answer
from codex_gateway.responses.stream import failure_status
from codex_gateway.responses.stream import output_text

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_scripts import SSEScript
from tests.conftest import STREAMS
from tests.conftest import Boom
from tests.conftest import raising_after
from tests.conftest import sse_events
from tests.conftest import stream_names

Event = dict[str, Any]


def upstream(events: list[Any], *, crlf: bool = False) -> bytes:
    return b"".join(SSEScript(events, crlf=crlf).encoded())


def pass_through(pieces: list[bytes], **kw: Any) -> tuple[bytes, ResponsesSSEPassThrough]:
    machine = ResponsesSSEPassThrough(**kw)
    out: list[bytes] = []
    for piece in [*(p for p in pieces if p), b""]:
        written = machine(piece)
        assert len(written) <= 1, "one output write per upstream read"
        assert all(written), "a stream callable must never return b''"
        out += written
    return b"".join(out), machine


def whole(body: bytes, **kw: Any) -> tuple[bytes, ResponsesSSEPassThrough]:
    return pass_through([body], **kw)


def frames(out: bytes) -> list[tuple[str | None, Event]]:
    """Strict parse of the gateway's output: `event:` + one `data:` line per frame, LF only."""
    assert out.endswith(b"\n\n")
    result: list[tuple[str | None, Event]] = []
    for frame in out.split(b"\n\n")[:-1]:
        lines = frame.split(b"\n")
        assert b"\r" not in frame
        name = None
        if lines[0].startswith(b"event: "):
            name = lines.pop(0)[len(b"event: ") :].decode()
        assert len(lines) == 1 and lines[0].startswith(b"data: "), frame[:80]
        data = json.loads(lines[0][len(b"data: ") :])
        assert name is None or name == data["type"]
        result.append((name, data))
    return result


def events_of(out: bytes) -> list[Event]:
    return [data for _, data in frames(out)]


def splits(body: bytes) -> list[list[bytes]]:
    """Whole, byte by byte, and a few fixed chunk sizes."""
    out = [[body], [body[i : i + 1] for i in range(len(body))]]
    out += [[body[i : i + n] for i in range(0, len(body), n)] for n in (2, 7, 64, 333)]
    return out


REASONING_AND_CALL = ev.response(
    ev.reasoning(["**Plan**"]),
    ev.tool_calls([("shell", '{"command":["ls"]}', "call_1")]),
    usage=ev.usage(900, 120, cached=768, reasoning=64),
)
TEXT = ev.text(["Hel", "lo"], usage=ev.usage(11, 5))


# -- pass-through -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", stream_names())
def test_recorded_streams_are_split_invariant(name: str) -> None:
    body = (STREAMS / name).read_bytes()
    expected, _ = whole(body)
    for pieces in splits(body):
        assert pass_through(pieces)[0] == expected


@pytest.mark.parametrize("name", stream_names())
def test_recorded_streams_end_with_a_terminal_or_error_event(name: str) -> None:
    out, machine = whole((STREAMS / name).read_bytes())
    last = events_of(out)[-1]
    assert last["type"] in ("response.completed", "response.incomplete", "response.failed", "error")
    assert machine.done
    if last["type"] == "error":
        assert isinstance(last["message"], str) and last["message"] == last["error"]["message"]


def test_events_pass_unchanged_except_the_terminal_one() -> None:
    body = upstream(TEXT)
    out, machine = whole(body)
    sent = [e for e in TEXT if isinstance(e, dict)]
    got = frames(out)
    assert [name for name, _ in got] == [e["type"] for e in sent]
    for before, (_, after) in zip(sent[:-1], got[:-1], strict=True):
        assert after == before
    # the data bytes of a non-terminal event are the upstream bytes
    assert out.split(b"\n\n")[0] == upstream(TEXT[:1]).rstrip(b"\n")
    assert machine.filled_output


@pytest.mark.parametrize(
    ("events", "expected_types"),
    [
        (TEXT, ["message"]),
        (REASONING_AND_CALL, ["reasoning", "function_call"]),
        (
            ev.tool_calls([("a", "{}", "c1"), ("b", '{"x":1}', "c2")], interleave=True, text_before="Let me check."),
            ["message", "function_call", "function_call"],
        ),
        (ev.incomplete("max_output_tokens", after=ev.text("Partial")), ["message"]),
        (ev.failed("server_error", "boom", after=ev.text("Par")), ["message"]),
        (ev.custom_tool_call("apply_patch", "*** Begin Patch", "call_p"), ["custom_tool_call"]),
    ],
    ids=["text", "reasoning-call", "parallel-interleaved", "incomplete", "failed", "custom-tool"],
)
def test_terminal_output_is_filled_from_finished_items(events: list[Any], expected_types: list[str]) -> None:
    out, machine = whole(upstream(events))
    terminal = events_of(out)[-1]["response"]
    done_items = [e["item"] for e in events if isinstance(e, dict) and e.get("type") == "response.output_item.done"]
    assert terminal["output"] == done_items
    assert [it["type"] for it in terminal["output"]] == expected_types
    assert machine.final == terminal


def test_full_output_from_upstream_is_kept_byte_for_byte() -> None:
    events = ev.text(["Hel", "lo"], full_output=True)
    body = upstream(events)
    out, machine = whole(body)
    assert out == body
    assert not machine.filled_output
    assert output_text(machine.final["output"] if machine.final else None) == "Hello"


def test_minimal_codex_stream_without_indexes() -> None:
    out, machine = whole((STREAMS / "minimal_codex.sse").read_bytes())
    terminal = events_of(out)[-1]["response"]
    assert output_text(terminal["output"]) == "fixture hello"
    assert terminal["object"] == "response" and terminal["status"] == "completed" and terminal["id"] == "resp1"
    assert machine.finish_reason == "stop"


def test_unfinished_items_are_rebuilt_from_deltas() -> None:
    # The item never gets its output_item.done: the terminal output still shows what was streamed.
    events = [e for e in ev.text(["Hel", "lo"]) if e["type"] != "response.output_item.done"]
    out, _ = whole(upstream(events))
    item = events_of(out)[-1]["response"]["output"][0]
    assert item["content"] == [{"type": "output_text", "text": "Hello", "annotations": []}]
    calls = ev.tool_calls([("f", '{"a":1}', "c1")], split=3)
    calls = [e for e in calls if e["type"] != "response.output_item.done"]
    out, _ = whole(upstream(calls))
    assert events_of(out)[-1]["response"]["output"][0]["arguments"] == '{"a":1}'


@pytest.mark.parametrize("cut", [0, 1, 3, 6])
def test_stream_without_terminal_event_ends_with_error_event(cut: int) -> None:
    events = ev.text(["Hel", "lo"], status=None)[:cut]
    out, machine = whole(upstream(events))
    got = events_of(out) if out else []
    assert len(got) == cut + 1
    last = got[-1]
    assert last["type"] == "error"
    assert (last["code"], last["message"], last["param"]) == ("stream_incomplete", STREAM_INCOMPLETE, None)
    assert last["error"] == {
        "message": STREAM_INCOMPLETE,
        "type": "server_error",
        "code": "stream_incomplete",
        "param": None,
    }
    assert last["sequence_number"] == cut  # one past the last upstream event (0-based)
    assert machine.error is not None and machine.error["code"] == "stream_incomplete"
    assert machine.finish_reason is None


def test_failed_stream_gets_no_extra_error_event() -> None:
    out, machine = whole(upstream(ev.failed("rate_limit_exceeded", "Slow down. Try again in 11s.")))
    got = events_of(out)
    assert [e["type"] for e in got].count("error") == 0
    assert got[-1]["type"] == "response.failed"
    assert machine.status == "failed"
    assert machine.error == {
        "message": "Slow down. Try again in 11s.",
        "type": "rate_limit_error",
        "code": "rate_limit_exceeded",
        "param": None,
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            {"type": "error", "sequence_number": 3, "code": "server_error", "message": "boom", "param": None},
            {
                "type": "error",
                "sequence_number": 3,
                "code": "server_error",
                "message": "boom",
                "param": None,
                "error": {"message": "boom", "type": "server_error", "code": "server_error", "param": None},
            },
        ),
        (
            {
                "type": "error",
                "sequence_number": 2,
                "error": {
                    "type": "too_many_requests",
                    "code": "rate_limit_exceeded",
                    "message": "Too Many Requests",
                    "param": None,
                },
            },
            {
                "type": "error",
                "sequence_number": 2,
                "error": {
                    "type": "too_many_requests",
                    "code": "rate_limit_exceeded",
                    "message": "Too Many Requests",
                    "param": None,
                },
                "code": "rate_limit_exceeded",
                "message": "Too Many Requests",
                "param": None,
            },
        ),
    ],
    ids=["documented-flat", "real-nested"],
)
def test_upstream_error_events_get_both_shapes(event: Event, expected: Event) -> None:
    out, machine = whole(upstream([*ev.text("x", status=None)[:2], event]))
    assert events_of(out)[-1] == expected
    assert machine.done and machine.error is not None


def test_done_and_junk_are_dropped() -> None:
    body = upstream(TEXT) + b"data: [DONE]\n\n" + b"data: not json\n\n" + b"data: [1,2]\n\n" + b": comment\n\n"
    out, machine = whole(body)
    assert out == whole(upstream(TEXT))[0]
    assert machine.bad_events == 2


def test_crlf_and_dataless_events_are_normalised() -> None:
    out, _ = whole(upstream(TEXT, crlf=True) + b"event: codex.rate_limits\r\n\r\n")
    assert out == whole(upstream(TEXT))[0]


def test_multi_line_data_is_compacted() -> None:
    created = json.dumps(TEXT[0], indent=1).encode().replace(b"\n", b"\ndata: ")
    out, _ = whole(b"event: response.created\ndata: " + created + b"\n\n" + upstream(TEXT[1:]))
    assert events_of(out)[0] == TEXT[0]


def test_unknown_events_pass_through() -> None:
    events = [
        *TEXT[:2],
        *ev.rate_limits_event(),
        {"type": "response.metadata", "headers": {"openai-model": "x"}},
        *TEXT[2:],
    ]
    out, _ = whole(upstream(events))
    types = [e["type"] for e in events_of(out)]
    assert "codex.rate_limits" in types and "response.metadata" in types


def test_partial_reads_write_nothing_until_an_event_is_complete() -> None:
    machine = ResponsesSSEPassThrough()
    body = upstream(TEXT)
    assert machine(body[:10]) == []
    rest = machine(body[10:])
    assert len(rest) == 1 and rest[0]
    assert machine(b"") == []  # terminal seen: nothing more
    assert machine.take_raw_body() == body


def test_outcome_fields() -> None:
    ticks = iter([100.0, 200.0])
    _, machine = whole(upstream(REASONING_AND_CALL), clock=lambda: next(ticks))
    assert machine.response_id == "resp_1" and machine.model == "gpt-5.4" and machine.created_at == 1760000000
    assert machine.status == "completed" and machine.finish_reason == "tool_calls"
    assert machine.tool_calls == ["shell"]
    assert machine.usage == ev.usage(900, 120, cached=768, reasoning=64)
    assert machine.summary_usage == {
        "prompt_tokens": 900,
        "completion_tokens": 120,
        "total_tokens": 1020,
        "prompt_tokens_details": {"cached_tokens": 768},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    assert machine.first_token_at == 100.0  # the first delta (reasoning summary)
    assert machine.events_out == len(REASONING_AND_CALL)


@pytest.mark.parametrize(
    ("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter"), ("other", "length")]
)
def test_incomplete_finish_reason(reason: str, finish: str) -> None:
    _, machine = whole(upstream(ev.incomplete(reason, after=ev.text("x"))))
    assert (machine.status, machine.incomplete_reason, machine.finish_reason) == ("incomplete", reason, finish)


# -- aggregate ----------------------------------------------------------------------------------------------


def test_aggregate_text() -> None:
    status, resp = aggregate_response(upstream(TEXT))
    assert status == 200
    assert resp["id"] == "resp_1" and resp["object"] == "response" and resp["status"] == "completed"
    assert resp["model"] == "gpt-5.4" and resp["created_at"] == 1760000000
    assert resp["output_text"] == "Hello"
    assert resp["usage"] == ev.usage(11, 5)
    assert resp["output"][0]["content"][0]["text"] == "Hello"
    for key in ("parallel_tool_calls", "tool_choice", "tools", "error", "incomplete_details"):
        assert key in resp


def test_aggregate_function_calls_and_reasoning() -> None:
    status, resp = aggregate_response(upstream(REASONING_AND_CALL))
    assert status == 200
    assert [it["type"] for it in resp["output"]] == ["reasoning", "function_call"]
    call = resp["output"][1]
    assert (call["name"], call["arguments"], call["call_id"]) == ("shell", '{"command":["ls"]}', "call_1")
    assert resp["output"][0]["encrypted_content"]
    assert resp["output_text"] == ""


def test_aggregate_incomplete_is_a_200() -> None:
    status, resp = aggregate_response(upstream(ev.incomplete("max_output_tokens", after=ev.text("Part"))))
    assert status == 200
    assert resp["status"] == "incomplete" and resp["incomplete_details"] == {"reason": "max_output_tokens"}
    assert resp["output_text"] == "Part"


def test_aggregate_minimal_stream_gets_defaults() -> None:
    status, resp = aggregate_response((STREAMS / "minimal_codex.sse").read_bytes(), model="gpt-5.4")
    assert status == 200
    assert resp["model"] == "gpt-5.4" and resp["output_text"] == "fixture hello"
    assert isinstance(resp["created_at"], int) and resp["tools"] == [] and resp["usage"] is None


# (id, events, status, type, code)
FAILURES: list[tuple[str, list[Any], int, str, str]] = [
    (
        "rate-limit",
        ev.failed("rate_limit_exceeded", "Try again in 11s"),
        429,
        "rate_limit_error",
        "rate_limit_exceeded",
    ),
    ("quota", ev.failed("insufficient_quota", "No quota"), 429, "insufficient_quota", "insufficient_quota"),
    (
        "context",
        ev.failed("context_length_exceeded", "Too long"),
        400,
        "invalid_request_error",
        "context_length_exceeded",
    ),
    ("overloaded", ev.failed("server_is_overloaded", "Busy"), 503, "server_error", "server_is_overloaded"),
    ("server-error", ev.failed("server_error", "Oops", after=ev.text("Hi")), 502, "server_error", "server_error"),
    ("cut", ev.text("Hi", status=None), 502, "server_error", "stream_incomplete"),
    (
        "error-event",
        [*ev.text("Hi", status=None), *ev.error_event("server_error", "bad")],
        502,
        "server_error",
        "server_error",
    ),
]


@pytest.mark.parametrize(("events", "status", "etype", "code"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_aggregate_failures_are_envelopes(events: list[Any], status: int, etype: str, code: str) -> None:
    got_status, payload = aggregate_response(upstream(events))
    assert got_status == status
    assert set(payload) == {"error"}
    err = payload["error"]
    assert (err["type"], err["code"]) == (etype, code)
    assert isinstance(err["message"], str) and err["message"]


@pytest.mark.parametrize(
    ("code", "etype", "expected"),
    [
        ("usage_limit_reached", None, (429, "rate_limit_error")),
        (None, "rate_limit_error", (429, "rate_limit_error")),
        ("invalid_prompt", None, (400, "invalid_request_error")),
        ("cyber_policy", None, (400, "invalid_request_error")),
        ("slow_down", None, (503, "server_error")),
        ("whatever", None, (502, "server_error")),
        (None, None, (502, "server_error")),
    ],
)
def test_failure_status(code: str | None, etype: str | None, expected: tuple[int, str]) -> None:
    assert failure_status(code, etype) == expected


# -- buffered answers ---------------------------------------------------------------------------------------


def test_buffered_non_streamed_answer() -> None:
    answer = buffered_answer(False, 200, {}, upstream(REASONING_AND_CALL))
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert json.loads(answer.body)["output"][1]["type"] == "function_call"
    assert answer.finish_reason == "tool_calls" and answer.tool_calls == ["shell"]
    assert answer.usage is not None and answer.usage["prompt_tokens"] == 900
    assert answer.error is None


def test_buffered_streamed_answer_equals_the_live_pass_through() -> None:
    body = upstream(TEXT)
    answer = buffered_answer(True, 200, {}, body)
    assert (answer.status, answer.content_type) == (200, "text/event-stream")
    assert answer.body == whole(body)[0]
    assert answer.finish_reason == "stop"


def test_buffered_failures() -> None:
    cut = buffered_answer(True, 200, {}, upstream(ev.text("Hi", status=None)))
    assert cut.status == 200 and cut.error == STREAM_INCOMPLETE and events_of(cut.body)[-1]["type"] == "error"
    failed = buffered_answer(False, 200, {}, upstream(ev.failed("context_length_exceeded", "Too long")))
    assert failed.status == 400 and failed.error == "Too long"
    upstream_400 = buffered_answer(True, 400, {}, b'{"detail":"Unsupported parameter: temperature"}')
    assert upstream_400.status == 400 and upstream_400.content_type == "application/json"
    assert json.loads(upstream_400.body)["error"]["message"] == "Unsupported parameter: temperature"
    limited = buffered_answer(
        False,
        429,
        {},
        orjson.dumps({"error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 60}}),
    )
    assert limited.status == 429 and limited.headers["retry-after"] == "60"


# -- the real OpenAI SDK ------------------------------------------------------------------------------------


def sdk_client(answer: Callable[[httpx2.Request], httpx2.Response]) -> openai.OpenAI:
    transport = httpx2.MockTransport(answer)
    return openai.OpenAI(
        api_key="k", base_url="http://gateway.test/v1", http_client=httpx2.Client(transport=transport), max_retries=0
    )


def sse_client(body: bytes) -> openai.OpenAI:
    return sdk_client(lambda request: httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body))


@pytest.mark.parametrize("events", [TEXT, REASONING_AND_CALL], ids=["text", "reasoning-call"])
def test_sdk_responses_stream_final_response(events: list[Any]) -> None:
    out, _ = whole(upstream(events))
    with sse_client(out).responses.stream(model="gpt-5.4", input="hi") as stream:
        seen = [e.type for e in stream]
        final = stream.get_final_response()
    assert seen[-1] == "response.completed"
    done_items = [e["item"] for e in events if isinstance(e, dict) and e.get("type") == "response.output_item.done"]
    assert [it.type for it in final.output] == [it["type"] for it in done_items]
    assert final.output_text == output_text(done_items)
    assert final.usage is not None and final.usage.total_tokens == (events[-1]["response"]["usage"]["total_tokens"])


def test_sdk_stream_text_is_not_empty() -> None:
    """The reason for filling `output`: with the upstream bytes as-is the SDK ends with an empty output_text."""
    body = upstream(TEXT)
    with sse_client(body).responses.stream(model="gpt-5.4", input="hi") as stream:
        assert stream.get_final_response().output_text == ""
    with sse_client(whole(body)[0]).responses.stream(model="gpt-5.4", input="hi") as stream:
        assert stream.get_final_response().output_text == "Hello"


def test_sdk_cut_stream_raises() -> None:
    out, _ = whole(upstream(ev.text(["Hel", "lo"], status=None)))
    events = sse_client(out).responses.create(model="gpt-5.4", input="hi", stream=True)
    with pytest.raises(openai.APIError, match="ended before response.completed"):
        for _ in events:
            pass


def test_sdk_non_streamed_response() -> None:
    status, payload = aggregate_response(upstream(REASONING_AND_CALL))
    client = sdk_client(lambda request: httpx2.Response(status, json=payload))
    resp = client.responses.create(model="gpt-5.4", input="hi")
    assert resp.id == "resp_1" and resp.status == "completed"
    assert [it.type for it in resp.output] == ["reasoning", "function_call"]
    assert resp.usage is not None and resp.usage.input_tokens_details.cached_tokens == 768


def test_sdk_non_streamed_failure_raises() -> None:
    status, payload = aggregate_response(upstream(ev.failed("rate_limit_exceeded", "Slow down")))
    client = sdk_client(lambda request: httpx2.Response(status, json=payload))
    with pytest.raises(openai.RateLimitError, match="Slow down"):
        client.responses.create(model="gpt-5.4", input="hi")


def test_sse_events_helper_agrees() -> None:
    out, _ = whole(upstream(TEXT))
    assert sse_events(out) == events_of(out)


# -- opt-in: the real Codex CLI through prepare + pass-through ------------------------------------------------


CODEX_CLI = os.environ.get("CODEX_CLI")  # e.g. /tmp/codexcli/node_modules/.bin/codex (npm @openai/codex)


@pytest.mark.skipif(not CODEX_CLI, reason="set CODEX_CLI to a Codex CLI binary to run it through the gateway pieces")
def test_codex_cli_tool_turn_through_prepare_and_pass_through(tmp_path: Path) -> None:
    """`codex exec` → a minimal gateway (responses.request.prepare, session headers, ResponsesSSEPassThrough) →
    the strict fake backend: a reasoning + exec_command turn, then the final answer."""
    assert CODEX_CLI is not None

    class Gateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            req = prepare(raw, default_instructions="You are a helpful assistant.")
            headers = {"authorization": "Bearer t", "chatgpt-account-id": "acct", "content-type": "application/json"}
            headers.update(upstream_session_headers(list(self.headers.items()), req.session_id))
            with httpx.stream(
                "POST", f"{backend.codex_base}/responses", content=req.body_bytes(), headers=headers
            ) as up:
                self.send_response(up.status_code)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                machine = ResponsesSSEPassThrough()
                for chunk in [*up.iter_raw(), b""]:
                    for out in machine(chunk):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(out), out))
                self.wfile.write(b"0\r\n\r\n")

    with FakeCodexBackend() as backend:
        backend.enqueue(
            SSEScript(
                ev.response(
                    ev.reasoning(["**Run**"]), ev.tool_calls([("exec_command", '{"cmd":"echo hi"}', "call_x")])
                ),
                chunks=7,
            ),
            SSEScript(ev.text(["All ", "done"], response_id="resp_2"), chunks=5),
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            (tmp_path / "config.toml").write_text(
                'model = "gpt-5.4"\nmodel_provider = "gateway"\napproval_policy = "never"\n'
                "[model_providers.gateway]\n"
                f'name = "codex-gateway"\nbase_url = "http://127.0.0.1:{server.server_address[1]}/v1"\n'
                'wire_api = "responses"\nenv_key = "CODEX_GATEWAY_KEY"\nsupports_websockets = false\n'
                "request_max_retries = 0\nstream_max_retries = 0\n"
            )
            env = {**os.environ, "CODEX_HOME": str(tmp_path), "HOME": str(tmp_path), "CODEX_GATEWAY_KEY": "k"}
            cmd = [CODEX_CLI, "exec", "--skip-git-repo-check", "-s", "read-only", "-C", str(tmp_path), "Say hello."]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
        finally:
            server.shutdown()
        sent = backend.responses_requests()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("All done")
    assert [(r.status, r.error) for r in sent] == [(200, None), (200, None)]
    assert sent[0].headers["session-id"] == sent[0].json["prompt_cache_key"]
    assert [it["type"] for it in sent[1].json["input"][-3:]] == ["reasoning", "function_call", "function_call_output"]


# -- faults inside the gateway ------------------------------------------------------------------------------


@pytest.mark.parametrize("odd", [{}, [], 1, None], ids=["object", "list", "number", "null"])
def test_an_event_whose_type_is_no_string_passes_unchanged(odd: Any) -> None:
    event = {"type": odd, "delta": "x"}
    out, machine = whole(upstream(TEXT[:2]) + b"data: " + orjson.dumps(event) + b"\n\n" + upstream(TEXT[2:]))
    assert event in [data for _, data in frames(out)] and machine.status == "completed"


def test_a_sequence_number_past_2_53_is_not_counted_on() -> None:
    """The closing error event is numbered one past the last event: a number that could not be written is not."""
    events = [*ev.text("Hi", status=None)]
    events[-1] = {**events[-1], "sequence_number": 2**64 - 1}
    out, machine = whole(upstream(events))
    last = events_of(out)[-1]
    assert last["type"] == "error" and last["sequence_number"] < 2**53 and not machine.broken


def broken_pass_through(monkeypatch: pytest.MonkeyPatch, *, after: int) -> ResponsesSSEPassThrough:
    """A pass-through that raises on the event after the first `after` events."""
    machine = ResponsesSSEPassThrough()
    monkeypatch.setattr(machine, "_track", raising_after(machine._track, after))
    return machine


def test_an_exception_ends_the_stream_at_once_with_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = broken_pass_through(monkeypatch, after=2)
    got = events_of(b"".join(machine(upstream(TEXT))))
    assert [e["type"] for e in got] == [e["type"] for e in TEXT[:2]] + ["error"]
    failure = {
        "message": "The gateway failed to translate the upstream answer (Boom).",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    flat = {"code": None, "message": failure["message"], "param": None}
    assert got[-1] == {"type": "error", "sequence_number": 2, **flat, "error": failure}
    assert machine.error == failure and machine.finish_reason is None


def test_after_an_exception_nothing_more_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = broken_pass_through(monkeypatch, after=0)
    machine(upstream(TEXT))
    assert machine(upstream(TEXT)) == [] and machine(b"") == []


def test_an_exception_is_logged_once_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    machine = broken_pass_through(monkeypatch, after=0)
    machine(upstream(TEXT))
    machine(upstream(TEXT))
    machine(b"")
    records = [r for r in caplog.records if r.exc_info]
    assert len(records) == 1 and records[0].exc_info is not None and records[0].exc_info[0] is Boom


def test_an_exception_after_the_terminal_event_adds_no_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """The client's answer was over (response.completed framed): nothing may follow it."""
    machine = broken_pass_through(monkeypatch, after=len(TEXT))
    out = b"".join(machine(upstream(TEXT) + upstream(TEXT[:1])) + machine(b""))
    assert machine.broken and out == whole(upstream(TEXT))[0]
