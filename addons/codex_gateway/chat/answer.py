"""A buffered upstream answer → the client's answer (pure: used for non-streaming clients, upstream errors and
replayed responses, with the same state machine as the streaming path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import orjson

from ..answer import ClientAnswer
from ..errors import GatewayError
from ..errors import failure_status
from ..errors import upstream_error
from .stream import ChatStream
from .translator import render_completion
from .translator import run_body
from .translator import translate_body

__all__ = ["ChatOptions", "machine_for", "buffered_answer"]


@dataclass(frozen=True, slots=True)
class ChatOptions:
    """What the client's answer depends on besides the upstream body: as the request asked (the flow record
    keeps them, so a saved flow is translated again exactly as it was)."""

    model: str
    stream: bool
    include_usage: bool = False
    stop: tuple[str, ...] = ()


def machine_for(options: ChatOptions, *, always_usage: bool = False) -> ChatStream:
    """The state machine for a chat request."""
    return ChatStream(model=options.model, include_usage=options.include_usage or always_usage, stop=options.stop)


def buffered_answer(options: ChatOptions, status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    if not (200 <= status < 300):
        return ClientAnswer.from_error(upstream_error(status, body, headers))
    stream = options.stream
    # A non-streamed answer always carries usage; it is folded from the same chunks a stream would get.
    machine = machine_for(options, always_usage=not stream)
    if stream:  # exactly what the stream callable would have sent, in one piece
        answer = ClientAnswer(200, "text/event-stream", translate_body(machine, body))
    else:
        chunks = run_body(machine, body)
        if (e := machine.error) is not None:
            status, etype = failure_status(e.get("code"), e.get("type"))
            failure = GatewayError(status, e["message"], type=etype, param=e.get("param"), code=e.get("code"))
            answer = ClientAnswer.from_error(failure)
        else:
            answer = ClientAnswer(200, "application/json", orjson.dumps(render_completion(chunks)))
    return answer.with_outcome(machine.outcome())
