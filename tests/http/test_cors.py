"""cors: an origin is allowed only when listed (or "*" is), and what the CORS answers carry."""

from __future__ import annotations

import pytest
from codex_gateway.http.cors import allowed_origin
from codex_gateway.http.cors import cors_headers
from codex_gateway.http.cors import preflight_headers

APP = "https://app.example"

ALLOWED = [
    # (Origin header, configured origins, allowed origin)
    (APP, frozenset({APP}), APP),
    (APP, frozenset({"https://other.example", APP}), APP),
    (APP, frozenset({"*"}), APP),  # "*" echoes the origin, never "*"
    ("null", frozenset({"*"}), "null"),
    (APP, frozenset(), None),  # CORS off
    (None, frozenset({"*"}), None),
    ("", frozenset({"*"}), None),
    ("https://evil.example", frozenset({APP}), None),
    ("http://app.example", frozenset({APP}), None),  # scheme matters
    ("https://app.example:8443", frozenset({APP}), None),  # port matters
    ("https://app.example.evil.example", frozenset({APP}), None),  # no prefix match
    ("https://APP.example", frozenset({APP}), None),  # exact string match
]


@pytest.mark.parametrize("origin, allowed, expected", ALLOWED, ids=[f"{o!r} in {sorted(a)}" for o, a, _ in ALLOWED])
def test_allowed_origin(origin: str | None, allowed: frozenset[str], expected: str | None) -> None:
    assert allowed_origin(origin, allowed) == expected


def test_cors_headers() -> None:
    assert cors_headers(APP) == {
        "access-control-allow-origin": APP,
        "vary": "Origin",
        "access-control-expose-headers": "x-request-id, retry-after, openai-model",
    }


@pytest.mark.parametrize(
    "requested, allowed",
    [
        ("authorization, content-type, x-stainless-os", "authorization, content-type, x-stainless-os"),
        ("X-Custom", "X-Custom"),
        (None, "authorization, content-type"),
        ("", "authorization, content-type"),
    ],
)
def test_preflight_allows_the_requested_headers(requested: str | None, allowed: str) -> None:
    assert preflight_headers(APP, requested)["access-control-allow-headers"] == allowed


def test_preflight_headers() -> None:
    assert preflight_headers(APP, "authorization") == {
        **cors_headers(APP),
        "access-control-allow-methods": "GET, POST, OPTIONS",
        "access-control-allow-headers": "authorization",
        "access-control-max-age": "600",
    }
