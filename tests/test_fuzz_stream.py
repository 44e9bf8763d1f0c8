"""Property tests: the SSE decoder + ChatStream under random chunkings and mangled upstream event sequences.

Whatever upstream sends, the translator must not raise, and the client must get a valid chat stream that ends
in `data: [DONE]` (success) or one `data: {"error": ...}` event (failure).

The chunk id / created must never change mid-stream, whichever lifecycle event arrives first or twice.
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.conftest import DONE
from tests.conftest import check_chat_stream
from tests.conftest import encode_upstream
from tests.conftest import load_stream
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
