"""Property tests: the SSE decoder + ChatStream under random chunkings and mangled upstream event sequences; any JSON
value in any field of any event for the chat, Responses and Messages paths.

Whatever upstream sends, the translator must not raise, and the client must get a valid chat stream that ends
in `data: [DONE]` (success) or one `data: {"error": ...}` event (failure).

The chunk id / created must never change mid-stream, whichever lifecycle event arrives first or twice.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from codex_gateway.anthropic.answer import MessagesOptions
from codex_gateway.anthropic.answer import buffered_answer as messages_buffered_answer
from codex_gateway.anthropic.answer import machine_for as messages_machine_for
from codex_gateway.anthropic.stream import _HANDLERS as MESSAGES_HANDLERS
from codex_gateway.anthropic.translator import MessagesSSETranslator
from codex_gateway.chat.answer import ChatOptions
from codex_gateway.chat.answer import buffered_answer as chat_buffered_answer
from codex_gateway.chat.stream import _HANDLERS as CHAT_HANDLERS
from codex_gateway.chat.stream import SKIPPED_EVENTS
from codex_gateway.chat.translator import ChatSSETranslator
from codex_gateway.codex_events import TERMINAL_STATUS
from codex_gateway.responses.stream import ResponsesSSEPassThrough
from codex_gateway.responses.stream import buffered_answer as responses_buffered_answer
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.conftest import DONE
from tests.conftest import check_chat_stream
from tests.conftest import encode_upstream
from tests.conftest import load_stream
from tests.conftest import new_machine
from tests.conftest import parse_chat_sse
from tests.conftest import sse_events
from tests.conftest import stream_names
from tests.conftest import translate

NAMES = stream_names()
FUZZ = settings(max_examples=200, deadline=None)


@functools.cache
def events_of(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(sse_events(load_stream(name)))


@functools.cache
def whole(name: str, include_usage: bool) -> bytes:
    return translate([load_stream(name)], include_usage=include_usage)


@st.composite
def chunked(draw: st.DrawFn, body: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=12)))
    bounds = [0, *cuts, len(body)]
    return [body[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


@given(data=st.data(), name=st.sampled_from(NAMES), include_usage=st.booleans())
@FUZZ
def test_random_chunking_never_changes_the_output(data: st.DataObject, name: str, include_usage: bool) -> None:
    pieces = data.draw(chunked(load_stream(name)))
    assert translate(pieces, include_usage=include_usage) == whole(name, include_usage)


@st.composite
def mangled_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = list(events_of(draw(st.sampled_from(NAMES))))
    ops = draw(st.lists(st.sampled_from(["truncate", "drop", "swap", "shuffle", "splice", "duplicate"]), max_size=4))
    for op in ops:
        if not events:
            break
        i = draw(st.integers(0, len(events) - 1))
        if op == "truncate":
            events = events[:i]
        elif op == "drop":
            del events[i]
        elif op == "swap" and i + 1 < len(events):
            events[i], events[i + 1] = events[i + 1], events[i]
        elif op == "shuffle":
            events = draw(st.permutations(events))
        elif op == "splice":
            other = list(events_of(draw(st.sampled_from(NAMES))))
            j = draw(st.integers(0, len(other)))
            events = events[:i] + other[j : j + draw(st.integers(1, 4))] + events[i:]
        elif op == "duplicate":
            events.insert(i, events[i])
    return list(events)


def check(body: bytes, include_usage: bool) -> None:
    events = parse_chat_sse(body)
    summary = check_chat_stream(events, include_usage=include_usage)
    assert summary.ok == (events[-1] == DONE)


@given(events=mangled_events(), data=st.data(), include_usage=st.booleans())
@FUZZ
def test_mangled_event_sequences_give_a_valid_chat_stream(
    events: list[dict[str, Any]], data: st.DataObject, include_usage: bool
) -> None:
    body = encode_upstream(events)
    if data.draw(st.booleans()):
        body = body[: data.draw(st.integers(0, len(body)))]  # the connection drops mid-event
    check(translate(data.draw(chunked(body)), include_usage=include_usage), include_usage)


@given(
    events=mangled_events(),
    stop=st.lists(st.text(alphabet="Helo ,!wr.dT", min_size=1, max_size=3), max_size=4),
    include_usage=st.booleans(),
)
@FUZZ
def test_mangled_events_with_stop_sequences_give_a_valid_chat_stream(
    events: list[dict[str, Any]], stop: list[str], include_usage: bool
) -> None:
    check(translate([encode_upstream(events)], include_usage=include_usage, stop=tuple(stop)), include_usage)


@given(noise=st.binary(max_size=300), data=st.data(), include_usage=st.booleans())
@FUZZ
def test_arbitrary_bytes_give_a_valid_chat_stream(noise: bytes, data: st.DataObject, include_usage: bool) -> None:
    prefix = load_stream(data.draw(st.sampled_from(NAMES)))
    prefix = prefix[: data.draw(st.integers(0, len(prefix)))]
    check(translate(data.draw(chunked(prefix + noise)), include_usage=include_usage), include_usage)


# -- any JSON value in any field of any event ----------------------------------------------------------------------
#
# The events of the recorded streams, each field at any depth (the event's `type` included) replaced by arbitrary
# JSON, for both state machines, streamed and buffered. Nothing may escape, the client's stream must end valid,
# and the gateway's own guard (an exception turned into an error event) must not be what ended it.

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=8)  # upstream bytes are UTF-8: no lone surrogates
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
FIELD_FUZZ = settings(max_examples=150, deadline=None)
GATEWAY_FAULT = "The gateway failed to translate"
Framed = list[tuple[Any, dict[str, Any]]]  # (the recorded type, for the `event:` line; the event as sent)


def _variant(name: str, renames: dict[str, str]) -> tuple[dict[str, Any], ...]:
    """A recorded stream with some event types renamed: types no recording holds, in a recorded context."""
    return tuple({**e, "type": renames.get(e["type"], e["type"])} for e in events_of(name))


@functools.cache
def field_sources() -> tuple[tuple[dict[str, Any], ...], ...]:
    recorded = tuple(events_of(name) for name in NAMES)
    variants = (
        _variant(
            "reasoning_text.sse",
            {
                "response.reasoning_summary_text.delta": "response.reasoning_text.delta",
                "response.reasoning_summary_text.done": "response.reasoning_text.done",
            },
        ),
        _variant("plain_text.sse", {"response.in_progress": "response.queued"}),
    )
    return recorded + variants


def test_the_field_fuzz_covers_every_event_type_the_machines_know() -> None:
    known = (
        set(CHAT_HANDLERS) | set(MESSAGES_HANDLERS) | set(SKIPPED_EVENTS) | set(TERMINAL_STATUS) | {"response.queued"}
    )
    assert known <= {e["type"] for events in field_sources() for e in events}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path into a JSON value (dict keys and list indexes, at any depth)."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    out: list[tuple[Any, ...]] = []
    for key, child in children:
        out.append((*prefix, key))
        out += _paths(child, (*prefix, key))
    return out


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


@st.composite
def fuzzed_fields(draw: st.DrawFn) -> Framed:
    events = [(e["type"], e) for e in draw(st.sampled_from(field_sources()))]
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(events) - 1))
        kind, event = events[i]
        events[i] = (kind, _replaced(event, draw(st.sampled_from(_paths(event))), draw(JSON)))
    return events


def framed(events: Framed) -> bytes:
    """As the backend frames events: the `event:` line names the recorded type, whatever the JSON says now (so the
    chat translator still drops the events it skips by name)."""
    return b"".join(
        b"event: " + kind.encode() + b"\ndata: " + json.dumps(event, ensure_ascii=False).encode() + b"\n\n"
        for kind, event in events
    )


@given(events=fuzzed_fields(), data=st.data(), include_usage=st.booleans())
@FIELD_FUZZ
def test_any_field_any_value_chat_streamed(events: Framed, data: st.DataObject, include_usage: bool) -> None:
    translator = ChatSSETranslator(new_machine(include_usage=include_usage))
    body = framed(events)
    if data.draw(st.booleans(), label="one event per read"):  # as the backend writes: text deltas take TextFrame
        pieces = [block + b"\n\n" for block in body.split(b"\n\n") if block]
    else:
        pieces = [p for p in data.draw(chunked(body)) if p]
    out = b"".join(out for piece in [*pieces, b""] for out in translator(piece))
    assert not translator.broken
    check(out, include_usage)


@given(events=fuzzed_fields(), stream=st.booleans())
@FIELD_FUZZ
def test_any_field_any_value_chat_buffered(events: Framed, stream: bool) -> None:
    answer = chat_buffered_answer(ChatOptions("gpt-5-codex", stream, False, ()), 200, {}, framed(events))
    assert not (answer.error or "").startswith(GATEWAY_FAULT)
    if stream:
        check(answer.body, False)
    elif answer.status == 200:
        assert json.loads(answer.body)["object"] == "chat.completion"
    else:
        assert set(json.loads(answer.body)["error"]) == {"message", "type", "param", "code"}


def check_responses(body: bytes) -> None:
    """A strict parse of the gateway's Responses stream: `event:` + one `data:` line per frame, ending with a
    terminal event or an `error` event."""
    assert body.endswith(b"\n\n")
    last: Any = None
    for frame in body.split(b"\n\n")[:-1]:
        lines = frame.split(b"\n")
        if lines[0].startswith(b"event: "):
            lines.pop(0)
        assert len(lines) == 1 and lines[0].startswith(b"data: "), frame[:80]
        last = json.loads(lines[0][len(b"data: ") :])
    assert isinstance(last, dict) and last.get("type") in {*TERMINAL_STATUS, "error"}, last


@given(events=fuzzed_fields(), data=st.data())
@FIELD_FUZZ
def test_any_field_any_value_responses_streamed(events: Framed, data: st.DataObject) -> None:
    machine = ResponsesSSEPassThrough()
    pieces = [p for p in data.draw(chunked(framed(events))) if p]
    body = b"".join(out for piece in [*pieces, b""] for out in machine(piece))
    assert not machine.broken
    check_responses(body)


@given(events=fuzzed_fields(), stream=st.booleans())
@FIELD_FUZZ
def test_any_field_any_value_responses_buffered(events: Framed, stream: bool) -> None:
    answer = responses_buffered_answer(stream, 200, {}, framed(events))
    assert not (answer.error or "").startswith(GATEWAY_FAULT)
    if stream:
        check_responses(answer.body)
    elif answer.status == 200:
        assert isinstance(json.loads(answer.body)["output_text"], str)
    else:
        assert set(json.loads(answer.body)["error"]) == {"message", "type", "param", "code"}


MESSAGES = MessagesOptions("claude-opus-5-5", thinking="summarized", stop=("Hello",))


def check_messages(body: bytes) -> None:
    """A strict parse of the gateway's Anthropic stream: `event: <name>` + one `data:` line per frame, the data's
    type repeating the name, ending with `message_stop` or an `error` event (and no `message_stop` before it)."""
    assert body.endswith(b"\n\n")
    names = []
    for frame in body.split(b"\n\n")[:-1]:
        head, data = frame.split(b"\n")
        name = head.removeprefix(b"event: ").decode()
        assert head.startswith(b"event: ") and data.startswith(b"data: "), frame[:80]
        assert json.loads(data[len(b"data: ") :])["type"] == name
        names.append(name)
    assert names[-1] in {"message_stop", "error"} and names.count("message_stop") + names.count("error") == 1


@given(events=fuzzed_fields(), data=st.data())
@FIELD_FUZZ
def test_any_field_any_value_messages_streamed(events: Framed, data: st.DataObject) -> None:
    translator = MessagesSSETranslator(messages_machine_for(MESSAGES), ping_interval=1e9)
    pieces = [p for p in data.draw(chunked(framed(events))) if p]
    body = b"".join(out for piece in [*pieces, b""] for out in translator(piece))
    assert not translator.broken
    check_messages(body)


@given(events=fuzzed_fields(), stream=st.booleans())
@FIELD_FUZZ
def test_any_field_any_value_messages_buffered(events: Framed, stream: bool) -> None:
    options = MessagesOptions(MESSAGES.model, stream, MESSAGES.stop, MESSAGES.thinking)
    answer = messages_buffered_answer(options, 200, {}, framed(events))
    assert not (answer.error or "").startswith(GATEWAY_FAULT)
    if stream:
        check_messages(answer.body)
    elif answer.status == 200:
        assert json.loads(answer.body)["type"] == "message"
    else:
        assert json.loads(answer.body)["type"] == "error"
