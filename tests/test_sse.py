"""sse.SSEDecoder / encode_data: WHATWG event-stream decoding as the OpenAI SDK and Codex do it."""

from __future__ import annotations

import json

import pytest
from codex_gateway.sse import DONE
from codex_gateway.sse import SSEDecoder
from codex_gateway.sse import SSEEvent
from codex_gateway.sse import encode_data
from codex_gateway.sse import frame


def decode(*pieces: bytes) -> list[tuple[str | None, str]]:
    dec = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += dec.feed(piece)
    events += dec.close()
    return [(e.event, e.data) for e in events]


CASES = [
    # (id, raw stream, expected (event, data) pairs)
    ("lf", b"event: a\ndata: x\n\n", [("a", "x")]),
    ("crlf", b"event: a\r\ndata: x\r\n\r\n", [("a", "x")]),
    ("cr", b"event: a\rdata: x\r\r", [("a", "x")]),
    ("mixed-endings", b"event: a\r\ndata: 1\rdata: 2\n\r\ndata: 3\r\r", [("a", "1\n2"), (None, "3")]),
    ("data-no-space", b"data:x\n\n", [(None, "x")]),
    ("event-no-space", b"event:a\ndata:x\n\n", [("a", "x")]),
    ("only-one-space-stripped", b"data:  x \n\n", [(None, " x ")]),
    ("multi-line-data", b"data: a\ndata: b\ndata:\ndata: c\n\n", [(None, "a\nb\n\nc")]),
    ("data-field-without-colon", b"data\n\n", [(None, "")]),
    ("empty-data", b"data:\n\n", [(None, "")]),
    ("comment-ignored", b": keep-alive\n\n", []),
    ("comment-between-data", b"data: a\n: note\ndata: b\n\n", [(None, "a\nb")]),
    ("id-retry-ignored", b"id: 7\nretry: 1000\ndata: x\n\n", [(None, "x")]),
    ("unknown-field-ignored", b"foo: bar\ndata: x\n\n", [(None, "x")]),
    ("field-names-case-sensitive", b"Data: x\nEVENT: a\n\n", []),
    ("dataless-event-not-dispatched", b"event: response.in_progress\n\n", []),
    ("dataless-event-does-not-leak", b"event: a\n\ndata: y\n\n", [(None, "y")]),
    ("event-name-reset-after-dispatch", b"event: a\ndata: 1\n\ndata: 2\n\n", [("a", "1"), (None, "2")]),
    ("last-event-name-wins", b"event: a\nevent: b\ndata: 1\n\n", [("b", "1")]),
    ("several-blank-lines", b"\n\n\ndata: 1\n\n\n\ndata: 2\n\n", [(None, "1"), (None, "2")]),
    ("done-sentinel-is-plain-data", b"data: [DONE]\n\n", [(None, "[DONE]")]),
    ("colon-in-value-kept", b'data: {"a":"b:c"}\n\n', [(None, '{"a":"b:c"}')]),
    # Only CR and LF end lines: other Unicode line breaks are data (str.splitlines would split on them).
    ("vt-fs-not-line-breaks", b"data: a\x0bb\x1cc\x85d\n\n", [(None, "a\x0bb\x1cc\ufffdd")]),
    ("u2028-not-a-line-break", "data: a\u2028b\u0085c\n\n".encode(), [(None, "a\u2028b\u0085c")]),
    ("close-flushes-unterminated-line", b"data: x", [(None, "x")]),
    ("close-flushes-without-blank-line", b"event: a\ndata: x\n", [("a", "x")]),
    ("close-flushes-after-cr", b"data: x\r", [(None, "x")]),
    ("close-drops-dataless-tail", b"data: 1\n\nevent: a", [(None, "1")]),
]


