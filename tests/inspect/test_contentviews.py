"""The "Chat" and "Codex SSE" content views, through `contentviews.prettify_message` as mitmweb calls them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codex_gateway.chat.answer import machine_for
from codex_gateway.chat.translator import translate_body
from codex_gateway.http.answer_writer import AnswerWriter
from codex_gateway.http.endpoints import buffered_answer
from codex_gateway.http.endpoints import chat_options
from codex_gateway.inspect.contentviews import ChatAnswer
from codex_gateway.inspect.contentviews import chat_answer
from codex_gateway.inspect.contentviews import register
from codex_gateway.inspect.summary import annotate
from mitmproxy import contentviews
from mitmproxy import http
from mitmproxy import io
from mitmproxy.test import taddons
from mitmproxy.test import tflow

from scripts.fakes import codex_events as ev
from tests.conftest import load_stream
from tests.conftest import stream_names
from tests.inspect.test_summary import chat_record
from tests.inspect.test_summary import finished_record
from tests.inspect.test_summary import gateway_flow
from tests.inspect.test_summary import upstream

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openclaw"


@pytest.fixture(autouse=True)
def _views() -> Iterator[None]:
    register()
    with taddons.context():  # make_metadata reads ctx.options
        yield


def _view(f: http.HTTPFlow, name: str = "auto") -> contentviews.ContentviewResult:
    assert f.response is not None
    return contentviews.prettify_message(f.response, f, name)


def _tool_call_stream() -> bytes:
    return upstream(
        ev.response(
            ev.reasoning(["Plan: read the file."]),
            ev.tool_calls(
                [("read", '{"path":"HELLO.txt","limit":5}', "call_1"), ("ls", "{}", "call_2")],
                text_before="Let me look.\nOne moment.",
                split=3,
            ),
            usage=ev.usage(1200, 35, cached=1024, reasoning=12),
        )
    )


def test_chat_view_is_picked_for_a_streamed_gateway_flow_and_rebuilds_the_clients_answer() -> None:
    f = gateway_flow(_tool_call_stream(), finished_record(include_usage=False))
    result = _view(f)
    assert (result.view_name, result.syntax_highlight) == ("Chat", "yaml")
    assert result.text == "\n".join(
        [
            "# The client's answer (streamed, 11 chunks + [DONE]); rebuilt from the raw upstream SSE",
            "id: chatcmpl-1",
            "model: gpt-5.4",
            "finish_reason: tool_calls",
            'reasoning: "Plan: read the file."',
            "content: |-",
            "  Let me look.",
            "  One moment.",
            "tool_calls:",
            "  - id: call_1",
            "    name: read",
            "    arguments: {",
            '        "path": "HELLO.txt",',
            '        "limit": 5',
            "      }",
            "  - id: call_2",
            "    name: ls",
            "    arguments: {}",
            "usage:",
            "  prompt_tokens: 1200",
            "  cached_tokens: 1024",
            "  completion_tokens: 35",
            "  reasoning_tokens: 12",
            "  total_tokens: 1235",
            "  sent_to_client: false  # stream_options.include_usage was not set",
            "",
        ]
    )


def test_chat_view_counts_the_usage_chunk_when_include_usage_was_set() -> None:
    f = gateway_flow(_tool_call_stream(), finished_record(include_usage=True))
    text = _view(f).text
    assert text.startswith("# The client's answer (streamed, 12 chunks + [DONE]); rebuilt from the raw upstream SSE\n")
    assert "sent_to_client" not in text


def _summary(answer: ChatAnswer) -> dict[str, Any]:
    error = dict(answer.error or {})
    error.pop("status", None)
    return {
        "finish_reason": answer.finish_reason,
        "content": answer.content,
        "reasoning": answer.reasoning,
        "refusal": answer.refusal,
        "tool_calls": answer.tool_calls,
        "usage": answer.usage if answer.usage_sent else None,
        "error": error or None,
    }


@pytest.mark.parametrize("name", stream_names())
@pytest.mark.parametrize("include_usage", [False, True])
def test_rebuilt_streamed_answer_equals_what_the_client_received(name: str, include_usage: bool) -> None:
    raw = load_stream(name)
    record = chat_record(include_usage=include_usage)
    rebuilt = chat_answer(raw, 200, {}, record)
    sent = chat_answer(translate_body(machine_for(chat_options(record)), raw), 200, {}, record)
    assert (rebuilt.source, sent.source) == ("rebuilt from the raw upstream SSE", "as sent")
    assert _summary(rebuilt) == _summary(sent)
    assert (rebuilt.chunks, rebuilt.done, rebuilt.id) == (sent.chunks, sent.done, sent.id)


@pytest.mark.parametrize("name", stream_names())
def test_rebuilt_buffered_answer_equals_what_the_client_received(name: str) -> None:
    """A saved non-streamed flow holds the raw upstream SSE; in memory it holds the client's chat.completion."""
    raw = load_stream(name)
    record = chat_record(stream=False, include_usage=False)
    sent = buffered_answer(record, 200, {}, raw)
    saved = chat_answer(raw, 200, {}, record)
    in_memory = chat_answer(sent.body, sent.status, {}, record)
    assert _summary(saved) == _summary(in_memory)
    if sent.status == 200:
        assert (saved.streamed, in_memory.streamed, saved.done) == (False, False, True)
    else:
        assert saved.error is not None and in_memory.error is not None
        assert saved.error["status"] == in_memory.error["status"] == sent.status


