"""A buffered upstream answer → the client's Anthropic answer (pure: non-streaming clients, upstream errors and
replayed responses, with the same state machine as the streaming path)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

__all__ = ["machine_for", "buffered_answer"]


def machine_for(meta: Mapping[str, Any]) -> MessageStream:
    """The state machine for a flow, configured from its (serializable) metadata."""
    return MessageStream(
        model=meta["model"],
        stop=tuple(meta.get("stop") or ()),
        thinking=meta.get("thinking", "off"),
        tool_names=dict(meta.get("tool_names") or {}),
    )


def buffered_answer(meta: Mapping[str, Any], status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    if not (200 <= status < 300):
        return anthropic_error_answer(upstream_error(status, body, headers))
    machine = machine_for(meta)
    events = run_body(machine, body)
    if meta.get("stream"):  # exactly what the stream callable would have sent, in one piece
        error = machine.error["message"] if machine.error else None
        return _with_outcome(ClientAnswer(200, "text/event-stream", encode_events(events), error=error), machine)
    if machine.error is not None:
        failed_status, _ = failure_type(machine.error.get("code"))
        failure = GatewayError(failed_status, machine.error["message"], code=machine.error.get("code"))
        return _with_outcome(anthropic_error_answer(failure), machine)
    return _with_outcome(ClientAnswer(200, "application/json", orjson.dumps(message_from_events(events))), machine)


def outcome(machine: MessageStream) -> dict[str, Any]:
    """What the flow summary records of an answer (the same keys for every protocol)."""
    return {"finish_reason": machine.stop_reason, "usage": machine.summary_usage, "tool_calls": list(machine.tool_uses)}


def _with_outcome(answer: ClientAnswer, machine: MessageStream) -> ClientAnswer:
    answer.finish_reason = machine.stop_reason
    answer.usage = machine.summary_usage
    answer.tool_calls = list(machine.tool_uses)
    return answer
