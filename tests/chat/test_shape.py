"""chat.shape: the shape of a chat answer (what a replay compares), and whether the answer is a valid one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from codex_gateway.chat.answer import ChatOptions
from codex_gateway.chat.answer import buffered_answer
from codex_gateway.chat.shape import ChatShape
from codex_gateway.chat.shape import shape_of_answer

from scripts.fakes import codex_events as ev
from tests.conftest import encode_upstream

SSE = "text/event-stream"
CALLS = ev.tool_calls([("get_weather", '{"city":"Paris"}', "call_1"), ("noop", "{}", "call_2")], text_before="Sure.")


def gateway_answer(events: list[Any], *, stream: bool, include_usage: bool = False) -> tuple[str, bytes]:
    """What the gateway answers a chat client for these upstream events."""
    a = buffered_answer(ChatOptions("gpt-5.4", stream, include_usage), 200, {}, encode_upstream(events))
    return a.content_type, a.body


def chunk(choices: list[Any] | None = None, id: str = "chatcmpl-1", **extra: Any) -> dict[str, Any]:
    return {"id": id, "object": "chat.completion.chunk", "choices": choices or [], **extra}


def delta(d: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": d, "finish_reason": finish_reason}


def sse(*frames: Any) -> bytes:
    return b"".join(b"data: " + (f.encode() if isinstance(f, str) else orjson.dumps(f)) + b"\n\n" for f in frames)


def call(index: int, name: str | None = None) -> dict[str, Any]:
    if name is None:
        return {"index": index, "function": {"arguments": "{}"}}
    return {"index": index, "id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": ""}}


# -- the gateway's own answers ---------------------------------------------------------------------------------------

GATEWAY = [
    ("text stream", ev.text(["Hel", "lo"]), True, False, ChatShape(200, "stop", [], True, False, True)),
    ("text stream usage", ev.text("Hi"), True, True, ChatShape(200, "stop", [], True, True, True)),
    ("calls stream", CALLS, True, False, ChatShape(200, "tool_calls", ["get_weather", "noop"], True, False, True)),
    ("text completion", ev.text("Hi"), False, False, ChatShape(200, "stop", [], True, True, True)),
    ("calls completion", CALLS, False, False, ChatShape(200, "tool_calls", ["get_weather", "noop"], True, True, True)),
    (
        "length completion",
        ev.incomplete(after=ev.text("Part")),
        False,
        False,
        ChatShape(200, "length", [], True, True, True),
    ),
]


@pytest.mark.parametrize(
    "events, stream, include_usage, expected", [g[1:] for g in GATEWAY], ids=[g[0] for g in GATEWAY]
)
def test_shape_of_gateway_answers(events: list[Any], stream: bool, include_usage: bool, expected: ChatShape) -> None:
    content_type, body = gateway_answer(events, stream=stream, include_usage=include_usage)
    shape = shape_of_answer(200, content_type, body, include_usage=include_usage if stream else None)
    assert shape == expected
    assert shape.valid


def test_failed_stream_records_the_error_and_is_valid() -> None:
    content_type, body = gateway_answer(ev.failed("server_error", "Boom."), stream=True)
    shape = shape_of_answer(200, content_type, body)
    assert (shape.error, shape.done, shape.finish_reason, shape.valid) == ("Boom.", False, None, True)


ERRORS = [
    (429, b'{"error":{"message":"Slow down.","type":"rate_limit_error"}}', "Slow down."),
    (502, b"<html>Bad gateway</html>", "<html>Bad gateway</html>"),
    (400, b'{"error":"not an object"}', '{"error":"not an object"}'),
    (500, b"\xff\xfe", "\ufffd\ufffd"),
]


@pytest.mark.parametrize("status, body, error", ERRORS)
def test_http_errors_record_the_message(status: int, body: bytes, error: str) -> None:
    shape = shape_of_answer(status, "application/json", body)
    assert (shape.status, shape.error, shape.valid, shape.done) == (status, error, True, False)


def test_long_error_bodies_are_clipped() -> None:
    assert shape_of_answer(500, "text/plain", b"x" * 1000).error == "x" * 200


# -- invalid answers ------------------------------------------------------------------------------------------------

INVALID_STREAMS = [
    ("no [DONE]", sse(chunk([delta({"content": "a"})])), "stream ended without [DONE] or an error event"),
    ("data after [DONE]", sse(chunk(), "[DONE]", chunk()), "data after [DONE]"),
    (
        "event line",
        b"event: message\ndata: " + orjson.dumps(chunk()) + b"\n\n" + sse("[DONE]"),
        "event: line 'message' in a chat stream",
    ),
    ("ids differ", sse(chunk(id="a"), chunk(id="b"), "[DONE]"), "chunk ids differ"),
    ("wrong object", sse({**chunk(), "object": "chat.completion"}, "[DONE]"), "chunk 0 is not a chat.completion.chunk"),
    (
        "call index skipped",
        sse(chunk([delta({"tool_calls": [call(1, "f")]})]), "[DONE]"),
        "tool call delta for index 1 out of order",
    ),
    (
        "arguments for an unopened call",
        sse(chunk([delta({"tool_calls": [call(0, "f")]})]), chunk([delta({"tool_calls": [call(1)]})]), "[DONE]"),
        "tool call delta for index 1 out of order",
    ),
    (
        "call opened twice",
        sse(chunk([delta({"tool_calls": [call(0, "f")]})]), chunk([delta({"tool_calls": [call(0, "f")]})]), "[DONE]"),
        "tool call delta for index 0 out of order",
    ),
]


@pytest.mark.parametrize("body, problem", [c[1:] for c in INVALID_STREAMS], ids=[c[0] for c in INVALID_STREAMS])
def test_invalid_streams_are_reported(body: bytes, problem: str) -> None:
    shape = shape_of_answer(200, SSE, body)
    assert problem in shape.problems
    assert not shape.valid


BUG_NOT_AN_OBJECT = "BUG: _stream_shape runs orjson.loads on every data line and treats the result as an object: "


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(
            "not json",
        ),
        pytest.param(
            "5",
        ),
    ],
)
def test_data_lines_that_are_not_json_objects_are_problems_not_exceptions(line: str) -> None:
    """The completion path reports an unparseable body as a problem; a stream should do the same."""
    assert not shape_of_answer(200, SSE, sse(chunk(), line, "[DONE]")).valid


def test_arguments_for_the_open_call_are_fine() -> None:
    body = sse(chunk([delta({"tool_calls": [call(0, "f")]})]), chunk([delta({"tool_calls": [call(0)]})]), "[DONE]")
    shape = shape_of_answer(200, SSE, body)
    assert (shape.tool_calls, shape.problems) == (["f"], [])


@pytest.mark.parametrize("include_usage, problem", [(True, "usage chunk missing"), (False, None)])
def test_usage_chunk_expected_but_missing(include_usage: bool, problem: str | None) -> None:
    content_type, body = gateway_answer(ev.text("Hi"), stream=True, include_usage=False)
    assert shape_of_answer(200, content_type, body, include_usage=include_usage).problems == (
        [problem] if problem else []
    )


def test_usage_chunk_sent_without_include_usage() -> None:
    content_type, body = gateway_answer(ev.text("Hi"), stream=True, include_usage=True)
    shape = shape_of_answer(200, content_type, body, include_usage=False)
    assert shape.problems == ["usage chunk sent without include_usage"]


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"choices":[]}', b'{"object":"chat.completion"}', b"null"])
def test_invalid_completions_are_reported(body: bytes) -> None:
    shape = shape_of_answer(200, "application/json", body)
    assert shape.problems == ["not a chat.completion"]


# -- same_as ------------------------------------------------------------------------------------------------------

BASE = ChatShape(200, "tool_calls", ["f", "g"], has_text=True, usage_chunk=True, done=True)

SAME_AS = [
    ("identical", ChatShape(200, "tool_calls", ["f", "g"], has_text=True, usage_chunk=True, done=True), []),
    ("finish", ChatShape(200, "stop", ["f", "g"], True), ["finish_reason 'stop' != recorded 'tool_calls'"]),
    ("calls order", ChatShape(200, "tool_calls", ["g", "f"], True), ["tool calls ['g', 'f'] != recorded ['f', 'g']"]),
    ("one call less", ChatShape(200, "tool_calls", ["f"], True), ["tool calls ['f'] != recorded ['f', 'g']"]),
    ("no text", ChatShape(200, "tool_calls", ["f", "g"], False), ["text present False != recorded True"]),
    (
        "everything",
        ChatShape(200, "stop", [], False),
        [
            "finish_reason 'stop' != recorded 'tool_calls'",
            "tool calls [] != recorded ['f', 'g']",
            "text present False != recorded True",
        ],
    ),
]


@pytest.mark.parametrize("now, diffs", [s[1:] for s in SAME_AS], ids=[s[0] for s in SAME_AS])
def test_same_as(now: ChatShape, diffs: list[str]) -> None:
    assert now.same_as(BASE) == diffs


def test_an_error_payload_that_is_not_an_object_is_recorded_not_raised() -> None:
    shape = shape_of_answer(200, SSE, sse(chunk([delta({"content": "a"})]), {"error": "boom"}))
    assert (shape.error, shape.has_text) == ("boom", True)
