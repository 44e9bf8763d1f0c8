"""Incremental Server-Sent Events decoding and encoding.

The decoder follows the WHATWG event-stream rules that the OpenAI SDK and Codex implement: lines end in CR,
LF or CRLF; `data:` lines are joined with "\\n"; comments (`:`), `id:` and `retry:` are ignored; an event with
no `data:` line is never dispatched. Bytes are decoded to text one complete line at a time, so a multi-byte
UTF-8 character split across network reads is safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["SSEEvent", "SSEDecoder", "encode_data", "DONE"]

DONE = b"data: [DONE]\n\n"


@dataclass(frozen=True, slots=True)
class SSEEvent:
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
        idle = not (self._tail or self._pending or self._has_data) and self._event is None
        if idle and chunk.endswith(b"\n\n") and b"\r" not in chunk:
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


def _whole_blocks(buf: bytes) -> list[SSEEvent] | None:
    """Events of a buffer made only of `[event: X\n]data: Y\n\n` blocks; None for any other framing (nothing is
    consumed then, and the general line parser takes over)."""
    out: list[SSEEvent] = []
    for block in buf[:-2].split(b"\n\n"):
        event = None
        if block.startswith(b"event: "):
            nl = block.find(b"\n")
            if nl == -1:
                return None
            event, block = block[7:nl].decode("utf-8", "replace"), block[nl + 1 :]
        if not block.startswith(b"data: ") or b"\n" in block:
            return None
        out.append(SSEEvent(event, block[6:].decode("utf-8", "replace")))
    return out


def encode_data(obj: Any) -> bytes:
    """One `data:` event with compact JSON and no `event:` line (older OpenAI SDKs break on event names)."""
    return b"data: " + orjson.dumps(obj) + b"\n\n"
