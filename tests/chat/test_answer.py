"""chat.answer: a whole upstream Codex body → the chat client's answer (JSON completion, SSE, or envelope)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from codex_gateway.answer import ClientAnswer
from codex_gateway.chat.answer import ChatOptions
from codex_gateway.chat.answer import buffered_answer
from codex_gateway.chat.answer import machine_for
from codex_gateway.errors import GatewayError

from scripts.fakes import codex_events as ev
from tests.conftest import DONE
from tests.conftest import check_chat_stream
from tests.conftest import encode_upstream
from tests.conftest import parse_chat_sse

USAGE = {
    "prompt_tokens": 11,
    "completion_tokens": 5,
    "total_tokens": 16,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}


def options(stream: bool = False, include_usage: bool = False, stop: list[str] | None = None) -> ChatOptions:
    return ChatOptions("gpt-5.4", stream, include_usage, tuple(stop or ()))


def answer(events: list[Any], **kw: Any) -> ClientAnswer:
    return buffered_answer(options(**kw), 200, {}, encode_upstream(events))


# -- machine_for ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "include_usage, always_usage, expected", [(False, False, False), (True, False, True), (False, True, True)]
)
def test_machine_for_usage(include_usage: bool, always_usage: bool, expected: bool) -> None:
    machine = machine_for(options(include_usage=include_usage), always_usage=always_usage)
    assert machine.include_usage is expected


def test_machine_for_model() -> None:
    assert machine_for(options()).model == "gpt-5.4"


# -- non-streamed clients ---------------------------------------------------------------------------------------


def test_text_is_a_chat_completion_with_usage() -> None:
    a = answer(ev.text(["Hel", "lo"], usage=ev.usage(11, 5)))
    assert (a.status, a.content_type, a.error) == (200, "application/json", None)
    doc = json.loads(a.body)
    assert doc["object"] == "chat.completion"
    assert doc["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert doc["usage"] == USAGE


def test_non_streamed_outcome_is_recorded() -> None:
    a = answer(ev.text("Hi", usage=ev.usage(11, 5)))
    assert (a.finish_reason, a.usage, a.tool_calls, a.error) == ("stop", USAGE, [], None)


def test_tool_calls_are_folded_into_the_message() -> None:
    a = answer(ev.tool_calls([("get_weather", '{"city":"Paris"}', "call_1"), ("noop", "{}", "call_2")], split=3))
    message = json.loads(a.body)["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
        {"id": "call_2", "type": "function", "function": {"name": "noop", "arguments": "{}"}},
    ]
    assert (a.finish_reason, a.tool_calls) == ("tool_calls", ["get_weather", "noop"])


def test_stop_sequences_cut_the_text() -> None:
    a = answer(ev.text(["Hello wo", "rld"]), stop=["wor"])
    choice = json.loads(a.body)["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Hello ", "stop")


def test_incomplete_is_a_200_with_finish_reason_length() -> None:
    a = answer(ev.incomplete("max_output_tokens", after=ev.text("Partial")))
    assert a.status == 200
    assert json.loads(a.body)["choices"][0]["finish_reason"] == "length"


FAILED = [
    ("usage_limit_reached", 429, "rate_limit_error"),
    ("rate_limit_exceeded", 429, "rate_limit_error"),
    ("insufficient_quota", 429, "insufficient_quota"),
    ("context_length_exceeded", 400, "invalid_request_error"),
    ("invalid_prompt", 400, "invalid_request_error"),
    ("server_is_overloaded", 503, "server_error"),
    ("slow_down", 503, "server_error"),
    ("server_error", 502, "server_error"),
    ("something_new", 502, "server_error"),
]


@pytest.mark.parametrize("code, status, etype", FAILED)
def test_response_failed_is_an_error_envelope(code: str, status: int, etype: str) -> None:
    a = answer(ev.failed(code, "It failed.", after=ev.text("Half")))
    assert (a.status, a.content_type, a.error) == (status, "application/json", "It failed.")
    assert json.loads(a.body) == {"error": {"message": "It failed.", "type": etype, "param": None, "code": code}}


def test_a_cut_stream_is_a_502() -> None:
    a = answer(ev.text("Hi", status=None))
    assert a.status == 502
    assert json.loads(a.body)["error"]["code"] == "stream_incomplete"


# -- streaming clients --------------------------------------------------------------------------------------------


def test_stream_is_chat_sse_ending_in_done() -> None:
    a = answer(ev.text(["Hel", "lo"]), stream=True)
    assert (a.status, a.content_type, a.error) == (200, "text/event-stream", None)
    assert a.body.endswith(b"data: [DONE]\n\n")
    summary = check_chat_stream(parse_chat_sse(a.body), include_usage=False)
    assert (summary.content, summary.finish_reason, summary.usage) == ("Hello", "stop", None)


def test_stream_with_include_usage_has_a_usage_chunk() -> None:
    a = answer(ev.text("Hi", usage=ev.usage(11, 5)), stream=True, include_usage=True)
    summary = check_chat_stream(parse_chat_sse(a.body), include_usage=True)
    assert summary.usage == USAGE


@pytest.mark.parametrize("code, status, etype", FAILED[:4])
def test_stream_failure_is_a_200_ending_in_an_error_event(code: str, status: int, etype: str) -> None:
    a = answer(ev.failed(code, "It failed."), stream=True)
    assert (a.status, a.content_type, a.error) == (200, "text/event-stream", "It failed.")
    events = parse_chat_sse(a.body)
    assert DONE not in events
    assert events[-1] == {"error": {"message": "It failed.", "type": etype, "param": None, "code": code}}


# -- upstream HTTP errors -----------------------------------------------------------------------------------------

UPSTREAM_ERRORS = [
    (400, b'{"detail":"Unsupported parameter: temperature"}', 400, "invalid_request_error", None),
    (
        401,
        b'{"error":{"code":"token_expired","message":"expired"}}',
        401,
        "authentication_error",
        "token_expired",
    ),
    (404, b'{"detail":"Not Found"}', 404, "not_found_error", None),
    (
        429,
        b'{"error":{"type":"usage_limit_reached","message":"limit"}}',
        429,
        "rate_limit_error",
        "usage_limit_reached",
    ),
    (500, b"Internal Server Error", 500, "server_error", None),
    (503, b'{"error":{"message":"busy","code":"overloaded"}}', 503, "server_error", "overloaded"),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "upstream_status, body, status, etype, code", UPSTREAM_ERRORS, ids=[str(e[0]) for e in UPSTREAM_ERRORS]
)
def test_upstream_http_errors_are_envelopes(
    stream: bool, upstream_status: int, body: bytes, status: int, etype: str, code: str | None
) -> None:
    a = buffered_answer(options(stream=stream), upstream_status, {}, body)
    assert (a.status, a.content_type) == (status, "application/json")
    err = json.loads(a.body)["error"]
    assert (err["type"], err["code"]) == (etype, code)
    assert a.error == err["message"]


def test_upstream_retry_after_is_passed_on() -> None:
    body = orjson.dumps({"error": {"type": "usage_limit_reached", "message": "limit", "resets_in_seconds": 60}})
    assert buffered_answer(options(), 429, {}, body).headers == {"retry-after": "60"}


def test_from_error() -> None:
    err = GatewayError(413, "Too big.", code="request_too_large", headers={"x-a": "1"})
    a = ClientAnswer.from_error(err)
    assert (a.status, a.content_type, a.body, a.headers, a.error) == (
        413,
        "application/json",
        err.body(),
        {"x-a": "1"},
        "Too big.",
    )
