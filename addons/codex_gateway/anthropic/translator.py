"""Bytes in, bytes out: the upstream SSE body through the `MessageStream` state machine.

`MessagesSSETranslator` is the mitmproxy stream callable (called once per network read, then once with b""; see
`GuardedStream` for what every call promises: should the gateway itself fail, the client's stream ends at once
with an `error` event). `run_body` and `translate_body` run the same code over a whole buffered body (non-streamed
clients, replayed responses).

Keep-alive: Anthropic clients expect `ping` events while the model works. mitmproxy calls a stream callable only
when upstream bytes arrive, so a ping goes out when a read brings nothing for the client (reasoning whose text is
withheld, `response.in_progress`, rate-limit events) and the last write is `ping_interval` seconds old. An
upstream that sends nothing at all is cut off after `codex_idle_timeout`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..answer import Outcome
from ..codex_events import parse_events
from ..sse import GuardedStream
from ..sse import SSEDecoder
from ..sse import SSEEvent
from ..sse import encode_data
from ..sse import frame
from ..sse import translation_failure
from .stream import Event
from .stream import MessageStream
from .stream import error_event

__all__ = ["MessagesSSETranslator", "run_body", "translate_body", "encode_events", "PING"]

PING = frame(b'{"type":"ping"}', "ping")
PING_INTERVAL = 5.0


class MessagesSSETranslator(GuardedStream):
    """Stream callable: upstream Codex SSE → Anthropic Messages SSE, at most one write per upstream read."""

    protocol = "anthropic"

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
        self._made: list[Event] = []  # events of the current read, until they are written
        self._ended = False  # the end of the upstream body (or a fault) closed the answer

    def outcome(self) -> Outcome:
        """How the streamed answer ended, for the flow record (see `answer.StreamCallable`)."""
        return self.machine.outcome(self.first_token_at)

    def _take(self, events: list[SSEEvent]) -> None:
        """Feeds the events to the state machine; the events it returns go to `_made`."""
        objects, bad = parse_events(events)
        self.bad_events += bad
        made = self._made
        feed = self.machine.feed
        for obj in objects:
            made += feed(obj)
        if self.first_token_at is None and any(name == "content_block_delta" for name, _ in made):
            self.first_token_at = time.time()

    def _end(self) -> None:
        self._made += self.machine.finish()
        self._ended = True

    def _written(self) -> bytes:
        """The events made since the last call; a ping when there are none and the last write is old."""
        out = encode_events(self._made)
        self._made = []
        now = self.clock()
        if out:
            self._last_write = now
        elif not self._ended and not self.machine.done and now - self._last_write >= self.ping_interval:
            out = PING
            self.pings += 1
            self._last_write = now
        return out

    def _broken(self, exc: Exception) -> bytes:
        """The events made before the fault, then an `error` event (and never a `message_stop`), unless the answer
        had already ended."""
        self._made += self.machine.fail(translation_failure(exc))
        self._ended = True
        try:
            return self._written()
        except Exception:  # the fault was an event that cannot be encoded: the error event alone
            self.machine.error = {"type": "api_error", "message": translation_failure(exc)["message"], "code": None}
            return encode_events([error_event(self.machine.error)])


def encode_events(events: list[Event]) -> bytes:
    """Anthropic's framing: every event named (the SDK dispatches on the name), one JSON data line."""
    return b"".join([encode_data(data, name) for name, data in events])


def run_body(machine: MessageStream, body: bytes) -> list[Event]:
    """All events the state machine produces for a complete upstream body (its end included)."""
    translator = MessagesSSETranslator(machine, keep_raw=False)
    fault = translator.take_body(body)  # as in the stream callable: a fault fails the answer, nothing escapes
    return translator._made + (machine.fail(translation_failure(fault)) if fault else machine.finish())


def translate_body(machine: MessageStream, body: bytes) -> bytes:
    """A whole upstream body → the client's SSE body (replayed responses of streaming clients)."""
    return encode_events(run_body(machine, body))