@pytest.mark.parametrize("raw, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decode_whole(raw: bytes, expected: list[tuple[str | None, str]]) -> None:
    assert decode(raw) == expected


@pytest.mark.parametrize("raw, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decode_split_at_every_byte(raw: bytes, expected: list[tuple[str | None, str]]) -> None:
    for i in range(len(raw) + 1):
        assert decode(raw[:i], raw[i:]) == expected, i


@pytest.mark.parametrize("raw, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decode_one_byte_at_a_time(raw: bytes, expected: list[tuple[str | None, str]]) -> None:
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == expected


@pytest.mark.parametrize(
    "raw",
    [b"data: x\n\n", b"data: x\r\n\r\n", b"event: e\ndata: x\n\n"],
    ids=["lf", "crlf", "with-event"],
)
def test_feed_dispatches_without_waiting_for_close(raw: bytes) -> None:
    dec = SSEDecoder()
    assert [e.data for e in dec.feed(raw)] == ["x"]
    assert dec.close() == []


def test_feed_holds_an_incomplete_event() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"data: x\n") == []
    assert dec.feed(b"\n") == [SSEEvent(None, "x")]


def test_feed_empty_chunk_is_a_no_op() -> None:
    dec = SSEDecoder()
    assert dec.feed(b"") == []
    assert dec.feed(b"data: x\n\n") == [SSEEvent(None, "x")]


UNICODE = [
    ("emoji", "👋🏽 and 🦀"),
    ("cjk", "日本語のテキスト"),
    ("combining", "e\u0301 Ω\u0308 a\u0323\u0302"),
    ("mixed", 'wörld 👋 日本 e\u0301 "quoted"'),
]


@pytest.mark.parametrize("text", [u[1] for u in UNICODE], ids=[u[0] for u in UNICODE])
def test_multibyte_utf8_split_at_every_byte(text: str) -> None:
    raw = f"event: t\ndata: {text}\n\ndata: {text}\r\n\r\n".encode()
    for i in range(len(raw) + 1):
        assert decode(raw[:i], raw[i:]) == [("t", text), (None, text)], i


@pytest.mark.parametrize("text", [u[1] for u in UNICODE], ids=[u[0] for u in UNICODE])
def test_multibyte_utf8_one_byte_at_a_time(text: str) -> None:
    raw = f"data: {text}\n\n".encode()
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == [(None, text)]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: a\xffb\n\n") == [(None, "a\ufffdb")]


@pytest.mark.parametrize(
    "obj, expected",
    [
        ({"a": 1}, b'data: {"a":1}\n\n'),
        ({"t": "é👋"}, 'data: {"t":"é👋"}\n\n'.encode()),
        ({"s": "line\nbreak"}, b'data: {"s":"line\\nbreak"}\n\n'),
    ],
    ids=["compact", "utf8-not-escaped", "newline-escaped"],
)
def test_encode_data(obj: dict[str, object], expected: bytes) -> None:
    assert encode_data(obj) == expected


def test_encode_data_round_trips_through_decoder() -> None:
    obj = {"x": "multi\nline 日本", "n": [1, 2]}
    assert [json.loads(d) for _, d in decode(encode_data(obj))] == [obj]


def test_done_sentinel() -> None:
    assert DONE == b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    "data, event, expected",
    [
        (b"{}", None, b"data: {}\n\n"),
        (b"{}", "response.created", b"event: response.created\ndata: {}\n\n"),
        (b"{}", "", b"data: {}\n\n"),
        (b"{}", "a\ndata: forged", b"data: {}\n\n"),
        (b"{}", "a\rb", b"data: {}\n\n"),
    ],
    ids=["data-only", "named", "empty-name", "name-with-lf", "name-with-cr"],
)
def test_frame(data: bytes, event: str | None, expected: bytes) -> None:
    """A name holding a line break would split the frame (or forge a second field): it is left out."""
    assert frame(data, event) == expected


def test_encode_data_with_an_event_name() -> None:
    assert encode_data({"type": "error"}, "error") == b'event: error\ndata: {"type":"error"}\n\n'
