"""Incremental Server-Sent Events decoding and encoding, and what the two stream callables share.

The decoder follows the WHATWG event-stream rules that the OpenAI SDK and Codex implement: lines end in CR,
LF or CRLF; `data:` lines are joined with "\\n"; comments (`:`), `id:` and `retry:` are ignored; an event with
no `data:` line is never dispatched. Bytes are decoded to text one complete line at a time, so a multi-byte
UTF-8 character split across network reads is safe. Every event the gateway writes is framed by `frame` (one
optional `event:` line, one `data:` line, a blank line).
"""

from __future__ import annotations

import logging
from typing import Any
from typing import NamedTuple

import orjson

__all__ = ["SSEEvent", "SSEDecoder", "GuardedStream", "RawBodyKeeper", "frame", "encode_data", "DONE"]

logger = logging.getLogger(__name__)


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


class GuardedStream(RawBodyKeeper):
    """Base of the stream callables (mitmproxy `response.stream`): called once per network read, then once with b"".

    A read is decoded into events (`_take`), the end of the upstream body closes the answer (`_end`), and what
    both made is written as one bytes object (`_written`), never b"" (an empty write would end a chunked HTTP/1
    body). An exception escaping a stream callable stops mitmproxy's handling of the flow while the client's
    connection stays open: the client waits, headers received and no more bytes, until its own timeout. So every
    call runs inside a guard: the first exception is logged once and turned into the protocol's error event
    (`_broken`), written at once; every later call writes nothing.
    """

    protocol = "?"  # which client protocol, for the log line
    broken: bool = False  # an exception ended the client's stream
    decoder: SSEDecoder

    def __call__(self, data: bytes) -> list[bytes]:
        if self.broken:
            return []
        try:
            if data:
                if self.raw is not None:
                    self.raw += data
                self._take(self.decoder.feed(data))
            else:
                self._take(self.decoder.close())
                self._end()
            out = self._written()
        except Exception as e:
            self.broken = True
            logger.exception("codex-gateway: the %s stream callable failed; the client's stream ends", self.protocol)
            out = self._broken(e)
        return [out] if out else []

    def take_body(self, body: bytes) -> Exception | None:
        """A whole buffered body's events taken (`_take`, not `_end`) under the same promise as a stream call:
        the exception that stopped them (logged once), else None."""
        try:
            self._take(self.decoder.feed(body) + self.decoder.close())
        except Exception as e:
            logger.exception("codex-gateway: translating a buffered %s answer failed", self.protocol)
            return e
        return None

    def _take(self, events: list[SSEEvent]) -> None:
        """Takes the events of one read; what they make for the client waits for `_written`."""
        raise NotImplementedError

    def _end(self) -> None:
        """The upstream body ended: closes the answer (an error when it had no terminal event)."""
        raise NotImplementedError

    def _written(self) -> bytes:
        """The client's bytes made since the last call, handed over."""
        raise NotImplementedError

    def _broken(self, exc: Exception) -> bytes:
        """What was made before `exc`, then the protocol's error event (none when the answer was already over)."""
        raise NotImplementedError


def translation_failure(exc: BaseException) -> dict[str, Any]:
    """The error a client gets when the gateway itself failed on an upstream answer (an OpenAI error object)."""
    return {
        "message": f"The gateway failed to translate the upstream answer ({type(exc).__name__}).",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def frame(data: bytes, event: str | None = None) -> bytes:
    """One SSE event: an `event:` line when `event` is given, the `data:` line, the blank line. `data` is one line
    (compact JSON); an event name holding a line break would split the frame, so it is left out."""
    if event and "\n" not in event and "\r" not in event:
        return b"event: " + event.encode("utf-8", "replace") + b"\ndata: " + data + b"\n\n"
    return b"data: " + data + b"\n\n"


def encode_data(obj: Any, event: str | None = None) -> bytes:
    """One event with compact JSON. Chat streams name no event (older OpenAI SDKs break on event names)."""
    return frame(orjson.dumps(obj), event)


DONE = frame(b"[DONE]")
