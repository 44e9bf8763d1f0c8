"""Anthropic error envelopes: `{"type": "error", "error": {"type", "message"}}` with Anthropic's statuses.

Every error the gateway answers on an Anthropic route (a bad request, a wrong gateway key, an unknown path, an
upstream failure) goes through `anthropic_error_answer`, so the `anthropic` SDKs raise their own exception classes
(`BadRequestError`, `AuthenticationError`, `RateLimitError`, `OverloadedError`, …).
"""

from __future__ import annotations

from typing import Any

import orjson

from ..answer import ClientAnswer
from ..errors import GatewayError

__all__ = ["anthropic_error_answer", "error_payload", "error_type", "is_anthropic_request"]

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    return _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_payload(etype: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": etype, "message": message}}


def anthropic_error_answer(err: GatewayError) -> ClientAnswer:
    """A `GatewayError` (made for OpenAI clients) in Anthropic's envelope; its status and headers (`retry-after`,
    `x-should-retry`, `allow`) stay as they are."""
    body = orjson.dumps(error_payload(error_type(err.status), err.message))
    return ClientAnswer(err.status, "application/json", body, dict(err.headers), error=err.message)


def is_anthropic_request(path: str, headers: Any) -> bool:
    """Whether an answer (an error above all) goes to an Anthropic client: a Messages path, or any request that
    carries `anthropic-version` (what every Anthropic SDK and Claude Code send)."""
    bare = path.split("?", 1)[0].rstrip("/")
    return bare.startswith(("/v1/messages", "/messages")) or "anthropic-version" in headers
