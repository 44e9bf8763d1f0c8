"""What the Codex backend's events carry that every client protocol reads (pure).

Token usage arrives in the Responses shape (`input_tokens`, `output_tokens`, their `*_details`); every answer the
gateway writes and every flow summary reports it in the Chat Completions shape.

An answer ends with one terminal event (`TERMINAL_STATUS`) or an `error` event. A failure (`response.failed`, an
`error` event, or a body that ends without either) becomes one OpenAI error object `{message, type, param, code}`
(`upstream_failure`, `stream_incomplete`), whichever protocol the client speaks.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

import orjson

from .errors import failure_status
from .sse import SSEEvent

__all__ = [
    "chat_usage",
    "parse_events",
    "unix_time",
    "SKIPPED_EVENTS",
    "TERMINAL_STATUS",
    "STREAM_INCOMPLETE",
    "incomplete_finish_reason",
    "incomplete_reason",
    "stream_incomplete",
    "upstream_failure",
]

# Events that carry nothing a client answer is built from (their content comes again in the finished item, which the
# state machines check against the deltas): a translator may drop them by their SSE name without parsing their JSON.
SKIPPED_EVENTS = frozenset(
    {
        "response.content_part.added",
        "response.content_part.done",
        "response.output_text.done",
        "response.refusal.done",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_part.done",
        "response.reasoning_summary_text.done",
        "response.reasoning_text.done",
        "codex.rate_limits",
    }
)
TERMINAL_STATUS = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}
STREAM_INCOMPLETE = "The upstream stream ended before response.completed; the answer is incomplete."
_EXACT = 2**53
_FAILED = "The upstream model failed to produce an answer."
# Why a response is incomplete → the chat finish_reason; any other reason reads as running out of tokens.
_INCOMPLETE_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}


def parse_events(
    events: Iterable[SSEEvent], skipped: frozenset[str] = SKIPPED_EVENTS
) -> tuple[list[dict[str, Any]], int]:
    """The JSON objects of upstream SSE events, in order, and how many events were junk (not a JSON object; an
    upstream `[DONE]` is not junk). Events named in `skipped` are dropped unparsed; an object without a `type`
    takes the SSE event's name (the backend repeats the type in the JSON; minimal servers may not)."""
    out: list[dict[str, Any]] = []
    bad = 0
    for ev in events:
        if ev.event in skipped:
            continue  # nothing for the client; not worth parsing (the finished item repeats the text)
        data = ev.data
        if not data or data[0] != "{":
            data = data.strip()  # rare: whitespace before the JSON, which Codex and the SDK accept
            if not data.startswith("{"):
                bad += data != "[DONE]"
                continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            bad += 1  # Codex skips unparseable events too
            continue
        if "type" not in obj and ev.event:
            obj["type"] = ev.event
        out.append(obj)
    return out, bad


def unix_time(value: Any) -> int | None:
    """A `created_at` as whole seconds; None for anything else. Only numbers every JSON reader takes exactly (below
    2**53): a larger one would not even be written again (orjson writes 64-bit integers at most)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < _EXACT:
        return int(value)
    return None


def incomplete_reason(response: Mapping[str, Any]) -> Any:
    """`incomplete_details.reason` of a response (the backend has also sent the bare reason as the details)."""
    details = response.get("incomplete_details")
    return details.get("reason") if isinstance(details, dict) else details


def incomplete_finish_reason(reason: Any) -> str:
    return _INCOMPLETE_FINISH.get(str(reason), "length")


def upstream_failure(event: Mapping[str, Any]) -> dict[str, Any]:
    """The failure a `response.failed` or `error` event reports. The error object is `response.error`, else the
    event's nested `error` (what the real API sends), else the event itself (the documented flat shape)."""
    response = event.get("response")
    err = response.get("error") if isinstance(response, dict) else None
    if not isinstance(err, dict):
        nested = event.get("error")
        err = nested if isinstance(nested, dict) else event
    code = _str(err.get("code")) or None
    param = err.get("param")
    return {
        "message": _str(err.get("message")) or _FAILED,
        "type": failure_status(code, _str(err.get("type")) or None)[1],
        "param": param if isinstance(param, str) else None,
        "code": code or "upstream_error",
    }


def stream_incomplete() -> dict[str, Any]:
    """The failure of an upstream body that ended without a terminal event."""
    return {"message": STREAM_INCOMPLETE, "type": "server_error", "param": None, "code": "stream_incomplete"}


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Responses usage → Chat usage, tolerating absent or null detail objects."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("input_tokens"))
    completion = _int(usage.get("output_tokens"))
    total = usage.get("total_tokens")
    in_details = usage.get("input_tokens_details")
    out_details = usage.get("output_tokens_details")
    in_details = in_details if isinstance(in_details, dict) else {}
    out_details = out_details if isinstance(out_details, dict) else {}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _int(total) if isinstance(total, int) else prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _int(in_details.get("cached_tokens"))},
        "completion_tokens_details": {"reasoning_tokens": _int(out_details.get("reasoning_tokens"))},
    }


def _int(value: Any) -> int:
    """A token count; 0 for anything else, and for numbers past 2**53 (see `unix_time`; their sum could not be
    written)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _EXACT else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
