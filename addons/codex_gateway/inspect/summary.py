"""What a person sees of a gateway flow: the client's identity, the one-line summary, marks, the sanitized request.

The flow's record (`flow_record.FlowRecord`, in `flow.metadata["codex_gateway"]`; the module docstring there
lists its keys) is saved with `-w`, so it must never hold a credential. `annotate` turns it into `flow.comment`
and `flow.marked` (shown by mitmweb and mitmproxy's console), classifies failures (the record's `failure` and
`failure_reason`), and strips what must not be shown or saved.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Mapping
from typing import Any

from mitmproxy import http

from ..flow_record import FlowRecord
from ..flow_record import OriginalRequest
from ..flow_record import record_of
from ..http.headers import REDACTED
from ..http.headers import redact_request

__all__ = [
    "FAILED_MARK",
    "client_name",
    "trace_id",
    "sanitized_request",
    "failure_of",
    "summary_line",
    "annotate",
    "remember_upstream_body",
    "upstream_body",
    "chat_record_of",
]

FAILED_MARK = ":warning:"
OPENCLAW_MARKER = "<!-- openclaw:"
_SECRET_HEADERS = {"authorization", "cookie", "x-api-key", "chatgpt-account-id", "proxy-authorization"}
_MAX_REASON = 160
# The raw upstream body of buffered flows, kept in memory only: `AnswerWriter` replaces the body with the client's
# answer after mitmproxy's Save addon ran, and the "Codex SSE" view still wants to show what upstream sent.
_UPSTREAM_BODIES: weakref.WeakKeyDictionary[http.HTTPFlow, bytes] = weakref.WeakKeyDictionary()


# -- who is calling ----------------------------------------------------------------------------------------


def client_name(headers: Mapping[str, str], body: Any) -> str:
    """OpenClaw sends only the OpenAI JS SDK's User-Agent; its system prompt gives it away.

    `headers`: the request's `http.Headers`, or a dict of them by lower-case name (see `headers.header_map`)."""
    if _is_openclaw(body):
        return "OpenClaw"
    ua = headers.get("user-agent", "")
    lower = ua.lower()
    originator = headers.get("originator", "").lower()
    if lower.startswith("codex") or "codex_cli" in lower or originator.startswith("codex_cli"):
        return "Codex CLI"
    if lower.startswith("claude-cli/"):
        return "Claude Code"
    if lower.startswith("anthropic/"):
        return f"Anthropic {ua[len('anthropic/') :].split(' ', 1)[0][:20]} SDK"  # Anthropic/Python 2.17.0
    if lower.startswith("openai/js"):
        return "OpenAI JS SDK"
    if lower.startswith("openai/python"):
        return "OpenAI Python SDK"
    if lower.startswith("asyncopenai/python"):
        return "OpenAI Python SDK"
    if lower.startswith("curl/"):
        return "curl"
    if "langchain" in lower:
        return "LangChain"
    return ua.split(" ", 1)[0][:40] or "unknown client"


