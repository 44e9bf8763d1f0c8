"""Bytes in, bytes out: the upstream SSE body through the `ChatStream` state machine.

`ChatSSETranslator` is the mitmproxy stream callable (called once per network read, then once with b""). It
never returns b"": on an HTTP/1 chunked response an empty data event is written as the terminating chunk and
would silently end the client's body. `translate_body` runs the same code over a whole buffered body.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from .chat_stream import ChatStream
from .chat_stream import completion_from_chunks
from .sse import DONE
from .sse import SSEDecoder

__all__ = ["ChatSSETranslator", "translate_body", "render_completion"]


class ChatSSETranslator:
    """Stream callable: upstream Codex SSE → chat.completion.chunk SSE, one output write per upstream read."""

    def __init__(self, machine: ChatStream, *, keep_raw: bool = True) -> None:
        self.machine = machine
        self.decoder = SSEDecoder()
        # One growing buffer, not a list of reads: thousands of small bytes objects would fragment the heap and
        # keep the process's memory up long after the stream is gone.
        self.raw: bytearray | None = bytearray() if keep_raw else None
        self.chunks_out = 0
        self.bad_events = 0
        self.done_sent = False
        self.first_token_at: float | None = None  # wall time of the first chunk after the role chunk

    def __call__(self, data: bytes) -> list[bytes]:
        if not data:
            out = self._encode(self._run(self.decoder.close()) + self.machine.finish())
            if self.machine.error is None and not self.done_sent:
                self.done_sent = True
                out += DONE
            return [out] if out else []
        if self.raw is not None:
            self.raw += data
        events = self.decoder.feed(data)
        if not events:
            return []
        chunks = self._run(events)
        if len(chunks) != 1:
            out = self._encode(chunks)
            return [out] if out else []
        # The hot path, inlined: one delta per read becomes one chunk.
        self.chunks_out += 1
        if self.first_token_at is None and self.chunks_out > 1:
            self.first_token_at = time.time()
        return [b"data: " + orjson.dumps(chunks[0]) + b"\n\n"]

    def take_raw_body(self) -> bytes:
        """The upstream bytes so far, handed over once: the buffer is dropped so the flow holds the only copy
        (a finished flow lingers until the cycle collector runs; a second copy of a long answer would too)."""
        raw, self.raw = self.raw, None
        return bytes(raw) if raw is not None else b""

    def _run(self, events: list[Any]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        feed = self.machine.feed
        machine = self.machine
        for ev in events:
            if ev.event in machine.skipped_events:
                continue  # nothing for the client; not worth parsing (the finished item repeats the text)
            data = ev.data
            if not data or data[0] != "{":
                data = data.strip()  # rare: whitespace before the JSON, which Codex and the SDK accept
                if not data.startswith("{"):
                    self.bad_events += data != "[DONE]"
                    continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                self.bad_events += 1  # Codex skips unparseable events too
                continue
            if isinstance(obj, dict):
                if "type" not in obj and ev.event:
                    obj["type"] = ev.event  # the backend repeats the type in the JSON; minimal servers may not
                chunks += feed(obj)
        return chunks

    def _encode(self, chunks: list[dict[str, Any]]) -> bytes:
        self.chunks_out += len(chunks)
        if self.first_token_at is None and self.chunks_out > 1:
            self.first_token_at = time.time()
        dumps = orjson.dumps
        return b"".join([b"data: " + dumps(c) + b"\n\n" for c in chunks])


def run_body(machine: ChatStream, body: bytes) -> list[dict[str, Any]]:
    """All chunks the state machine produces for a complete upstream body (end of stream included)."""
    translator = ChatSSETranslator(machine, keep_raw=False)
    chunks = translator._run(translator.decoder.feed(body) + translator.decoder.close())
    return chunks + machine.finish()


def translate_body(machine: ChatStream, body: bytes) -> bytes:
    """A whole upstream body → the client's SSE body (used for replayed responses of streaming clients)."""
    translator = ChatSSETranslator(machine, keep_raw=False)
    return b"".join(translator(body) + translator(b""))


def render_completion(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    return completion_from_chunks([c for c in chunks if "error" not in c])
