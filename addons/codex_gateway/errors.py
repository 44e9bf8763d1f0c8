"""OpenAI error envelopes, and the mapping of upstream Codex errors onto them.

Every error a client sees is `{"error": {"message", "type", "param", "code"}}` with a status the OpenAI SDK maps
to the right exception class. The Codex backend answers some errors FastAPI-style (`{"detail": "..."}`) and some
with an OpenAI envelope; both are rewrapped here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson

__all__ = [
    "GatewayError",
    "LOGIN_HINT",
    "STATUS_TYPES",
    "bad_request",
    "failure_status",
    "human_duration",
    "parse_json_object",
    "upstream_error",
]

# What every "no usable ChatGPT login" error ends with (missing, expired, revoked or rejected: the fix is the same).
LOGIN_HINT = "Log in with `codex login` (or `.venv/bin/python scripts/accounts.py login`) and try again."

STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


@dataclass
class GatewayError(Exception):
    """An error answered to the client as an OpenAI envelope."""

    status: int
    message: str
    type: str | None = None
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if self.type is None:
            self.type = STATUS_TYPES.get(self.status, "server_error" if self.status >= 500 else "api_error")

    def payload(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def body(self) -> bytes:
        return orjson.dumps(self.payload())


def failure_status(code: Any, etype: Any = None) -> tuple[int, str]:
    """HTTP status and error type for an answer that failed inside the stream: what a non-streamed client gets
    instead of a 200. `code` and `etype` are the `error.code`/`error.type` of the upstream `response.failed` (or
    `error`) event; the codes below are the ones the Codex CLI itself tells apart."""
    if code in ("rate_limit_exceeded", "usage_limit_reached") or etype == "rate_limit_error":
        return 429, "rate_limit_error"
    if code == "insufficient_quota":
        return 429, "insufficient_quota"
    if code in ("context_length_exceeded", "invalid_prompt", "cyber_policy", "invalid_request_error") or (
        etype == "invalid_request_error"
    ):
        return 400, "invalid_request_error"
    if code in ("server_is_overloaded", "slow_down"):
        return 503, "server_error"
    return 502, "server_error"


def bad_request(message: str, param: str | None = None, code: str | None = "invalid_value") -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A client's JSON request body, which must be an object; anything else is a 400."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise bad_request(f"We could not parse the JSON body of your request: {e}", code="invalid_json") from e
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_type")
    return data


def upstream_error(status: int, body: bytes, headers: Mapping[str, str], now: float | None = None) -> GatewayError:
    """Translates a non-2xx upstream answer (received before any SSE) into the client's error."""
    parsed = _json(body)
    err = parsed.get("error") if isinstance(parsed, dict) else None
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
    message: str | None = None
    code: str | None = None
    etype: str | None = None
    param: str | None = None
    if isinstance(err, dict):
        message = _s(err.get("message"))
        code = _s(err.get("code"))
        etype = _s(err.get("type"))
        param = _s(err.get("param"))
    elif isinstance(err, str):
        message = err
    if isinstance(detail, str):
        message = detail
    elif detail is not None:
        message = orjson.dumps(detail).decode()

    out_headers: dict[str, str] = {}
    if status == 429:
        code = code or etype or "rate_limit_exceeded"
        if etype == "usage_limit_reached":
            code = "usage_limit_reached"
        if not message:
            message = (
                "The ChatGPT usage limit has been reached."
                if code == "usage_limit_reached"
                else "The Codex backend is rate limiting requests; slow down and retry."
            )
        retry = _retry_after(err if isinstance(err, dict) else {}, headers, now)
        if retry is not None:
            out_headers["retry-after"] = str(retry)
            if retry > 120:
                # The OpenAI SDK would otherwise sleep through its retries; a usage limit lasts hours.
                out_headers["x-should-retry"] = "false"
        if code == "usage_limit_reached":
            plan = _s(err.get("plan_type")) if isinstance(err, dict) else None
            when = f" Try again in {human_duration(retry)}." if retry is not None else ""
            message = f"{message.rstrip('.')} for this ChatGPT{' ' + plan if plan else ''} account.{when}"
        return GatewayError(429, message, type="rate_limit_error", param=param, code=code, headers=out_headers)
    if status == 401:
        base = message or "The ChatGPT login was rejected by the Codex backend."
        return GatewayError(401, f"{base.rstrip('.')}. {LOGIN_HINT}", param=param, code=code or "invalid_api_key")
    if 400 <= status < 500:
        text = message or _snippet(body) or f"The Codex backend answered HTTP {status}."
        if status == 403 and not isinstance(parsed, dict):
            text = f"The Codex backend refused the request (HTTP 403): {_snippet(body) or 'no details'}"
        return GatewayError(status, text, type=etype if status == 400 and etype else None, param=param, code=code)
    text = message or _snippet(body) or "no details"
    if not message:
        text = f"The Codex backend failed (HTTP {status}): {text}"
    if "retry-after" in headers:
        out_headers["retry-after"] = headers["retry-after"]
    return GatewayError(status if status >= 500 else 502, text, type="server_error", code=code, headers=out_headers)


def _retry_after(err: Mapping[str, Any], headers: Mapping[str, str], now: float | None) -> int | None:
    seconds = err.get("resets_in_seconds")
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        return max(1, math.ceil(seconds))
    resets_at = err.get("resets_at")
    if isinstance(resets_at, int | float) and not isinstance(resets_at, bool):
        return max(1, math.ceil(resets_at - (time.time() if now is None else now)))
    header = headers.get("retry-after")
    if header and header.strip().isdigit():
        return int(header.strip())
    return None


def human_duration(seconds: float) -> str:
    """A wait or an age as people say it: `45 s`, `12 min`, `3.5 h`, `3.7 d` (whole seconds, rounded up)."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{round(seconds / 60)} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"  # a weekly window's reset


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _snippet(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace").strip()
    if "<html" in text[:200].lower():
        # Cloudflare-style pages: the title says enough, the rest is markup.
        lower = text.lower()
        start, end = lower.find("<title>"), lower.find("</title>")
        text = text[start + 7 : end].strip() if 0 <= start < end else "an HTML error page"
    return " ".join(text.split())[:limit]
