"""What a person sees of a gateway flow: the client's identity, the one-line summary, marks, sanitized metadata.

`flow.metadata["codex_gateway"]` (key `META`) is the structured record of a flow; it is saved with `-w`, so it
must never hold a credential. `annotate` turns it into `flow.comment` and `flow.marked` for mitmweb.
"""

from __future__ import annotations

import copy
from typing import Any

from mitmproxy import http

from .headers import REDACTED

__all__ = ["META", "client_name", "trace_id", "sanitized_request", "summary_line", "annotate"]

META = "codex_gateway"
OPENCLAW_MARKER = "<!-- openclaw:"
_SECRET_HEADERS = {"authorization", "cookie", "x-api-key", "chatgpt-account-id", "proxy-authorization"}


def client_name(headers: http.Headers, body: Any) -> str:
    """OpenClaw sends only the OpenAI JS SDK's User-Agent; its system prompt gives it away."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for msg in messages if isinstance(messages, list) else ():
        if (
            isinstance(msg, dict)
            and msg.get("role") == "system"
            and str(msg.get("content", "")).startswith(OPENCLAW_MARKER)
        ):
            return "OpenClaw"
    ua = headers.get("user-agent", "")
    lower = ua.lower()
    if lower.startswith("codex") or "codex_cli" in lower:
        return "Codex CLI"
    if lower.startswith("openai/js"):
        return "OpenAI JS SDK"
    if lower.startswith("openai/python"):
        return "OpenAI Python SDK"
    if lower.startswith("curl/"):
        return "curl"
    if "langchain" in lower:
        return "LangChain"
    return ua.split(" ", 1)[0][:40] or "unknown client"


def trace_id(headers: http.Headers) -> str | None:
    """W3C traceparent `00-<trace id>-<span>-<flags>`: OpenClaw shares the trace id across one agent run."""
    parts = headers.get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


def sanitized_request(method: str, path: str, headers: http.Headers, body: bytes) -> dict[str, Any]:
    """The client's original request, minus credentials (the gateway key may be in it)."""
    return {
        "method": method,
        "path": path,
        "headers": [(k, REDACTED if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items(multi=True)],
        "body": body.decode("utf-8", "replace"),
    }


def summary_line(meta: dict[str, Any]) -> str:
    parts = [meta.get("client", "?")]
    if meta.get("trace"):
        parts.append(f"run {meta['trace'][:8]}")
    parts.append(str(meta.get("model", "?")))
    parts.append("stream" if meta.get("stream") else "non-stream")
    parts.append(f"{meta.get('messages', 0)} msgs/{meta.get('tools', 0)} tools")
    if meta.get("finish_reason"):
        parts.append(f"finish={meta['finish_reason']}")
    usage = meta.get("usage") or {}
    if usage:
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
        parts.append(
            f"tokens {usage.get('prompt_tokens', 0)}→{usage.get('completion_tokens', 0)}"
            f" (cached {cached}, reasoning {reasoning})"
        )
    started = meta.get("started")
    if started and meta.get("first_token_at"):
        parts.append(f"ttft {1000 * (meta['first_token_at'] - started):.0f}ms")
    if started and meta.get("finished_at"):
        parts.append(f"total {1000 * (meta['finished_at'] - started):.0f}ms")
    if meta.get("account"):
        parts.append(f"acct {meta['account']}")
    if meta.get("dropped"):
        parts.append("dropped " + ",".join(meta["dropped"]))
    if meta.get("error"):
        parts.append(f"FAILED: {meta['error']}")
    return " | ".join(parts)


def annotate(flow: http.HTTPFlow) -> None:
    meta = flow.metadata.get(META)
    if not meta:
        return
    flow.comment = summary_line(meta)
    if meta.get("error"):
        flow.marked = ":warning:"


def copy_meta(meta: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(meta)
