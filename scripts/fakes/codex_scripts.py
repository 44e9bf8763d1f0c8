"""What the fake backend answers (scripts) and what it saw (records).

Kept apart from the server so tests can build scripts without caring how
they are written to the socket; ``codex_backend`` re-exports everything.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import KW_ONLY
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

import orjson


@dataclass
class RecordedRequest:
    """One request as the fake saw it, plus what it answered.

    ``error`` is the rejection message (equal to the body's ``detail`` or
    ``error.message``; auth rejections add a ``[fake: reason]`` suffix).
    ``disconnected`` is set if the client went away before a stream ended
    (detected while writing or while holding); ``finished`` once the fake is
    done answering. Both let tests wait without sleeping.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any | None
    status: int = 0
    error: str | None = None
    disconnected: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    finished: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)

    @property
    def route(self) -> str:
        """The path without its query string."""
        return self.path.split("?", 1)[0]


@dataclass
class SSEScript:
    """A scripted ``text/event-stream`` answer; see the module docstring of ``codex_events``.

    ``chunks``: ``"per_event"`` (one HTTP chunk per event), ``"whole"`` (one
    chunk), or N (the byte stream cut into N-byte chunks, splitting lines and
    UTF-8 sequences). ``hold_after=k`` waits for ``release`` after k events
    (max 30 s, then continues); ``cut_after=k`` closes the socket after k
    events without the terminating chunk. Pending bytes are flushed before a
    hold or cut. ``headers`` override the realistic defaults; ``None`` values
    remove a default header.
    """

    events: Sequence[dict[str, Any] | str]
    _: KW_ONLY
    status: int = 200
    headers: dict[str, str | None] | None = None
    chunks: Literal["per_event", "whole"] | int = "per_event"
    hold_after: int | None = None
    release: threading.Event | None = None
    cut_after: int | None = None
    delay_s: float = 0.0
    crlf: bool = False

    def __post_init__(self) -> None:
        if self.hold_after is not None and self.release is None:
            raise ValueError("hold_after needs a release event")
        if isinstance(self.chunks, int) and self.chunks <= 0:
            raise ValueError("chunks must be a positive byte count")

    def encoded(self) -> list[bytes]:
        """Each event as the bytes written on the wire (raw strings verbatim)."""
        nl = b"\r\n" if self.crlf else b"\n"
        out = []
        for e in self.events:
            if isinstance(e, str):
                out.append(e.encode())
                continue
            head = b"event: " + str(e["type"]).encode() + nl if "type" in e else b""
            out.append(head + b"data: " + orjson.dumps(e) + nl + nl)
        return out


@dataclass
class ErrorScript:
    """A non-streamed answer (e.g. a 429 ``usage_limit_reached``) sent instead of SSE."""

    status: int
    body: bytes | str | dict[str, Any]
    headers: dict[str, str | None] | None = None

    def payload(self) -> tuple[bytes, str]:
        """Body bytes and a content type (JSON if it parses as JSON)."""
        if isinstance(self.body, dict):
            return orjson.dumps(self.body), "application/json"
        raw = self.body.encode() if isinstance(self.body, str) else self.body
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw, "text/plain; charset=utf-8"
        return raw, "application/json"


Script = SSEScript | ErrorScript


def default_headers() -> dict[str, str]:
    """Realistic response headers: rate limits the gateway may surface, junk it must drop."""
    now = int(time.time())
    return {
        "x-codex-plan-type": "plus",
        "x-codex-active-limit": "codex",
        "x-codex-primary-used-percent": "12",
        "x-codex-primary-window-minutes": "300",
        "x-codex-primary-reset-after-seconds": "13873",
        "x-codex-primary-reset-at": str(now + 13873),
        "x-codex-secondary-used-percent": "3",
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-secondary-reset-after-seconds": "316705",
        "x-codex-secondary-reset-at": str(now + 316705),
        "x-codex-credits-has-credits": "False",
        "x-codex-credits-balance": "0",
        "x-codex-credits-unlimited": "False",
        "x-request-id": str(uuid.uuid4()),
        "set-cookie": f"__cf_bm={uuid.uuid4().hex}; path=/; domain=.chatgpt.com; HttpOnly; Secure",
        "cf-ray": f"{uuid.uuid4().hex[:16]}-SJC",
        "cf-cache-status": "DYNAMIC",
        "alt-svc": 'h3=":443"; ma=86400',
        "access-control-allow-origin": "*",
        "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
    }


def merge_headers(*layers: dict[str, str | None] | dict[str, str] | None) -> dict[str, str]:
    out: dict[str, str | None] = {}
    for layer in layers:
        out.update({k.lower(): v for k, v in (layer or {}).items()})
    return {k: v for k, v in out.items() if v is not None}
