"""chat.translator.ChatSSETranslator over recorded upstream streams: chunking-independent bytes, valid chat streams.

Each recorded stream in tests/fixtures/streams/ has one row in EXPECTED saying what a client must end up with.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import pytest
from codex_gateway.chat.stream import ChatStream
from codex_gateway.chat.stream import completion_from_chunks
from codex_gateway.chat.translator import ChatSSETranslator
from codex_gateway.chat.translator import render_completion
from codex_gateway.chat.translator import run_body
from codex_gateway.chat.translator import translate_body
from codex_gateway.sse import SSEDecoder

from scripts.fakes import codex_events as ev
from tests.conftest import FALLBACK_CREATED
from tests.conftest import Boom
from tests.conftest import ChatSummary
from tests.conftest import chat_result
from tests.conftest import check_chat_stream
from tests.conftest import encode_upstream
from tests.conftest import load_stream
from tests.conftest import new_machine
from tests.conftest import parse_chat_sse
from tests.conftest import raising_after
from tests.conftest import stream_names
from tests.conftest import translate


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


@dataclass
class Expect:
    id: str
    outcome: str  # the finish_reason, or "error:<code>"
    content: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    created: int = 1760000000
    error_type: str | None = None


EXPECTED: dict[str, Expect] = {
    "plain_text.sse": Expect(
        "chatcmpl-plain01", "stop", content="Hello, wörld 👋🏽 日本語 e\u0301!", usage=usage(11032, 22)
    ),
    "reasoning_text.sse": Expect(
        "chatcmpl-reason01",
        "stop",
        content="The answer is 42.",
        reasoning="**Planning**\n\nThen answer.",
        usage=usage(900, 120, cached=768, reasoning=64),
    ),
    "parallel_calls.sse": Expect(
        "chatcmpl-par01",
        "tool_calls",
        reasoning="**Checking files**",
        tool_calls=[
            {"id": "call_a", "name": "shell", "arguments": '{"command":["ls"]}'},
            {"id": "call_b", "name": "read_file", "arguments": '{"path":"caf\\u00e9.txt"}'},
        ],
        usage=usage(900, 120, cached=768, reasoning=64),
    ),
    "args_only_in_done.sse": Expect(
        "chatcmpl-argsdone01",
        "tool_calls",
        tool_calls=[{"id": "call_d", "name": "get_weather", "arguments": '{"city":"Paris"}'}],
        usage=usage(50, 10),
    ),
    "text_only_in_done.sse": Expect("chatcmpl-textdone01", "stop", content="Only in done.", usage=usage(20, 4)),
    "refusal.sse": Expect("chatcmpl-refusal01", "stop", refusal="I can't help with that.", usage=usage(30, 6)),
    "incomplete_max_output_tokens.sse": Expect(
        "chatcmpl-inc_max_output_tokens", "length", content="Partial answ", usage=usage(40, 16)
    ),
    "incomplete_content_filter.sse": Expect(
        "chatcmpl-inc_content_filter", "content_filter", content="Partial answ", usage=usage(40, 16)
    ),
    "failed_after_text.sse": Expect(
        "chatcmpl-failed01", "error:rate_limit_exceeded", content="Hello", error_type="rate_limit_error"
    ),
    "error_event.sse": Expect(
        "chatcmpl-error01", "error:server_is_overloaded", content="Thinking about", error_type="server_error"
    ),
    "stream_cut.sse": Expect(
        "chatcmpl-cut01", "error:stream_incomplete", content="This answer is cut", error_type="server_error"
    ),
    "unknown_events.sse": Expect("chatcmpl-unknown01", "stop", content="Still fine.", usage=usage(10, 3)),
    "dataless_events.sse": Expect("chatcmpl-dataless01", "stop", content="Dataless", usage=usage(10, 2)),
    # Codex's own minimal fixture: no created_at and no usage upstream (the usage chunk then reports zeros, never null).
    "minimal_codex.sse": Expect(
        "chatcmpl-resp1", "stop", content="fixture hello", created=FALLBACK_CREATED, usage=usage(0, 0)
    ),
    "crlf_nospace.sse": Expect(
        "chatcmpl-crlf01",
        "stop",
        content="🦀 Rust と Ω\u0308 ok",
        reasoning="思考中…",
        usage=usage(12, 7, reasoning=3),
    ),
}

NAMES = stream_names()
OK_NAMES = [n for n in NAMES if not EXPECTED[n].outcome.startswith("error:")]
FAILED_NAMES = [n for n in NAMES if EXPECTED[n].outcome.startswith("error:")]


def test_every_recorded_stream_has_an_expectation() -> None:
    assert set(NAMES) == set(EXPECTED)


@functools.cache
def whole(name: str, include_usage: bool) -> bytes:
    return translate([load_stream(name)], include_usage=include_usage)


@functools.cache
def summary(name: str, include_usage: bool) -> ChatSummary:
    return chat_result([load_stream(name)], include_usage=include_usage)


# -- chunking independence -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_split_in_two_at_every_byte_gives_the_same_bytes(name: str) -> None:
    body = load_stream(name)
    expected = whole(name, True)
    for i in range(len(body) + 1):
        assert translate([body[:i], body[i:]], include_usage=True) == expected, f"split at byte {i}"


@pytest.mark.parametrize("name", NAMES)
def test_one_byte_at_a_time_gives_the_same_bytes(name: str) -> None:
    body = load_stream(name)
    assert translate([body[i : i + 1] for i in range(len(body))], include_usage=True) == whole(name, True)


def event_reads(body: bytes) -> list[bytes]:
    """The body one SSE event per read, as the backend writes it."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in body else b"\n\n"
    return [block + sep for block in body.split(sep) if block]