def test_upstream_error_saved_raw_and_in_memory_show_the_same_client_error() -> None:
    raw = (
        b'{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","resets_in_seconds":60}}'
    )
    headers = {"content-type": "application/json"}
    record = finished_record(client_status=429, upstream_status=429)
    sent = buffered_answer(record, 429, headers, raw)
    saved = gateway_flow(raw, record, status=429, content_type="application/json", streamed=False)
    in_memory = gateway_flow(sent.body, record, status=sent.status, content_type="application/json", streamed=False)
    texts = [_view(f).text for f in (saved, in_memory)]
    assert texts[0].split("\n", 1)[1] == texts[1].split("\n", 1)[1]
    assert texts[0].startswith("# The client's answer (an error); translated from the upstream error\n")
    assert "error:\n  status: 429\n  type: rate_limit_error\n  code: usage_limit_reached\n" in texts[0]


def test_chat_view_of_a_local_error_answer() -> None:
    body = (
        b'{"error":{"message":"Invalid value for \'messages\'.","type":"invalid_request_error",'
        b'"param":"messages","code":"invalid_value"}}'
    )
    f = gateway_flow(body, chat_record(client_status=400), status=400, content_type="application/json")
    result = _view(f)
    assert result.view_name == "Chat"
    assert result.text == (
        "# The client's answer (an error); as sent\n"
        "error:\n"
        "  status: 400\n"
        "  type: invalid_request_error\n"
        "  code: invalid_value\n"
        "  param: messages\n"
        "  message: \"Invalid value for 'messages'.\"\n"
    )


def test_request_side_of_a_gateway_flow_keeps_the_json_view() -> None:
    f = gateway_flow(_tool_call_stream(), finished_record())
    f.request.headers["content-type"] = "application/json"
    assert contentviews.prettify_message(f.request, f).view_name == "JSON"


def test_codex_sse_view_by_name_on_a_gateway_flow_joins_deltas_and_hides_bulk() -> None:
    events = ev.text(["Hel", "lo ", "world"], response_id="resp_9")
    events[0]["response"]["instructions"] = "<!-- openclaw:attempt:STABLE -->" + "x" * 50_000
    events[0]["response"]["tools"] = [{"type": "function", "name": "read", "parameters": {}}] * 14
    response, f = _flow_and_message(upstream(events))
    result = contentviews.prettify_message(response, f, "Codex SSE")
    item = events[2]["item"]["id"]
    assert result.view_name == "Codex SSE"
    assert result.text.splitlines() == [
        f"# 11 events in {len(response.raw_content or b''):,} bytes; runs of deltas are joined",
        'response.created: {"response":{"id":"resp_9","status":"in_progress","model":"gpt-5.4"}}',
        'response.in_progress: {"response":{"id":"resp_9","status":"in_progress","model":"gpt-5.4"}}',
        f'response.output_item.added: {{"output_index":0,"item":{{"id":"{item}","type":"message","role":"assistant",'
        '"status":"in_progress","content":[]}}',
        f'response.content_part.added: {{"item_id":"{item}","output_index":0,"content_index":0,'
        '"part":{"type":"output_text","text":"","annotations":[]}}',
        f'response.output_text.delta ({item}) ×3: "Hello world"',
        f'response.output_text.done: {{"item_id":"{item}","output_index":0,"content_index":0,"text":"Hello world",'
        '"logprobs":[]}',
        f'response.content_part.done: {{"item_id":"{item}","output_index":0,"content_index":0,'
        '"part":{"type":"output_text","text":"Hello world","annotations":[]}}',
        f'response.output_item.done: {{"output_index":0,"item":{{"id":"{item}","type":"message","role":"assistant",'
        '"status":"completed","content":[{"type":"output_text","text":"Hello world","annotations":[]}]}}',
        'response.completed: {"response":{"id":"resp_9","status":"completed","model":"gpt-5.4","usage":'
        '{"input_tokens":11,"input_tokens_details":{"cached_tokens":0},"output_tokens":5,'
        '"output_tokens_details":{"reasoning_tokens":0},"total_tokens":16}}}',
    ]


def test_codex_sse_view_clips_long_strings() -> None:
    events = ev.reasoning(["Plan"], encrypted_content="g" * 5000)
    text = contentviews.prettify_message(*_flow_and_message(upstream(events)), "Codex SSE").text
    assert "g" * 400 + "… (5,000 chars)" in text and "g" * 401 not in text


