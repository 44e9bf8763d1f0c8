"""Bytes in, bytes out: the upstream SSE body through the `ChatStream` state machine.

`ChatSSETranslator` is the mitmproxy stream callable (called once per network read, then once with b""). It
never returns b"": on an HTTP/1 chunked response an empty data event is written as the terminating chunk and
would silently end the client's body. `translate_body` runs the same code over a whole buffered body.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..answer import Outcome
from ..sse import DONE
from ..sse import RawBodyKeeper
from ..sse import SSEDecoder
from .stream import TEXT_DELTA
from .stream import ChatStream
from .stream import completion_from_chunks

__all__ = ["ChatSSETranslator", "translate_body", "render_completion"]

_PROBE = "\ue000codex-gateway\ue001"  # a text no chunk holds otherwise: where a content chunk's text goes


class ChatSSETranslator(RawBodyKeeper):
    """Stream callable: upstream Codex SSE → chat.completion.chunk SSE, one output write per upstream read."""

    def __init__(self, machine: ChatStream, *, keep_raw: bool = True) -> None:
        self.machine = machine
        self.decoder = SSEDecoder()
        self.raw = bytearray() if keep_raw else None
        self.chunks_out = 0
        self.bad_events = 0
        self.done_sent = False
        self.first_token_at: float | None = None  # wall time of the first chunk after the role chunk
        self._frame: tuple[bytes, bytes] | None = None  # the content chunk around its text, once cut
        self._frame_cut = False

    def __call__(self, data: bytes) -> list[bytes]:
        if not data:
            out = self._encode(self._run(self.decoder.close()) + self.machine.finish())
            if self.machine.error is None and not self.done_sent:
                self.done_sent = True
                out += DONE
            return self._written(out)
        if self.raw is not None:
            self.raw += data
        events = self.decoder.feed(data)
        if not events:
            return []
        if len(events) == 1 and events[0].event == TEXT_DELTA and self.machine.in_text:
            written = self._text_delta(events[0].data)
            if written is not None:
                return written
        return self._written(self._encode(self._run(events)))

    def outcome(self) -> Outcome:
        """How the answer ended, for the flow record (see `answer.StreamCallable`)."""
        machine = self.machine
        error = machine.error["message"] if machine.error else None
        return Outcome(machine.finish_reason, machine.usage, machine.tool_call_names, self.first_token_at, error)

    def _text_delta(self, data: str) -> list[bytes] | None:
        """The hot path: a read holding one text delta. The state machine takes the event as `feed` would give it
        to its text handler; the chunk is written into a frame cut from the machine's own content chunk, without
        building the chunk. None: not a plain text delta after all, the general path takes the read."""
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if type(event) is not dict or event.get("type") != TEXT_DELTA:
            return None
        text = self.machine.text_delta(event)
        if not text:
            return []
        frame = self._frame if self._frame_cut else self._content_frame()
        self.chunks_out += 1
        if self.first_token_at is None and self.chunks_out > 1:
            self.first_token_at = time.time()
        if frame is None:  # no frame to cut (see `_content_frame`): encode the chunk itself
            return [b"data: " + orjson.dumps(self.machine.content_chunk(text)) + b"\n\n"]
        return [frame[0] + orjson.dumps(text) + frame[1]]

    def _content_frame(self) -> tuple[bytes, bytes] | None:
        """`(head, tail)` such that `head + orjson.dumps(text) + tail` is the SSE event of the machine's content chunk
        for any `text`. Fixed once the answer has started (its id, time and model no longer change)."""
        self._frame_cut = True
        probe = orjson.dumps(_PROBE)
        encoded = b"data: " + orjson.dumps(self.machine.content_chunk(_PROBE)) + b"\n\n"
        if encoded.count(probe) == 1:  # else the probe also occurs elsewhere (in the model name?): no frame
            head, tail = encoded.split(probe)
            self._frame = (head, tail)
        return self._frame

    def _written(self, out: bytes) -> list[bytes]:
        return [out] if out else []

    def _run(self, events: list[Any]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        machine = self.machine
        feed = machine.feed
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
