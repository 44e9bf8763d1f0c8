"""anthropic.stream.MessageStream (Codex events → Anthropic stream events) over recorded and built streams."""

from __future__ import annotations

import json
from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from codex_gateway.anthropic.request import SIGNATURE_PREFIX
from codex_gateway.anthropic.stream import Event
from codex_gateway.anthropic.stream import MessageStream
from codex_gateway.anthropic.stream import message_from_events
from codex_gateway.anthropic.translator import MessagesSSETranslator
from codex_gateway.anthropic.translator import encode_events
from codex_gateway.anthropic.translator import run_body
from codex_gateway.sse import SSEDecoder

from scripts.fakes import codex_events as ev
from tests.conftest import encode_upstream
from tests.conftest import load_stream
from tests.conftest import raising_after
from tests.conftest import stream_names

TRANSLATION_FAULT = "The gateway failed to translate the upstream answer (Boom)."
FAILING = {"failed_after_text.sse", "stream_cut.sse", "error_event.sse"}


def machine(**kw: Any) -> MessageStream:
    kw.setdefault("model", "claude-opus-5-5")
    kw.setdefault("thinking", "summarized")
    return MessageStream(**kw)


def events_of(body: bytes, **kw: Any) -> tuple[MessageStream, list[Event]]:
    m = machine(**kw)
    return m, run_body(m, body)


def sdk_message(events: list[Event]) -> dict[str, Any]:
    """What the `anthropic` SDK's stream helper assembles from the events (it raises on a bad order)."""
    snapshot = None
    bufs: dict[int, bytes] = {}
    for name, data in events:
        if name in ("ping", "error"):
            continue
        assert data["type"] == name, "the SSE event name repeats the data's type"
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=bufs)  # type: ignore[arg-type]
    assert snapshot is not None
    return snapshot.to_dict()


def check_order(events: list[Event]) -> None:
    """Anthropic's grammar: message_start, blocks started/stopped one at a time with dense indexes, then
    message_delta and message_stop; or an `error` event as the very last one."""
    names = [n for n, _ in events if n != "ping"]
    if names[-1] == "error":
        assert "message_stop" not in names and "message_delta" not in names
        names = names[:-1]
    else:
        assert names[-2:] == ["message_delta", "message_stop"]
        names = names[:-2]
    if not names:
        return
    assert names[0] == "message_start"
    open_index = None
    expected = 0
    for name, data in events:
        if name == "content_block_start":
            assert open_index is None and data["index"] == expected
            open_index = expected
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index, expected = None, expected + 1
    assert open_index is None or names[-1] != "message_stop"


@pytest.mark.parametrize("name", [n for n in stream_names() if n not in FAILING])
def test_recorded_stream_folds_as_the_sdk_assembles_it(name: str) -> None:
    _, events = events_of(load_stream(name))
    check_order(events)
    folded, sdk = message_from_events(events), sdk_message(events)
    assert {k: v for k, v in folded.items() if k != "content"} == {k: sdk[k] for k in folded if k != "content"}
    assert [b["type"] for b in folded["content"]] == [b["type"] for b in sdk["content"]]
    for ours, theirs in zip(folded["content"], sdk["content"], strict=True):
        assert ours == {k: theirs[k] for k in ours}


@pytest.mark.parametrize("name", sorted(FAILING))
def test_failed_stream_ends_with_an_error_event_and_no_message_stop(name: str) -> None:
    m, events = events_of(load_stream(name))
    check_order(events)
    assert events[-1][0] == "error" and m.error is not None
    assert events[-1][1]["error"]["type"] in {"api_error", "rate_limit_error", "overloaded_error"}


@pytest.mark.parametrize("name", stream_names())
@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_read_boundaries_change_nothing(name: str, size: int) -> None:
    body = load_stream(name)
    whole = [e for e in events_of(body)[1] if e[0] != "message_start"]
    m = machine()
    m.id = "fixed"
    translator = MessagesSSETranslator(m, ping_interval=1e9)
    out = b"".join(b"".join(translator(body[i : i + size])) for i in range(0, len(body), size)) + b"".join(
        translator(b"")
    )
    assert out.endswith(encode_events(whole[-1:]))
    assert out.count(b"event: content_block_delta") == sum(1 for n, _ in whole if n == "content_block_delta")


STOP_TABLE = [
    # deltas, stop sequences, text the client gets, stop_reason, stop_sequence
    (["Hello END there"], ("END",), "Hello ", "stop_sequence", "END"),
    (["Hel", "lo E", "ND x"], ("END",), "Hello ", "stop_sequence", "END"),
    (["Hello EN"], ("END",), "Hello EN", "end_turn", None),
    (["a STOP b END"], ("END", "STOP"), "a ", "stop_sequence", "STOP"),
    (["no stop here"], (), "no stop here", "end_turn", None),
]


@pytest.mark.parametrize(("deltas", "stops", "text", "reason", "sequence"), STOP_TABLE)
def test_stop_sequences_are_emulated(
    deltas: list[str], stops: tuple[str, ...], text: str, reason: str, sequence: str | None
) -> None:
    m, events = events_of(encode_upstream(ev.text(deltas)), stop=stops)
    check_order(events)
    message = message_from_events(events)
    assert "".join(b["text"] for b in message["content"]) == text
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