def _is_openclaw(body: Any) -> bool:
    messages = body.get("messages") if isinstance(body, dict) else None
    for msg in messages if isinstance(messages, list) else ():
        if not isinstance(msg, dict) or msg.get("role") not in ("system", "developer"):
            continue
        content = msg.get("content")
        if isinstance(content, list):  # content parts: the marker opens the first text part
            content = next((p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"), "")
        if isinstance(content, str) and content.lstrip().startswith(OPENCLAW_MARKER):
            return True
    return False


def trace_id(headers: Mapping[str, str]) -> str | None:
    """W3C traceparent `<version>-<trace id>-<parent id>-<flags>`: OpenClaw shares the trace id across one agent
    run. Lower-cased (receivers compare case-insensitively, a run must not split in two); a malformed header or the
    all-zero id, which the W3C spec calls invalid, names no run."""
    parts = headers.get("traceparent", "").strip().lower().split("-")
    if len(parts) < 4 or [len(p) for p in parts[:4]] != [2, 32, 16, 2] or not _HEX.fullmatch("".join(parts[:4])):
        return None
    version, trace, parent = parts[:3]
    # version ff is invalid; 00 has exactly four fields (later versions may add more after them)
    if version == "ff" or (version == "00" and len(parts) != 4) or trace == "0" * 32 or parent == "0" * 16:
        return None
    return trace


_HEX = re.compile("[0-9a-f]+")


def sanitized_request(method: str, path: str, headers: http.Headers, body: bytes) -> OriginalRequest:
    """The client's original request, minus credentials (the gateway key may be in it)."""
    pairs: list[tuple[str, str]] = []
    for name, value in headers.fields:  # the raw fields, decoded as `Headers.items(multi=True)` decodes them
        key = name.decode("utf-8", "surrogateescape")
        pairs.append((key, REDACTED if key.lower() in _SECRET_HEADERS else value.decode("utf-8", "surrogateescape")))
    return OriginalRequest(method, path, pairs, body.decode("utf-8", "replace"))


# -- what happened -----------------------------------------------------------------------------------------


def status_after_error(streamed_status: int | None, error_msg: str) -> int | None:
    """The status a client got from a flow that ended in an error (mitmproxy's `error` hook): the streamed answer's,
    whose headers went out before the body broke off; nothing when the client went away or the flow was killed;
    otherwise mitmproxy's own 502 page, which it sends for an upstream that failed before the answer began (no
    hook can replace that page with the protocol's envelope)."""
    if streamed_status is not None:
        return streamed_status
    kind, _ = _connection_failure(error_msg)
    return None if kind in ("client_disconnect", "killed") else 502


def failure_of(record: FlowRecord, error_msg: str | None = None) -> tuple[str, str] | None:
    """(kind, reason) of a failed flow, or None. `error_msg` is mitmproxy's `flow.error.msg`, if any.

    Kinds: `client_disconnect`, `upstream_cut` (the upstream connection broke mid-body), `upstream_unreachable`,
    `killed`, `proxy_error`, `upstream_status` (a non-2xx upstream answer), `upstream_incomplete` (the body
    ended without `response.completed`), `error_event` (`response.failed` / `error` in the stream), `local` (the
    gateway answered 4xx/5xx itself).
    """
    if error_msg is not None:
        return _connection_failure(error_msg)
    error = record.error
    status = record.client_status
    failed_status = status is not None and status >= 400
    if not error and not failed_status:
        return None  # also when a first upstream error (401, usage limit) was recovered from by a retry
    if record.upstream_status and failed_status:
        return "upstream_status", f"upstream {record.upstream_status}: {_clip(error or '')}".rstrip(": ")
    if error and "ended before response.completed" in error:
        return "upstream_incomplete", "upstream stream ended before response.completed"
    if error and record.translated and not error.startswith("The gateway failed"):
        # translated from an upstream answer: an in-band error event
        return "error_event", f"error event: {_clip(str(error))}"
    return "local", f"gateway answered {status}: {_clip(error or '')}".rstrip(": ")


def _connection_failure(error_msg: str) -> tuple[str, str]:
    """(kind, reason) of mitmproxy's error message for a flow that ended in an error."""
    lower = error_msg.lower()
    if "client disconnected" in lower:
        return "client_disconnect", "client disconnected"
    if "incomplete" in lower or "peer closed" in lower or "server disconnected" in lower:
        return "upstream_cut", f"upstream cut the answer off ({_clip(error_msg)})"
    if ("connect" in lower and ("failed" in lower or "refused" in lower)) or "unreachable" in lower:
        return "upstream_unreachable", f"upstream unreachable ({_clip(error_msg)})"
    if "killed" in lower:
        return "killed", "connection killed"
    return "proxy_error", _clip(error_msg)


def summary_line(record: FlowRecord, *, replayed: bool = False) -> str:
    """One line a person can scan: failure first, then who, what, how it ended, how much, how long."""
    parts: list[str] = []
    if record.failure_reason:
        parts.append(f"FAILED {record.failure_reason}")
    who = record.client or "?"
    if record.trace:
        who += f" run {record.trace[:8]}"
    if replayed:
        who += " (replayed)"
    parts.append(who)
    endpoint = record.endpoint_name
    if endpoint not in (None, "chat.completions"):
        parts.append(str(endpoint))
    if record.model:
        parts.append(f"{record.model}{_asked_as(record)} {'stream' if record.stream else 'non-stream'}")
    if record.messages is not None:
        parts.append(f"{record.messages} msgs, {record.tools or 0} tools")
    if record.finish_reason:
        calls = record.tool_calls or []
        parts.append(f"finish {record.finish_reason}" + (f" ({', '.join(calls)})" if calls else ""))
    usage = record.usage
    if usage is not None:
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
        parts.append(
            f"in {usage.get('prompt_tokens', 0)} (cached {cached}) out {usage.get('completion_tokens', 0)}"
            f" (reasoning {reasoning})"
        )
    started = record.started
    if started and record.first_token_at:
        parts.append(f"ttft {_duration(record.first_token_at - started)}")
    if started and record.finished_at:
        parts.append(f"total {_duration(record.finished_at - started)}")
    if record.account:
        parts.append(f"acct {record.account}")
    if record.retries:
        parts.append(f"retried {len(record.retries)}x ({'; '.join(record.retries)})")
    if record.dropped:
        parts.append("dropped " + ",".join(record.dropped))
    return " | ".join(parts)


def _asked_as(record: FlowRecord) -> str:
    """` effort high (asked gpt-5.4-high)` when the client's model name stood for more than a catalog id."""
    effort = f" effort {record.name_effort}" if record.name_effort else ""
    asked = f" (asked {record.requested_model})" if record.requested_model else ""
    return effort + asked


def annotate(flow: http.HTTPFlow) -> None:
    """Comment, mark and failure record of a gateway flow; called when the flow ends (response, error, local).

    It also makes the flow safe to show and save: request credentials are redacted (a locally answered request
    still holds the client's headers, gateway key included) and upstream `Set-Cookie` headers are dropped.
    """
    record = record_of(flow)
    if record is None:
        return
    if record.client is None:  # answered before the request was parsed (e.g. a wrong gateway key)
        record.client = client_name(flow.request.headers, None)
    redact_request(flow.request.headers)
    if flow.response is not None:
        _drop_set_cookie(flow.response.headers)
    failure = failure_of(record, flow.error.msg if flow.error else None)
    if failure is None:
        record.failure = record.failure_reason = None
    else:
        record.failure, record.failure_reason = failure
        flow.marked = FAILED_MARK
    flow.comment = summary_line(record, replayed=flow.is_replay == "response")


def chat_record_of(flow: Any) -> FlowRecord | None:
    """The record of a chat.completions flow (translated or answered locally after parsing), else None."""
    record = record_of(flow) if isinstance(flow, http.HTTPFlow) else None
    return record if record is not None and record.is_chat else None


def remember_upstream_body(flow: http.HTTPFlow) -> None:
    """Keeps a buffered flow's raw upstream body in memory before the client's answer replaces it in the flow, for
    the views (only worth it where a view keeps flows: mitmweb)."""
    response = flow.response
    if response is not None and response.raw_content is not None and response.stream is False:
        _UPSTREAM_BODIES[flow] = response.raw_content


def upstream_body(flow: http.HTTPFlow) -> bytes | None:
    """The raw upstream body of a buffered flow still in memory, if its response now holds the client's answer."""
    return _UPSTREAM_BODIES.get(flow)


def _drop_set_cookie(headers: http.Headers) -> None:
    """`headers.pop("set-cookie", None)` in one pass over the raw fields (usually there is none to drop)."""
    fields = headers.fields
    for name, _ in fields:  # a plain loop: cheaper than any() over a generator
        if name.lower() == b"set-cookie":
            headers.fields = tuple([field for field in fields if field[0].lower() != b"set-cookie"])
            return


def _clip(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= _MAX_REASON else one_line[: _MAX_REASON - 1] + "…"


def _duration(seconds: float) -> str:
    return f"{1000 * seconds:.0f}ms" if seconds < 1 else f"{seconds:.2f}s"
