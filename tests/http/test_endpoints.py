"""endpoints: per-endpoint upstream preparation, the stream callable per endpoint, and buffered answers."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import orjson
import pytest
from codex_gateway.answer import StreamCallable
from codex_gateway.chat.translator import ChatSSETranslator
from codex_gateway.errors import GatewayError
from codex_gateway.flow_record import FlowRecord
from codex_gateway.flow_record import Route
from codex_gateway.http.endpoints import Upstream
from codex_gateway.http.endpoints import buffered_answer
from codex_gateway.http.endpoints import prepare_upstream
from codex_gateway.http.endpoints import stream_translator
from codex_gateway.responses.stream import ResponsesSSEPassThrough

from scripts.fakes import codex_events as ev
from tests.conftest import encode_upstream

CHAT = orjson.dumps(
    {
        "model": "gpt-5.4",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "prompt_cache_key": "chat-session",
    }
)
RESPONSES = orjson.dumps({"model": "gpt-5.4", "input": "hi", "stream": True, "prompt_cache_key": "resp-session"})
MESSAGES = orjson.dumps(
    {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
)
COMPACT = orjson.dumps({"model": "gpt-5.4", "input": [{"type": "message", "role": "user", "content": "hi"}]})
PNG = base64.b64decode(ev.TINY_PNG_B64)
IMAGE = orjson.dumps({"prompt": "a red square", "size": "1024x1024"})
CLIENT_HEADERS = [
    ("Authorization", "Bearer sk-gateway"),
    ("Cookie", "c=1"),
    ("User-Agent", "codex_cli_rs/0.50"),
    ("Session_ID", "client-session"),
    ("x-codex-turn-state", "turn-1"),
]


def prepare(route: Route, raw: bytes, headers: list[tuple[str, str]] | None = None, **kw: Any) -> Upstream:
    return prepare_upstream(
        route, raw, "application/json", CLIENT_HEADERS if headers is None else headers, FlowRecord(endpoint=route), **kw
    )


def recorded(route: Route, raw: bytes, content_type: str = "application/json", **kw: Any) -> FlowRecord:
    """The record of a request prepared with `CLIENT_HEADERS`."""
    record = FlowRecord(endpoint=route)
    prepare_upstream(route, raw, content_type, CLIENT_HEADERS, record, **kw)
    return record


# -- prepare_upstream ---------------------------------------------------------------------------------------------


def test_chat() -> None:
    up = prepare(Route.CHAT, CHAT)
    assert up.path == "/responses"
    assert up.session_headers == [("session_id", "chat-session")]  # client headers are never forwarded
    assert recorded(Route.CHAT, CHAT).to_json() == {
        "endpoint": "chat.completions",
        "model": "gpt-5.4",
        "stream": True,
        "include_usage": True,
        "stop": ["END"],
        "dropped": ["stream_options"],
        "messages": 2,
        "tools": 1,
        "session_id": "chat-session",
    }
    body = json.loads(up.body)
    assert (body["model"], body["instructions"], body["stream"], body["store"]) == ("gpt-5.4", "Be brief.", True, False)


def test_responses() -> None:
    up = prepare(Route.RESPONSES, RESPONSES)
    assert up.path == "/responses"
    assert up.session_headers == [("session_id", "client-session"), ("x-codex-turn-state", "turn-1")]
    assert recorded(Route.RESPONSES, RESPONSES).to_json() == {
        "endpoint": "responses",
        "model": "gpt-5.4",
        "stream": True,
        "dropped": [],
        "stripped_ids": 0,
        "messages": 1,
        "tools": 0,
        "session_id": "resp-session",
    }
    assert json.loads(up.body)["prompt_cache_key"] == "resp-session"


def test_responses_without_client_session_headers_gets_its_own() -> None:
    assert prepare(Route.RESPONSES, RESPONSES, headers=[]).session_headers == [("session_id", "resp-session")]


def test_compact_is_forwarded_byte_for_byte() -> None:
    up = prepare(Route.COMPACT, COMPACT)
    assert (up.path, up.body) == ("/responses/compact", COMPACT)
    assert recorded(Route.COMPACT, COMPACT).to_json() == {
        "endpoint": "responses.compact",
        "model": "gpt-5.4",
        "stream": False,
    }
    assert up.session_headers == [("session_id", "client-session"), ("x-codex-turn-state", "turn-1")]


def test_compact_session_id_is_derived_from_the_body() -> None:
    one = prepare(Route.COMPACT, COMPACT, headers=[]).session_headers
    again = prepare(Route.COMPACT, COMPACT, headers=[]).session_headers
    other = prepare(Route.COMPACT, COMPACT + b" ", headers=[]).session_headers
    assert one == again != other
    assert one[0][0] == "session_id" and uuid.UUID(one[0][1]).version == 4


@pytest.mark.parametrize("doc", [{}, {"model": 5}])
def test_compact_without_a_model_string_is_recorded_as_unknown(doc: dict[str, Any]) -> None:
    assert recorded(Route.COMPACT, orjson.dumps(doc)).model == "?"


@pytest.mark.parametrize("raw", [b"not json", b"[1]"])
def test_compact_needs_a_json_object(raw: bytes) -> None:
    with pytest.raises(GatewayError) as e:
        prepare(Route.COMPACT, raw)
    assert e.value.status == 400


def test_images_generation() -> None:
    record = FlowRecord(endpoint=Route.IMAGES_GENERATIONS)
    up = prepare_upstream(
        Route.IMAGES_GENERATIONS, IMAGE, "application/json", [], record, image_orchestrator="gpt-orchestrator"
    )
    session_id = record.session_id
    assert (up.path, up.session_headers) == ("/responses", [("session_id", session_id)])
    assert {k: v for k, v in record.to_json().items() if k != "images"} == {
        "endpoint": "images.generations",
        "model": "gpt-orchestrator",
        "stream": False,
        "session_id": session_id,
    }
    assert record.images is not None and record.images.session_id == session_id
    body = json.loads(up.body)
    assert (body["model"], body["tools"][0]["type"]) == ("gpt-orchestrator", "image_generation")


def test_images_edit_from_multipart() -> None:
    boundary = "b0undary"
    raw = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nmake it blue\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + PNG
        + f"\r\n--{boundary}--\r\n".encode()
    )
    record = FlowRecord(endpoint=Route.IMAGES_EDITS)
    up = prepare_upstream(Route.IMAGES_EDITS, raw, f"multipart/form-data; boundary={boundary}", [], record)
    assert record.images is not None
    assert (up.path, record.images.endpoint, record.images.images) == ("/responses", "images.edits", 1)
    content = json.loads(up.body)["input"][0]["content"]
    assert [part["type"] for part in content] == ["input_text", "input_image"]


@pytest.mark.parametrize("route", [Route.MODELS, Route.MODEL])
def test_routes_without_an_upstream_are_a_500(route: Route) -> None:
    with pytest.raises(GatewayError) as e:
        prepare(route, b"{}")
    assert e.value.status == 500


NESTED = b'{"a":' * 300 + b"{}" + b"}" * 300
TOO_DEEP = [
    (
        b'{"model":"gpt-5.4","input":"hi","tools":[{"type":"function","name":"f","parameters":'
        b'{"type":"object","properties":' + NESTED + b"}}]}",
        "tools[0]",
    ),
    (
        b'{"model":"gpt-5.4","input":"hi","text":{"format":{"type":"json_schema","name":"x","schema":'
        + NESTED
        + b"}}}",
        "text",
    ),
    (
        b'{"model":"gpt-5.4","input":[{"type":"message","role":"user","content":"hi"},'
        b'{"type":"function_call","call_id":"c","name":"f","arguments":"{}"},'
        b'{"type":"function_call_output","call_id":"c","output":[{"type":"input_text","text":"x","x":'
        + NESTED
        + b"}]}]}",
        "input[2]",
    ),
]


@pytest.mark.parametrize("raw, param", TOO_DEEP, ids=[p for _, p in TOO_DEEP])
def test_a_body_too_deep_to_forward_is_a_400_naming_the_field(raw: bytes, param: str) -> None:
    with pytest.raises(GatewayError) as e:
        prepare(Route.RESPONSES, raw)
    assert (e.value.status, e.value.param, e.value.code) == (400, param, "invalid_value")
    assert "deeper" in e.value.message


# -- stream_translator ----------------------------------------------------------------------------------------------


def test_a_request_refused_half_way_records_nothing() -> None:
    record = FlowRecord(endpoint=Route.RESPONSES)
    with pytest.raises(GatewayError):
        prepare_upstream(Route.RESPONSES, TOO_DEEP[0][0], "application/json", [], record)
    assert record == FlowRecord(endpoint=Route.RESPONSES)


def test_chat_stream_gets_a_chat_translator_configured_from_the_record() -> None:
    translator = stream_translator(recorded(Route.CHAT, CHAT))
    assert isinstance(translator, ChatSSETranslator)
    assert (translator.machine.model, translator.machine.include_usage) == ("gpt-5.4", True)


def test_responses_stream_gets_the_pass_through() -> None:
    translator = stream_translator(recorded(Route.RESPONSES, RESPONSES))
    assert isinstance(translator, ResponsesSSEPassThrough)
    assert translator.model == "gpt-5.4"


NOT_STREAMED = [
    {"endpoint": "chat.completions", "stream": False, "model": "m", "include_usage": False, "stop": []},
    {"endpoint": "responses", "stream": False, "model": "m"},
    {"endpoint": "responses.compact", "stream": False, "model": "m"},
    {"endpoint": "images.generations", "stream": False},
    {"endpoint": "responses.compact", "stream": True},
    {"endpoint": "images.edits", "stream": True},
    {},
]


@pytest.mark.parametrize(
    "meta", NOT_STREAMED, ids=[f"{m.get('endpoint')} stream={m.get('stream')}" for m in NOT_STREAMED]
)
def test_everything_else_is_buffered(meta: dict[str, Any]) -> None:
    assert stream_translator(FlowRecord.from_json(meta)) is None


STREAMED = [(Route.CHAT, CHAT), (Route.RESPONSES, RESPONSES), (Route.MESSAGES, MESSAGES)]


@pytest.mark.parametrize("route, raw", STREAMED)
def test_every_stream_callable_is_a_stream_callable(route: Route, raw: bytes) -> None:
    assert isinstance(stream_translator(recorded(route, raw)), StreamCallable)


def _streamed(route: Route, raw: bytes, upstream: bytes, *, keep_raw: bool) -> tuple[bytes, bytes]:
    """What a stream callable wrote for `upstream` read in two pieces, and the raw body it hands to the flow."""
    translator = stream_translator(recorded(route, raw), keep_raw=keep_raw)
    assert translator is not None
    half = len(upstream) // 2
    written = b"".join(b"".join(translator(piece)) for piece in (upstream[:half], upstream[half:], b""))
    return written, translator.take_raw_body()


@pytest.mark.parametrize("route, raw", STREAMED, ids=[r.value for r, _ in STREAMED])
def test_a_stream_callable_keeps_the_upstream_sse_only_when_asked_and_answers_the_same(
    route: Route, raw: bytes
) -> None:
    upstream = encode_upstream(ev.text(["Hel", "lo"], usage=ev.usage(7, 2)))
    kept_answer, kept = _streamed(route, raw, upstream, keep_raw=True)
    answer, not_kept = _streamed(route, raw, upstream, keep_raw=False)
    assert (kept, not_kept) == (upstream, b"")
    assert _without_ids(answer) == _without_ids(kept_answer) and b"lo" in answer


@pytest.mark.parametrize("other", [True, False, lambda data: [data]])
def test_what_else_response_stream_may_hold_is_not_a_stream_callable(other: object) -> None:
    assert not isinstance(other, StreamCallable)


def test_outcome_of_a_chat_stream() -> None:
    translator = stream_translator(recorded(Route.CHAT, CHAT))
    assert translator is not None
    translator(encode_upstream(ev.tool_calls([("f", "{}", "call_1")], usage=ev.usage(7, 2))))
    translator(b"")
    outcome = translator.outcome()
    assert (outcome.finish_reason, outcome.tool_calls, outcome.error) == ("tool_calls", ["f"], None)
    assert outcome.usage is not None and outcome.usage["prompt_tokens"] == 7
    assert outcome.first_token_at is not None


def test_outcome_of_a_failed_responses_stream() -> None:
    translator = stream_translator(recorded(Route.RESPONSES, RESPONSES))
    assert translator is not None
    translator(encode_upstream(ev.failed("server_is_overloaded", "Busy.")))
    translator(b"")
    outcome = translator.outcome()
    assert (outcome.finish_reason, outcome.error) == (None, "Busy.")


def _without_ids(answer: bytes) -> bytes:
    """An answer with the ids and clocks each translator makes anew (chat ids, message ids, created times)."""
    return re.sub(rb'"(id|created|created_at)":("[^"]*"|\d+)', b"", answer)


# -- buffered_answer --------------------------------------------------------------------------------------------------

TEXT = encode_upstream(ev.text("Hello"))


def test_chat_answer() -> None:
    record = recorded(Route.CHAT, CHAT)
    record.stream = False
    a = buffered_answer(record, 200, {}, TEXT)
    assert (a.status, a.content_type) == (200, "application/json")
    assert json.loads(a.body)["object"] == "chat.completion"


@pytest.mark.parametrize("stream, content_type", [(False, "application/json"), (True, "text/event-stream")])
def test_responses_answer(stream: bool, content_type: str) -> None:
    record = recorded(Route.RESPONSES, RESPONSES)
    record.stream = stream
    a = buffered_answer(record, 200, {}, TEXT)
    assert (a.status, a.content_type, a.finish_reason) == (200, content_type, "stop")
    if not stream:
        assert json.loads(a.body)["object"] == "response"


def test_images_answer() -> None:
    a = buffered_answer(recorded(Route.IMAGES_GENERATIONS, IMAGE), 200, {}, encode_upstream(ev.image_generation()))
    assert (a.status, a.content_type) == (200, "application/json")
    assert json.loads(a.body)["data"][0]["b64_json"] == ev.TINY_PNG_B64


@pytest.mark.parametrize(
    "headers, content_type",
    [
        ({"content-type": "application/json; charset=utf-8"}, "application/json; charset=utf-8"),
        ({}, "application/json"),
    ],
)
def test_compact_answer_is_passed_through(headers: dict[str, str], content_type: str) -> None:
    body = b'{"output":[{"type":"compaction","encrypted_content":"x"}]}'
    a = buffered_answer(recorded(Route.COMPACT, COMPACT), 200, headers, body)
    assert (a.status, a.content_type, a.body) == (200, content_type, body)


ENDPOINT_METAS = {
    "chat.completions": {
        "endpoint": "chat.completions",
        "stream": False,
        "model": "m",
        "include_usage": False,
        "stop": [],
    },
    "responses": {"endpoint": "responses", "stream": False, "model": "m"},
    "responses.compact": {"endpoint": "responses.compact", "stream": False, "model": "m"},
}


@pytest.mark.parametrize("endpoint", list(ENDPOINT_METAS))
def test_upstream_errors_are_envelopes_on_every_endpoint(endpoint: str) -> None:
    record = FlowRecord.from_json(ENDPOINT_METAS[endpoint])
    a = buffered_answer(record, 400, {}, b'{"detail":"Unsupported parameter: temperature"}')
    assert (a.status, a.content_type) == (400, "application/json")
    assert json.loads(a.body)["error"]["message"] == "Unsupported parameter: temperature"


def test_image_upstream_error_is_an_envelope() -> None:
    a = buffered_answer(recorded(Route.IMAGES_GENERATIONS, IMAGE), 503, {}, b"overloaded")
    assert (a.status, json.loads(a.body)["error"]["type"]) == (503, "server_error")
