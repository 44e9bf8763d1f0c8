"""Bytes in, bytes out: the upstream SSE body through the `MessageStream` state machine.

`MessagesSSETranslator` is the mitmproxy stream callable (called once per network read, then once with b""). It
never returns b"" (an empty write would end a chunked HTTP/1 body). `run_body` and `translate_body` run the same
code over a whole buffered body (non-streamed clients, replayed responses).

Keep-alive: Anthropic clients expect `ping` events while the model works. mitmproxy calls a stream callable only
when upstream bytes arrive, so a ping goes out when a read brings nothing for the client (reasoning whose text is
withheld, `response.in_progress`, rate-limit events) and the last write is `ping_interval` seconds old. An
upstream that sends nothing at all is cut off after `codex_idle_timeout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from ..answer import Outcome
from ..codex_events import SKIPPED_EVENTS
from ..sse import RawBodyKeeper
from ..sse import SSEDecoder
from ..sse import SSEEvent
from ..sse import encode_data
from ..sse import frame
from .stream import Event
from .stream import MessageStream

__all__ = ["MessagesSSETranslator", "run_body", "translate_body", "encode_events", "PING"]

PING = frame(b'{"type":"ping"}', "ping")
PING_INTERVAL = 5.0


class MessagesSSETranslator(RawBodyKeeper):
    """Stream callable: upstream Codex SSE → Anthropic Messages SSE, at most one write per upstream read."""

    def __init__(
        self,
        machine: MessageStream,
        *,
        keep_raw: bool = True,
        clock: Callable[[], float] = time.monotonic,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        self.machine = machine
        self.decoder = SSEDecoder()
        self.raw = bytearray() if keep_raw else None
        self.clock = clock
        self.ping_interval = ping_interval
        self.pings = 0
        self.bad_events = 0
        self.first_token_at: float | None = None  # wall time of the first content delta
        self._last_write = clock()

    def __call__(self, data: bytes) -> list[bytes]:
        if not data:
            out = encode_events(self._run(self.decoder.close()) + self.machine.finish())
            return [out] if out else []
        if self.raw is not None:
            self.raw += data
        events = self._run(self.decoder.feed(data))
        if self.first_token_at is None and any(name == "content_block_delta" for name, _ in events):
            self.first_token_at = time.time()
        out = encode_events(events)
        now = self.clock()
        if out:
            self._last_write = now
        elif now - self._last_write >= self.ping_interval and not self.machine.done:
            out = PING
            self.pings += 1
            self._last_write = now
        return [out] if out else []

    def outcome(self) -> Outcome:
        """How the streamed answer ended, for the flow record."""
        machine = self.machine
        error = machine.error["message"] if machine.error else None
        return Outcome(machine.stop_reason, machine.summary_usage, list(machine.tool_uses), self.first_token_at, error)

    def _run(self, events: list[SSEEvent]) -> list[Event]:
        out: list[Event] = []
        feed = self.machine.feed
        for ev in events:
            if ev.event in SKIPPED_EVENTS:
                continue  # nothing for the client; not worth parsing (the finished item repeats the text)
            data = ev.data.strip()
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
                    obj["type"] = ev.event
                out += feed(obj)
        return out


def encode_events(events: list[Event]) -> bytes:
    """Anthropic's framing: every event named (the SDK dispatches on the name), one JSON data line."""
    return b"".join([encode_data(data, name) for name, data in events])


def run_body(machine: MessageStream, body: bytes) -> list[Event]:
    """All events the state machine produces for a complete upstream body (its end included)."""
    translator = MessagesSSETranslator(machine, keep_raw=False)
    return translator._run(translator.decoder.feed(body) + translator.decoder.close()) + machine.finish()


def translate_body(machine: MessageStream, body: bytes) -> bytes:
    """A whole upstream body → the client's SSE body (replayed responses of streaming clients)."""
    return encode_events(run_body(machine, body))