def _flow_and_message(body: bytes) -> tuple[http.Response, http.HTTPFlow]:
    f = gateway_flow(body, finished_record())
    assert f.response is not None
    return f.response, f


def test_codex_sse_view_of_a_buffered_flow_in_memory_shows_the_upstream_stream() -> None:
    raw = upstream(ev.text("Hi there", response_id="resp_b"))
    record = finished_record(stream=False, finish_reason="stop", tool_calls=[])
    f = gateway_flow(raw, record, streamed=False)
    assert f.response is not None
    annotate(f)  # the addon's `response` hook, before AnswerWriter puts the client's answer in
    AnswerWriter({f.id: buffered_answer(record, 200, {}, raw)}).response(f)  # as in mitmweb, which keeps flows
    chat = contentviews.prettify_message(f.response, f)
    assert chat.view_name == "Chat"
    assert chat.text.startswith("# The client's answer (one chat.completion); as sent\nid: chatcmpl-b\n")
    sse = contentviews.prettify_message(f.response, f, "Codex SSE").text.splitlines()
    assert sse[0] == f"# 9 events in {len(raw):,} bytes; runs of deltas are joined"
    assert sse[5].startswith("response.output_text.delta (msg_") and sse[5].endswith(' ×1: "Hi there"')


def test_codex_sse_view_by_name_on_a_json_body_is_an_error() -> None:
    response, f = _flow_and_message(b'{"error":{"message":"x","type":"t","param":null,"code":null}}')
    result = contentviews.prettify_message(response, f, "Codex SSE")
    assert result.syntax_highlight == "error"
    assert "no server-sent events in this body" in result.text


def _capture(name: str) -> list[http.HTTPFlow]:
    with (CAPTURES / f"{name}.mitm").open("rb") as f:
        return [fl for fl in io.FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)]


def test_codex_sse_view_is_picked_for_recorded_openclaw_streams() -> None:
    tool_call, answer = _capture("session-1")
    assert tool_call.response is not None and answer.response is not None
    result = contentviews.prettify_message(tool_call.response, tool_call)
    assert result.view_name == "Codex SSE"
    assert result.text.splitlines()[1:] == [
        "# chat.completion.chunk id chatcmpl-y6aomxyXz3r6sr2NzMNVumNg, model gpt-5.4",
        'chunk: {"choices":[{"delta":{"role":"assistant","tool_calls":[{"index":0,'
        '"id":"call_i8xl5ykjUIqoEiv1FGNFOI02","type":"function","function":{"name":"read","arguments":""}}]}}]}',
        'chunk tool_calls[0].arguments ×3: "{\\"path\\": \\"HELLO.txt\\"}"',
        'chunk: {"choices":[{"delta":{},"finish_reason":"tool_calls"}]}',
        'chunk: {"usage":{"prompt_tokens":16799,"completion_tokens":12,"total_tokens":16811,'
        '"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":'
        '{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}',
        "[DONE]",
    ]
    lines = contentviews.prettify_message(answer.response, answer).text.splitlines()
    assert 'chunk content ×10: "The tool returned: hello from the lab workspace file. Done."' in lines


def test_chat_view_by_name_reads_a_recorded_chat_stream() -> None:
    tool_call, _ = _capture("session-1")
    assert tool_call.response is not None
    result = contentviews.prettify_message(tool_call.response, tool_call, "Chat")
    assert result.text == "\n".join(
        [
            "# The client's answer (streamed, 6 chunks + [DONE]); as sent",
            "id: chatcmpl-y6aomxyXz3r6sr2NzMNVumNg",
            "model: gpt-5.4",
            "finish_reason: tool_calls",
            "tool_calls:",
            "  - id: call_i8xl5ykjUIqoEiv1FGNFOI02",
            "    name: read",
            "    arguments: {",
            '        "path": "HELLO.txt"',
            "      }",
            "usage:",
            "  prompt_tokens: 16799",
            "  cached_tokens: 0",
            "  completion_tokens: 12",
            "  reasoning_tokens: 0",
            "  total_tokens: 16811",
            "",
        ]
    )


def test_other_bodies_keep_their_views() -> None:
    recorded_429 = _capture("session-5")[0]
    assert recorded_429.response is not None
    assert contentviews.prettify_message(recorded_429.response, recorded_429).view_name == "JSON"
    plain = tflow.tflow(resp=True)
    assert plain.response is not None
    plain.response.headers["content-type"] = "text/event-stream; charset=utf-8"
    plain.response.content = b'event: ping\ndata: {"n":1}\n\n'
    result = contentviews.prettify_message(plain.response, plain)
    assert (result.view_name, result.text) == (
        "Codex SSE",
        '# 1 events in 27 bytes; runs of deltas are joined\nping: {"n":1}\n',
    )
