"""The answer the gateway gives a client: status, headers, body, and what the flow summary records of it (pure).

- `ClientAnswer`: a whole answer (local, or translated from a buffered upstream body).
- `Outcome`: what the flow record keeps of any answer, whole or streamed.
- `StreamCallable`: what the addon needs of a stream callable (mitmproxy `response.stream`) it installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol
from typing import runtime_checkable

from .errors import GatewayError

__all__ = ["ClientAnswer", "Outcome", "StreamCallable"]


@dataclass(slots=True)
class Outcome:
    """How an answer ended, as the flow summary records it: chat-style finish reason, usage and tool call names."""

    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    tool_calls: list[str] = field(default_factory=list)
    first_token_at: float | None = None  # wall time of the first content sent (streamed answers)
    error: str | None = None  # the answer's own error message (an error event, an upstream error)
    model: str | None = None  # the model upstream says answered, when it says (for the request log)


@dataclass
class ClientAnswer:
    status: int
    content_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    tool_calls: list[str] = field(default_factory=list)
    error: str | None = None
    model: str | None = None  # the model upstream says answered (for the request log)

    @classmethod
    def from_error(cls, err: GatewayError) -> ClientAnswer:
        return cls(err.status, "application/json", err.body(), dict(err.headers), error=err.message)

    def outcome(self) -> Outcome:
        return Outcome(self.finish_reason, self.usage, self.tool_calls, None, self.error, self.model)

    def with_outcome(self, outcome: Outcome) -> ClientAnswer:
        """This answer, recording how the state machine's answer ended (`outcome()` of a chat or Messages machine);
        an error message the answer already has is kept."""
        self.finish_reason = outcome.finish_reason
        self.usage = outcome.usage
        self.tool_calls = list(outcome.tool_calls)
        self.model = outcome.model
        if self.error is None:
            self.error = outcome.error
        return self


@runtime_checkable
class StreamCallable(Protocol):
    """A gateway stream callable: mitmproxy calls it once per upstream read, then once with b"" at the end.

    `isinstance(x, StreamCallable)` tells the gateway's own callables from what else `response.stream` may hold
    (False, True for mitmproxy's `stream_large_bodies`, or another addon's function): only these have the two
    methods below."""

    def __call__(self, data: bytes) -> list[bytes]: ...

    def take_raw_body(self) -> bytes:
        """The upstream bytes as read, handed over once (for the saved flow)."""
        ...

    def outcome(self) -> Outcome:
        """How the streamed answer ended, for the flow record."""
        ...
