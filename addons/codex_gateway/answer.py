"""The answer the gateway gives a client: status, headers, body, and what the flow summary records of it (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from .errors import GatewayError

__all__ = ["ClientAnswer"]


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

    @classmethod
    def from_error(cls, err: GatewayError) -> ClientAnswer:
        return cls(err.status, "application/json", err.body(), dict(err.headers), error=err.message)