def test_nothing_follows_a_stop_sequence() -> None:
    stream = ev.tool_calls([("ls", "{}", "call_1")], text_before="done. END and a call")
    _, events = events_of(encode_upstream(stream), stop=("END",))
    message = message_from_events(events)
    assert [b["type"] for b in message["content"]] == ["text"]
    assert message["stop_reason"] == "stop_sequence"


def test_interleaved_calls_are_written_one_block_at_a_time() -> None:
    calls = [("read", '{"path":"a.txt"}', "call_1"), ("ls", '{"dir":"/tmp"}', "call_2")]
    _, events = events_of(encode_upstream(ev.tool_calls(calls, interleave=True, split=4)))
    check_order(events)
    message = sdk_message(events)
    assert [(b["id"], b["name"], b["input"]) for b in message["content"]] == [
        ("call_1", "read", {"path": "a.txt"}),
        ("call_2", "ls", {"dir": "/tmp"}),
    ]
    assert message["stop_reason"] == "tool_use"


def test_shortened_tool_names_map_back_to_the_clients() -> None:
    long_name = "mcp__server__" + "x" * 80
    from codex_gateway.anthropic.request import upstream_tool_name

    short = upstream_tool_name(long_name)
    _, events = events_of(encode_upstream(ev.tool_calls([(short, "{}", "call_1")])), tool_names={short: long_name})
    assert message_from_events(events)["content"][0]["name"] == long_name


THINKING_TABLE = [
    # thinking mode, the blocks the client gets
    ("summarized", ["thinking", "text"]),
    ("omitted", ["thinking", "text"]),
    ("off", ["text"]),
]


@pytest.mark.parametrize(("mode", "blocks"), THINKING_TABLE)
def test_reasoning_becomes_a_signed_thinking_block(mode: str, blocks: list[str]) -> None:
    stream = ev.response(ev.reasoning(["**Plan**", "then act"])[2:-1], ev.text("Done.")[2:-1])
    _, events = events_of(encode_upstream(stream), thinking=mode)
    check_order(events)
    message = sdk_message(events)
    assert [b["type"] for b in message["content"]] == blocks
    if mode != "off":
        thinking = message["content"][0]
        assert thinking["signature"] == SIGNATURE_PREFIX + "gAAAAABfakeEncryptedReasoning=="
        assert thinking["thinking"] == ("**Plan**\n\nthen act" if mode == "summarized" else "")


def test_reasoning_without_summary_still_carries_its_signature() -> None:
    _, events = events_of(encode_upstream(ev.response(ev.reasoning([])[2:-1], ev.text("ok")[2:-1])))
    thinking = message_from_events(events)["content"][0]
    assert (thinking["type"], thinking["thinking"], thinking["signature"][: len(SIGNATURE_PREFIX)]) == (
        "thinking",
        "",
        SIGNATURE_PREFIX,
    )


USAGE_TABLE = [
    (ev.usage(1000, 50, cached=800), {"input_tokens": 200, "cache_read_input_tokens": 800, "output_tokens": 50}),
    (ev.usage(11, 5), {"input_tokens": 11, "cache_read_input_tokens": 0, "output_tokens": 5}),
    (None, {"input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}),
]


@pytest.mark.parametrize(("usage", "expected"), USAGE_TABLE)
def test_usage_counts_cached_input_apart(usage: dict[str, Any] | None, expected: dict[str, int]) -> None:
    _, events = events_of(encode_upstream(ev.text("hi", usage=usage)))
    got = message_from_events(events)["usage"]
    assert {k: got[k] for k in expected} == expected and got["cache_creation_input_tokens"] == 0


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (ev.incomplete("max_output_tokens", after=ev.text("cut")[2:-1]), "max_tokens"),
        (ev.incomplete("content_filter", after=ev.text("cut")[2:-1]), "refusal"),
        (ev.refusal("no."), "refusal"),
        (ev.tool_calls([("ls", "{}", "c1")]), "tool_use"),
        (ev.text("fine"), "end_turn"),
    ],
)
def test_stop_reason(stream: list[dict[str, Any]], reason: str) -> None:
    _, events = events_of(encode_upstream(stream))
    assert message_from_events(events)["stop_reason"] == reason


FAILURE_TABLE = [
    ("rate_limit_exceeded", "rate_limit_error"),
    ("server_is_overloaded", "overloaded_error"),
    ("context_length_exceeded", "invalid_request_error"),
    ("something_new", "api_error"),
]


@pytest.mark.parametrize(("code", "etype"), FAILURE_TABLE)
def test_upstream_failure_codes_map_to_anthropic_error_types(code: str, etype: str) -> None:
    _, events = events_of(encode_upstream(ev.failed(code, "it broke", after=ev.text("par")[2:-1])))
    assert events[-1] == ("error", {"type": "error", "error": {"type": etype, "message": "it broke"}})


