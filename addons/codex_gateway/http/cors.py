"""CORS for browser clients: off unless `gateway_cors_origins` lists the origin (or "*")."""

from __future__ import annotations

__all__ = ["allowed_origin", "cors_headers", "preflight_headers"]


def allowed_origin(origin: str | None, allowed: frozenset[str]) -> str | None:
    if not origin or not allowed:
        return None
    return origin if origin in allowed or "*" in allowed else None


def cors_headers(origin: str) -> dict[str, str]:
    return {
        "access-control-allow-origin": origin,
        "vary": "Origin",
        "access-control-expose-headers": "x-request-id, retry-after, openai-model",
    }


def preflight_headers(origin: str, requested_headers: str | None) -> dict[str, str]:
    headers = cors_headers(origin)
    headers["access-control-allow-methods"] = "GET, POST, OPTIONS"
    headers["access-control-allow-headers"] = requested_headers or "authorization, content-type"
    headers["access-control-max-age"] = "600"
    return headers
