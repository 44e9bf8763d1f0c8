"""Incremental Server-Sent Events decoding and encoding.

The decoder follows the WHATWG event-stream rules that the OpenAI SDK and Codex implement: lines end in CR,
LF or CRLF; `data:` lines are joined with "\\n"; comments (`:`), `id:` and `retry:` are ignored; an event with
no `data:` line is never dispatched. Bytes are decoded to text one complete line at a time, so a multi-byte
UTF-8 character split across network reads is safe.
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import orjson

__all__ = ["SSEEvent", "SSEDecoder", "RawBodyKeeper", "encode_data", "DONE"]

DONE = b"data: [DONE]\n\n"


class SSEEvent(NamedTuple):
    # A tuple, not a frozen dataclass: one is built per upstream event, and a tuple is built several times faster.
    event: str | None
    data: str


class SSEDecoder:
    """Turns arbitrarily chunked bytes into complete SSE events.

    Each `feed` call costs time linear in the new bytes only: the buffer keeps just the unfinished tail.
    """

    __slots__ = ("_tail", "_pending", "_data", "_event", "_has_data")

    def __init__(self) -> None:
        self._tail = b""
        self._pending: list[bytes] = []  # reads with no line break yet: joined once, not re-copied per read
        self._data: list[str] = []
        self._event: str | None = None
        self._has_data = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if chunk[-2:] == b"\n\n" and not (self._tail or self._pending or self._has_data or self._event is not None):
            # The common case: reads holding whole `[event: X]\ndata: {...}` blocks, split without line-by-line work.
            events = _whole_blocks(chunk)
            if events is not None:
                return events
        if b"\n" not in chunk and b"\r" not in chunk:
            self._pending.append(chunk)
            return []
        if self._pending:
            self._pending.append(chunk)
            chunk = b"".join(self._pending)
            self._pending = []
        buf = self._tail + chunk if self._tail else chunk
        lines = buf.splitlines(keepends=True)
        last = lines[-1]
        # An unterminated last line, or a lone CR that may be the first half of CRLF, waits for more bytes.
        if not last.endswith(b"\n"):
            self._tail = lines.pop()
        else:
            self._tail = b""
        out: list[SSEEvent] = []
        for raw in lines:
            self._line(raw.rstrip(b"\r\n"), out)
        return out

    def close(self) -> list[SSEEvent]:
        """Flushes what is left at the end of the stream (a last event with no blank line after it)."""
        out: list[SSEEvent] = []
        if self._pending:
            self._tail += b"".join(self._pending)
            self._pending = []
        if self._tail:
            tail, self._tail = self._tail, b""
            self._line(tail.rstrip(b"\r\n"), out)
        self._line(b"", out)
        return out

    def _line(self, line: bytes, out: list[SSEEvent]) -> None:
        if not line:
            if self._has_data:
                out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._data = []
            self._event = None
            self._has_data = False
            return
        if line[0] == 0x3A:  # ":" comment
            return
        colon = line.find(b":")
        if colon == -1:
            field, value = line, b""
        else:
            field = line[:colon]
            value = line[colon + 1 :]
            if value[:1] == b" ":
                value = value[1:]
        if field == b"data":
            self._data.append(value.decode("utf-8", "replace"))
            self._has_data = True
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
        # id:, retry: and unknown fields carry nothing a gateway needs.


_new_event = tuple.__new__  # SSEEvent(...) runs a Python-level __new__; this builds the same tuple in C


def _whole_blocks(buf: bytes) -> list[SSEEvent] | None:
    """Events of a buffer made only of `[event: X\n]data: Y\n\n` blocks; None for any other framing (nothing is
    consumed then, and the general line parser takes over)."""
    if 13 in buf:  # (an int: several times faster than b"\r")
        return None  # CR line ends: the line parser handles them
    out: list[SSEEvent] = []
    pos, size = 0, len(buf)
    while pos < size:
        # One block: an optional `event: X` line, then exactly one `data: Y` line, then a blank line.
        event = None
        if buf.startswith(b"event: ", pos):
            nl = buf.find(b"\n", pos + 7)
            event = buf[pos + 7 : nl].decode("utf-8", "replace")
            pos = nl + 1
        if not buf.startswith(b"data: ", pos):
            return None
        nl = buf.find(b"\n", pos + 6)
        if buf[nl + 1 : nl + 2] != b"\n":
            return None  # a multi-line data field (or another field): the line parser joins it
        out.append(_new_event(SSEEvent, (event, buf[pos + 6 : nl].decode("utf-8", "replace"))))
        pos = nl + 2
    return out


class RawBodyKeeper:
    """For stream callables: the upstream bytes as read, kept for the saved flow in one growing buffer (not a list
    of reads: thousands of small bytes objects would fragment the heap long after the stream is gone)."""

    raw: bytearray | None

    def take_raw_body(self) -> bytes:
        """The upstream bytes so far, handed over once: the buffer is dropped so the flow holds the only copy
        (a finished flow lingers until the cycle collector runs; a second copy of a long answer would too)."""
        raw, self.raw = self.raw, None
        return bytes(raw) if raw is not None else b""


def encode_data(obj: Any) -> bytes:
    """One `data:` event with compact JSON and no `event:` line (older OpenAI SDKs break on event names)."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"
