"""Header hygiene: what the client may see of the upstream answer, and what a saved flow may keep."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from mitmproxy import http

if TYPE_CHECKING:
    from .auth import Credentials
    from .settings import Settings

__all__ = ["client_response_headers", "codex_headers", "redact_request", "upstream_headers", "REDACTED"]

REDACTED = "<redacted>"
_PASS = frozenset({"x-request-id", "retry-after", "openai-model"})
_SECRET_NAMES = frozenset({b"authorization", b"chatgpt-account-id", b"cookie", b"x-api-key", b"proxy-authorization"})
_REDACTED = REDACTED.encode()


def client_response_headers(upstream: http.Headers | None, content_type: str, *, chunked: bool = False) -> http.Headers:
    """An allow-list: never upstream cookies, alt-svc, cf-* or CORS headers, and no stale framing headers."""
    fields: list[tuple[bytes, bytes]] = [(b"content-type", content_type.encode())]
    if upstream is not None:
        for name, value in upstream.fields:
            lower = name.lower()
            if lower.decode("latin-1") in _PASS or lower.startswith(b"x-codex-"):
                fields.append((name, value))
    if chunked:
        # Towards HTTP/1 clients: a cut stream then shows as an incomplete chunked body, not a clean EOF.
        fields.append((b"transfer-encoding", b"chunked"))
    return http.Headers(fields)


def redact_request(headers: http.Headers) -> None:
    """Credentials are only needed until the request is sent; flows are shown and saved afterwards."""
    fields = headers.fields  # raw (name, value) pairs: one pass, no per-name case-insensitive lookups
    if any(name.lower() in _SECRET_NAMES for name, _ in fields):
        headers.fields = tuple((n, _REDACTED if n.lower() in _SECRET_NAMES else v) for n, v in fields)


def codex_headers(headers: http.Headers) -> dict[str, str]:
    """The `x-codex-*` headers of an upstream answer (quota snapshots), read straight from the raw fields."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in headers.fields
        if name[:8].lower() == b"x-codex-"
    }


def upstream_headers(
    settings: Settings, creds: Credentials | None, session_headers: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The whole header set of an upstream request: nothing of the client's is forwarded except the Codex
    session headers the endpoint chose (`session_id`, and for Responses clients their turn headers)."""
    headers = [("Host", settings.upstream.netloc)]
    if creds is not None:  # absent only while replaying offline
        headers += [("Authorization", f"Bearer {creds.access_token}"), ("ChatGPT-Account-ID", creds.account_id)]
    headers += [("originator", settings.originator), ("User-Agent", settings.user_agent)]
    headers += [(k, v) for k, v in session_headers]
    headers += [
        ("Accept", "text/event-stream"),
        ("Content-Type", "application/json"),
        ("Accept-Encoding", "identity"),
    ]
    return headers
