"""One finished gateway flow as a request-log row: what the usage database, the metrics and the status page keep.

`row_from_flow` is the only place that reads a flow's gateway facts for them (its `FlowRecord`); everything
downstream works on `RequestRow`, a plain value with no mitmproxy in it. A row holds the
account's label (an email or a shortened id), never a token or an account id.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mitmproxy import http

from ..flow_record import FlowRecord
from ..flow_record import record_of

__all__ = ["DB_NAME", "RequestRow", "row_from_flow", "row_from_record", "tokens_of"]

DB_NAME = "usage.sqlite3"  # the request log, in gateway_home
_MAX_TEXT = 400  # summaries and free-form fields are clipped: a row is a record, not a capture


@dataclass(frozen=True, slots=True)
class RequestRow:
    finished_at: float  # unix seconds
    endpoint: str
    client: str
    run: str | None = None  # the traceparent trace id of an agent run
    model: str | None = None  # as the client asked for it
    model_served: str | None = None  # the model that answered: as upstream names it, else the one sent upstream
    stream: bool = False
    account: str | None = None  # label only
    status: int | None = None  # what the client got (None: no answer, e.g. the client went away)
    upstream_status: int | None = None  # a non-2xx upstream answer
    failure: str | None = None  # failure kind (summary.failure_of), None when it went well
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    ttft_ms: float | None = None
    total_ms: float | None = None
    tool_calls: int = 0
    dropped: str = ""  # comma-separated parameter names dropped before sending upstream
    retries: int = 0
    replayed: bool = False  # answered by server replay, not by the backend
    summary: str = ""  # the flow's one-line summary (its comment)


def tokens_of(usage: Any) -> tuple[int, int, int, int]:
    """(input, cached, output, reasoning) of a chat-shaped usage object (what every gateway flow records)."""
    if not isinstance(usage, Mapping):
        return 0, 0, 0, 0
    prompt_details = usage.get("prompt_tokens_details")
    completion_details = usage.get("completion_tokens_details")
    cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, Mapping) else 0
    reasoning = completion_details.get("reasoning_tokens") if isinstance(completion_details, Mapping) else 0
    return _int(usage.get("prompt_tokens")), _int(cached), _int(usage.get("completion_tokens")), _int(reasoning)


def row_from_record(
    record: FlowRecord, *, replayed: bool = False, summary: str = "", now: float | None = None
) -> RequestRow:
    """The row of a flow's gateway record (pure; `row_from_flow` is the mitmproxy side)."""
    started = record.started or 0.0
    finished = record.finished_at or (time.time() if now is None else now)
    tokens = tokens_of(record.usage)
    model = _text(record.model)  # the model that serves (a client's alias already resolved)
    return RequestRow(
        finished_at=finished,
        endpoint=_text(record.endpoint_name) or "unknown",
        client=_text(record.client) or "unknown client",
        run=_text(record.trace),
        model=_text(record.requested_model) or model,
        model_served=_text(record.model_served or record.codex_model) or model,
        stream=bool(record.stream),
        account=_text(record.account),
        status=_status(record.client_status),
        upstream_status=_status(record.upstream_status),
        failure=_text(record.failure),
        input_tokens=tokens[0],
        cached_tokens=tokens[1],
        output_tokens=tokens[2],
        reasoning_tokens=tokens[3],
        ttft_ms=_ms(record.first_token_at - started) if started and record.first_token_at else None,
        total_ms=_ms(finished - started) if started else None,
        tool_calls=len(record.tool_calls or ()),
        dropped=_text(",".join(record.dropped or ())) or "",
        retries=len(record.retries or ()),
        replayed=replayed,
        summary=summary[:_MAX_TEXT],
    )


def row_from_flow(flow: http.HTTPFlow) -> RequestRow | None:
    """The row of a finished gateway flow; None for flows the gateway did not handle. The one place that reads a
    flow's gateway facts for the request log, the metrics and the status page."""
    record = record_of(flow)
    if record is None:
        return None
    return row_from_record(record, replayed=flow.is_replay == "response", summary=flow.comment or "")


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)[:_MAX_TEXT]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _status(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599 else None


def _ms(seconds: float) -> float:
    return round(max(0.0, seconds) * 1000.0, 3)