def test_lost_deltas_fail_the_answer() -> None:
    stream = ev.text(["Hello", " world"])
    broken = [e for e in stream if not (e.get("type") == "response.output_text.delta" and e.get("delta") == "Hello")]
    _, events = events_of(encode_upstream(broken))
    assert events[-1][0] == "error"


def test_a_web_search_becomes_server_tool_blocks() -> None:
    search = {
        "type": "response.output_item.done",
        "output_index": 0,
        "item": {
            "id": "ws_1",
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": "weather", "sources": [{"url": "https://example.com/w"}]},
        },
    }
    stream = ev.response([search], ev.text("Sunny.")[2:-1])
    _, events = events_of(encode_upstream(stream))
    check_order(events)
    message = sdk_message(events)
    assert [b["type"] for b in message["content"]] == ["server_tool_use", "web_search_tool_result", "text"]
    assert message["content"][0]["input"] == {"query": "weather"}
    assert message["content"][1]["content"][0]["url"] == "https://example.com/w"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_ping_goes_out_when_upstream_sends_nothing_for_the_client() -> None:
    clock = Clock()
    translator = MessagesSSETranslator(machine(thinking="omitted"), clock=clock, ping_interval=5)
    stream = encode_upstream(ev.reasoning(["a", "b", "c"]))
    events = stream.split(b"\n\n")
    written = [b"".join(translator(e + b"\n\n")) for e in events[:6] if e]
    assert written[0].startswith(b"event: message_start")
    clock.now = 6
    late = b"".join(translator(encode_upstream([{"type": "codex.rate_limits"}])))
    assert late == b'event: ping\ndata: {"type":"ping"}\n\n'
    again = b"".join(translator(encode_upstream([{"type": "codex.rate_limits"}])))
    assert again == b""  # not before another interval has passed


def test_the_stream_never_writes_an_empty_chunk() -> None:
    translator = MessagesSSETranslator(machine())
    for piece in [*encode_upstream(ev.text(["a", "b"])).split(b"\n\n"), b""]:
        assert all(translator(piece + b"\n\n" if piece else b""))


def test_buffered_and_streamed_answers_agree() -> None:
    body = load_stream("reasoning_text.sse")
    m1, events = events_of(body)
    m2 = machine()
    m2.id = m1.id
    translator = MessagesSSETranslator(m2, ping_interval=1e9)
    streamed = b"".join(b"".join(translator(body[i : i + 50])) for i in range(0, len(body), 50))
    streamed += b"".join(translator(b""))
    assert streamed == encode_events(events)
    frames = [f for f in streamed.split(b"\n\n") if f]
    assert all(f.startswith(b"event: ") and json.loads(f.split(b"\ndata: ", 1)[1]) for f in frames)


# -- the guard: a fault inside the gateway ends the client's stream at once -----------------------------------------

GATEWAY_FAULT = {"type": "error", "error": {"type": "api_error", "message": TRANSLATION_FAULT}}


def parsed(body: bytes) -> list[Event]:
    """The client's SSE body as (event name, data) pairs (each frame an `event:` line and one `data:` line)."""
    out: list[Event] = []
    for block in body.split(b"\n\n")[:-1]:
        head, data = block.split(b"\n")
        assert head.startswith(b"event: ") and data.startswith(b"data: ")
        out.append((head[len(b"event: ") :].decode(), json.loads(data[len(b"data: ") :])))
    return out


def broken_translator(monkeypatch: pytest.MonkeyPatch, *, after: int) -> MessagesSSETranslator:
    """A translator whose state machine raises on the event after the first `after` events."""
    m = machine()
    monkeypatch.setattr(m, "feed", raising_after(m.feed, after))
    return MessagesSSETranslator(m, ping_interval=1e9)


@pytest.mark.parametrize("after", [0, 4])
def test_an_exception_ends_the_stream_at_once_with_an_error_event(monkeypatch: pytest.MonkeyPatch, after: int) -> None:
    translator = broken_translator(monkeypatch, after=after)
    events = parsed(b"".join(translator(load_stream("plain_text.sse"))))
    check_order(events)
    assert events[-1] == ("error", GATEWAY_FAULT)
    assert translator.broken and translator.outcome().error == TRANSLATION_FAULT


def test_after_an_exception_nothing_more_is_written(monkeypatch: pytest.MonkeyPatch) -> None:
    translator = broken_translator(monkeypatch, after=0)
    translator(load_stream("plain_text.sse"))
    assert translator(load_stream("plain_text.sse")) == [] and translator(b"") == []


def test_an_exception_after_message_stop_adds_no_error_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer was whole before the fault: an error event after message_stop would contradict it."""
    translator = MessagesSSETranslator(machine(), ping_interval=1e9)
    first = b"".join(translator(load_stream("plain_text.sse")))
    monkeypatch.setattr(SSEDecoder, "close", lambda self: 1 / 0)
    assert translator(b"") == [] and parsed(first)[-1][0] == "message_stop"


def test_an_exception_in_a_buffered_body_fails_the_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    m = machine()
    monkeypatch.setattr(m, "feed", raising_after(m.feed, 0))
    assert run_body(m, load_stream("plain_text.sse")) == [("error", GATEWAY_FAULT)]
