"""A buffered upstream answer → the client's Anthropic answer (pure: non-streaming clients, upstream errors and
replayed responses, with the same state machine as the streaming path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

import orjson

from ..answer import ClientAnswer
from ..errors import GatewayError
from ..errors import upstream_error
from .errors import anthropic_error_answer
from .stream import MessageStream
from .stream import failure_type
from .stream import message_from_events
from .translator import encode_events
from .translator import run_body

__all__ = ["MessagesOptions", "machine_for", "buffered_answer"]


@dataclass(frozen=True)
class MessagesOptions:
    """How a Messages flow's answer is translated (from its flow record)."""

    model: str  # the client's name for it: every answer echoes it
    stream: bool = False
    stop: tuple[str, ...] = ()
    thinking: str = "off"
    tool_names: dict[str, str] = field(default_factory=dict)


def machine_for(options: MessagesOptions) -> MessageStream:
    return MessageStream(
        model=options.model, stop=options.stop, thinking=options.thinking, tool_names=dict(options.tool_names)
    )


def buffered_answer(options: MessagesOptions, status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    if not (200 <= status < 300):
        return anthropic_error_answer(upstream_error(status, body, headers))
    machine = machine_for(options)
    events = run_body(machine, body)
    if options.stream:  # exactly what the stream callable would have sent, in one piece
        answer = ClientAnswer(200, "text/event-stream", encode_events(events))
    elif machine.error is not None:
        failed_status, _ = failure_type(machine.error.get("code"))
        failure = GatewayError(failed_status, machine.error["message"], code=machine.error.get("code"))
        answer = anthropic_error_answer(failure)
    else:
        answer = ClientAnswer(200, "application/json", orjson.dumps(message_from_events(events)))
    return answer.with_outcome(machine.outcome())