@pytest.mark.parametrize("include_usage", [True, False])
@pytest.mark.parametrize("stop", [(), ("fake",), (" ",)])
@pytest.mark.parametrize("name", NAMES)
def test_one_event_per_read_writes_the_same_bytes_as_one_read(
    name: str, stop: tuple[str, ...], include_usage: bool
) -> None:
    """What the backend writes (one event per read) and a whole buffered body give the client the same bytes."""
    body = load_stream(name)
    one_read = translate([body], include_usage=include_usage, stop=stop)
    assert translate(event_reads(body), include_usage=include_usage, stop=stop) == one_read


# -- validity and content ------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [True, False], ids=["usage", "no-usage"])
@pytest.mark.parametrize("name", NAMES)
def test_output_is_a_valid_chat_stream(name: str, include_usage: bool) -> None:
    assert summary(name, include_usage).ok == (name in OK_NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_outcome(name: str) -> None:
    got = summary(name, False)
    outcome = got.finish_reason if got.ok else f"error:{got.error and got.error['code']}"
    assert outcome == EXPECTED[name].outcome


@pytest.mark.parametrize("name", FAILED_NAMES)
def test_error_type(name: str) -> None:
    err = summary(name, False).error
    assert err is not None and err["type"] == EXPECTED[name].error_type


def test_failed_response_keeps_the_upstream_message() -> None:
    err = summary("failed_after_text.sse", False).error
    assert err is not None
    assert err["message"].startswith("Rate limit reached for gpt-5.1") and "try again in 11.054s" in err["message"]


@pytest.mark.parametrize("name", NAMES)
def test_content(name: str) -> None:
    assert summary(name, False).content == EXPECTED[name].content


@pytest.mark.parametrize("name", NAMES)
def test_reasoning_goes_to_reasoning_content(name: str) -> None:
    assert summary(name, False).reasoning == EXPECTED[name].reasoning


@pytest.mark.parametrize("name", NAMES)
def test_refusal(name: str) -> None:
    assert summary(name, False).refusal == EXPECTED[name].refusal


@pytest.mark.parametrize("name", NAMES)
def test_tool_calls(name: str) -> None:
    assert summary(name, False).tool_calls == EXPECTED[name].tool_calls


@pytest.mark.parametrize("name", NAMES)
def test_chat_id_derives_from_response_id(name: str) -> None:
    assert summary(name, False).id == EXPECTED[name].id


@pytest.mark.parametrize("name", NAMES)
def test_created_derives_from_created_at(name: str) -> None:
    assert summary(name, False).created == EXPECTED[name].created


@pytest.mark.parametrize("name", NAMES)
def test_model_from_upstream_response(name: str) -> None:
    # Every fixture with a response.model says gpt-5-codex; the machine was built for the same model.
    assert {c["model"] for c in summary(name, True).chunks} == {"gpt-5-codex"}


# -- usage ------------------------------------------------------------------------------------------------------


# Found as a bug for minimal_codex.sse (usage chunk with "usage": null); fixed in addons during this session.
@pytest.mark.parametrize("name", OK_NAMES)
def test_include_usage_final_chunk_carries_mapped_usage(name: str) -> None:
    got = summary(name, True)
    assert got.usage is not None, "the choices-[] chunk carries a usage object"
    assert got.usage == EXPECTED[name].usage


@pytest.mark.parametrize("name", NAMES)
def test_without_include_usage_no_usage_key_anywhere(name: str) -> None:
    assert b'"usage"' not in whole(name, False)


@pytest.mark.parametrize("name", NAMES)
def test_include_usage_only_adds_usage_fields(name: str) -> None:
    with_usage = [e for e in parse_chat_sse(whole(name, True)) if not (isinstance(e, dict) and e.get("choices") == [])]
    for event in with_usage:
        if isinstance(event, dict):
            event.pop("usage", None)
    assert with_usage == parse_chat_sse(whole(name, False))


# -- translator mechanics ---------------------------------------------------------------------------------------


def test_upstream_done_line_is_ignored() -> None:
    body = load_stream("plain_text.sse")
    translator = ChatSSETranslator(new_machine())
    out = b"".join(translator(body + b"data: [DONE]\n\n") + translator(b""))
    assert out == whole("plain_text.sse", False)
    assert translator.bad_events == 0


def test_unparseable_and_non_object_data_is_skipped_and_counted() -> None:
    body = load_stream("plain_text.sse")
    junk = b"data: {not json\n\ndata: [1, 2]\n\ndata: hello\n\n"
    cut = body.index(b"event: response.output_text.delta")
    translator = ChatSSETranslator(new_machine())
    out = b"".join(translator(body[:cut] + junk + body[cut:]) + translator(b""))
    assert out == whole("plain_text.sse", False)
    assert translator.bad_events == 3


def test_end_of_body_twice_sends_one_done() -> None:
    translator = ChatSSETranslator(new_machine())
    first = b"".join(translator(load_stream("plain_text.sse")) + translator(b""))
    assert first.endswith(b"data: [DONE]\n\n")
    assert translator(b"") == []


def test_nothing_after_the_terminal_event() -> None:
    body = load_stream("plain_text.sse")
    again = body  # a second, complete answer after response.completed must not leak into the client stream
    translator = ChatSSETranslator(new_machine())
    assert b"".join(translator(body + again) + translator(b"")) == whole("plain_text.sse", False)


def test_empty_upstream_body_is_an_error_not_done() -> None:
    got = chat_result([b""])
    assert not got.ok and got.error is not None and got.error["code"] == "stream_incomplete"


def test_raw_body_keeps_upstream_bytes() -> None:
    body = load_stream("reasoning_text.sse")
    translator = ChatSSETranslator(new_machine())
    translator(body[:100])
    translator(body[100:])
    translator(b"")
    assert translator.take_raw_body() == body


def test_raw_body_is_handed_over_once() -> None:
    translator = ChatSSETranslator(new_machine())
    translator(load_stream("reasoning_text.sse"))
    translator.take_raw_body()
    assert translator.raw is None and translator.take_raw_body() == b""


@pytest.mark.parametrize("name", NAMES)
def test_translate_body_equals_streamed_output(name: str) -> None:
    assert translate_body(new_machine(include_usage=True), load_stream(name)) == whole(name, True)


@pytest.mark.parametrize("name", OK_NAMES)
def test_render_completion_of_run_body_matches_streamed_chunks(name: str) -> None:
    chunks = [e for e in parse_chat_sse(whole(name, True)) if isinstance(e, dict)]
    assert render_completion(run_body(new_machine(include_usage=True), load_stream(name))) == completion_from_chunks(
        chunks
    )


def test_json_data_with_leading_whitespace_is_parsed() -> None:
    body = (
        b'data:  {"type":"response.created","response":{"id":"resp_ws"}}\n\n'
        b'data:\t{"type":"response.output_text.delta","delta":"hi"}\n\n'
        b'data:\ndata: {"type":"response.completed","response":{"id":"resp_ws"}}\n\n'
    )
    got = chat_result([body])
    assert (got.ok, got.content, got.finish_reason) == (True, "hi", "stop")


def test_event_name_stands_in_for_a_missing_type() -> None:
    """Minimal servers may name the event only on the `event:` line; the JSON then has no "type"."""
    body = (
        b'event: response.created\ndata: {"response":{"id":"resp_t","created_at":1}}\n\n'
        b'event: response.output_text.delta\ndata: {"delta":"hi"}\n\n'
        b'event: response.completed\ndata: {"response":{"id":"resp_t"}}\n\n'
    )
    translator = ChatSSETranslator(ChatStream(model="m"))
    text = b"".join(translator(body) + translator(b"")).decode()
    assert '"content":"hi"' in text and '"finish_reason":"stop"' in text and text.endswith("data: [DONE]\n\n")


# -- faults inside the gateway ----------------------------------------------------------------------------------

ODD_TYPES = [b"{}", b"[]", b"1", b"null", b"true", b'["response.completed"]']


@pytest.mark.parametrize("odd", ODD_TYPES, ids=[t.decode() for t in ODD_TYPES])
def test_an_event_whose_type_is_no_string_is_skipped(odd: bytes) -> None:
    body = load_stream("plain_text.sse")
    cut = body.index(b"event: response.output_text.delta")
    noise = b'data: {"type": ' + odd + b', "delta": "x"}\n\n'
    assert translate([body[:cut] + noise + body[cut:]]) == whole("plain_text.sse", False)


def broken_translator(monkeypatch: pytest.MonkeyPatch, *, after: int = 0) -> ChatSSETranslator:
    """A translator whose state machine raises on the event after the first `after` events."""
    machine = new_machine()
    monkeypatch.setattr(machine, "feed", raising_after(machine.feed, after))
    return ChatSSETranslator(machine)


def test_an_exception_ends_the_stream_at_once_with_an_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    translator = broken_translator(monkeypatch, after=3)
    body = load_stream("plain_text.sse")
    written = translator(body)
    got = check_chat_stream(parse_chat_sse(b"".join(written)), include_usage=False)
    assert not got.ok and got.error == {
        "message": "The gateway failed to translate the upstream answer (Boom).",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert translator.machine.error == got.error


def test_after_an_exception_nothing_more_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    translator = broken_translator(monkeypatch)
    translator(load_stream("plain_text.sse"))
    assert translator(load_stream("plain_text.sse")) == [] and translator(b"") == []


def test_an_exception_is_logged_once_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    translator = broken_translator(monkeypatch)
    translator(load_stream("plain_text.sse"))
    translator(load_stream("plain_text.sse"))
    translator(b"")
    records = [r for r in caplog.records if r.exc_info]
    assert len(records) == 1 and records[0].exc_info is not None and records[0].exc_info[0] is Boom


def test_an_exception_after_the_finish_chunk_still_ends_with_done(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer was whole before the fault (finish chunk sent): an error now would contradict it."""
    translator = ChatSSETranslator(new_machine())
    first = translator(load_stream("plain_text.sse"))
    monkeypatch.setattr(SSEDecoder, "close", lambda self: 1 / 0)
    out = b"".join(first + translator(b""))
    assert out == whole("plain_text.sse", False)


def test_an_exception_in_a_buffered_body_fails_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = new_machine()
    monkeypatch.setattr(machine, "feed", lambda event: 1 / 0)
    chunks = run_body(machine, load_stream("plain_text.sse"))
    assert chunks[-1]["error"]["message"] == "The gateway failed to translate the upstream answer (ZeroDivisionError)."


def test_a_fault_in_the_read_that_finished_the_answer_still_writes_its_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    machine = new_machine()
    feed = machine.feed

    def feed_then_fail(event: dict[str, Any]) -> list[dict[str, Any]]:
        if machine.done:
            raise Boom("after the end")
        return feed(event)

    monkeypatch.setattr(machine, "feed", feed_then_fail)
    translator = ChatSSETranslator(machine)
    body = load_stream("plain_text.sse")
    out = b"".join(translator(body + body) + translator(b""))  # the second answer's events hit the fault
    assert translator.broken and out == whole("plain_text.sse", False)


# -- TextFrame: reads holding one text delta ---------------------------------------------------------------------


def test_one_event_reads_of_text_are_written_into_the_frame() -> None:
    """The lane is taken (it is the point of `TextFrame`), and its bytes are the general path's."""
    translator = ChatSSETranslator(new_machine())
    body = load_stream("plain_text.sse")
    out = b"".join(written for read in [*event_reads(body), b""] for written in translator(read))
    assert translator._frame.head is not None and out == whole("plain_text.sse", False)


def test_a_text_that_also_names_the_model_leaves_the_cut_to_a_later_chunk() -> None:
    """The first content chunk's text occurs twice in its event (as the content and as the model): the frame is cut
    from the next content chunk, and every event is still the general path's."""
    body = encode_upstream(ev.text(["gpt-5-codex", " is", " here"], model="gpt-5-codex"))
    assert translate(event_reads(body), include_usage=True) == translate([body], include_usage=True)
