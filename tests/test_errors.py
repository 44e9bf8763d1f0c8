"""errors: OpenAI error envelopes and upstream_error (Codex HTTP errors before any SSE → client errors)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from codex_gateway.errors import GatewayError
from codex_gateway.errors import human_duration
from codex_gateway.errors import upstream_error

USAGE_LIMIT = {
    "error": {
        "type": "usage_limit_reached",
        "message": "The usage limit has been reached",
        "plan_type": "plus",
        "resets_at": 1777936568,
        "eligible_promo": None,
        "resets_in_seconds": 13872,
    }
}
RESETS_AT_ONLY = {
    "error": {"type": "usage_limit_reached", "message": "The usage limit has been reached", "resets_at": 1777936568}
}
CLOUDFLARE_403 = (
    b"<!DOCTYPE html><html lang=en-US><head><title>Just a moment...</title>"
    b"<style>body{margin:0}</style><script>window._cf=1</script></head>"
    b"<body><div class=main><h1>Checking your browser</h1></div></body></html>"
)


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# (id, status, body, headers, now) → (status, type, code, param)
CASES = [
    (
        "detail-400",
        400,
        j({"detail": "Instructions are required"}),
        {},
        None,
        (400, "invalid_request_error", None, None),
    ),
    (
        "envelope-400",
        400,
        j(
            {
                "error": {
                    "message": "Invalid image",
                    "type": "invalid_request_error",
                    "param": "input[1]",
                    "code": "invalid_value",
                }
            }
        ),
        {},
        None,
        (400, "invalid_request_error", "invalid_value", "input[1]"),
    ),
    (
        "detail-404",
        404,
        j({"detail": "Item with id 'rs_1' not found."}),
        {},
        None,
        (404, "not_found_error", None, None),
    ),
    ("usage-limit-429", 429, j(USAGE_LIMIT), {}, None, (429, "rate_limit_error", "usage_limit_reached", None)),
    (
        "rate-limit-429",
        429,
        j({"error": {"message": "Slow down", "type": "rate_limit_error", "code": "rate_limit_exceeded"}}),
        {"retry-after": "7"},
        None,
        (429, "rate_limit_error", "rate_limit_exceeded", None),
    ),
    ("bare-429", 429, b"", {}, None, (429, "rate_limit_error", "rate_limit_exceeded", None)),
    (
        "token-expired-401",
        401,
        j(
            {
                "error": {
                    "message": "Provided authentication token is expired. Please try signing in again.",
                    "code": "token_expired",
                }
            }
        ),
        {},
        None,
        (401, "authentication_error", "token_expired", None),
    ),
    (
        "token-invalidated-401",
        401,
        j(
            {
                "error": {
                    "message": "Your authentication token has been invalidated. Please try signing in again.",
                    "type": "invalid_request_error",
                    "code": "token_invalidated",
                    "param": None,
                },
                "status": 401,
            }
        ),
        {},
        None,
        (401, "authentication_error", "token_invalidated", None),
    ),
    ("empty-401", 401, b"", {}, None, (401, "authentication_error", "invalid_api_key", None)),
    ("cloudflare-403", 403, CLOUDFLARE_403, {}, None, (403, "permission_error", None, None)),
    ("detail-500", 500, j({"detail": "Internal error"}), {}, None, (500, "server_error", None, None)),
    (
        "overloaded-503",
        503,
        j({"error": {"message": "Overloaded", "code": "server_is_overloaded"}}),
        {},
        None,
        (503, "server_error", "server_is_overloaded", None),
    ),
    (
        "html-502",
        502,
        b"<html><head><title>502 Bad Gateway</title></head></html>",
        {},
        None,
        (502, "server_error", None, None),
    ),
]


@pytest.mark.parametrize("status, body, headers, now, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_status_type_code_param(
    status: int, body: bytes, headers: dict[str, str], now: float | None, expected: tuple[Any, ...]
) -> None:
    err = upstream_error(status, body, headers, now=now)
    assert (err.status, err.type, err.code, err.param) == expected


@pytest.mark.parametrize("status, body, headers, now", [c[1:5] for c in CASES], ids=[c[0] for c in CASES])
def test_payload_is_an_openai_envelope(status: int, body: bytes, headers: dict[str, str], now: float | None) -> None:
    err = upstream_error(status, body, headers, now=now)
    payload = json.loads(err.body())
    assert set(payload) == {"error"} and set(payload["error"]) == {"message", "type", "param", "code"}
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]


@pytest.mark.parametrize(
    "status, body, message",
    [
        (400, j({"detail": "Instructions are required"}), "Instructions are required"),
        (400, j({"detail": "Unsupported parameter: temperature"}), "Unsupported parameter: temperature"),
        (400, j({"error": {"message": "Invalid image"}}), "Invalid image"),
        (400, j({"detail": [{"loc": ["body", "x"], "msg": "bad"}]}), '[{"loc":["body","x"],"msg":"bad"}]'),
        (404, j({"detail": "Item with id 'rs_1' not found."}), "Item with id 'rs_1' not found."),
        (500, j({"detail": "Internal error"}), "Internal error"),
        (502, b"", "The Codex backend failed (HTTP 502): no details"),
    ],
    ids=["detail", "detail-unsupported", "envelope", "detail-not-a-string", "detail-404", "detail-500", "empty-502"],
)
def test_message(status: int, body: bytes, message: str) -> None:
    assert upstream_error(status, body, {}).message == message


# -- 429 usage limit (resets_at / resets_in_seconds) → retry-after, and no SDK retry beyond 120 s ---------------


@pytest.mark.parametrize(
    "body, headers, now, expected",
    [
        (USAGE_LIMIT, {}, None, {"retry-after": "13872", "x-should-retry": "false"}),
        (RESETS_AT_ONLY, {}, 1777936568 - 600, {"retry-after": "600", "x-should-retry": "false"}),
        (RESETS_AT_ONLY, {}, 1777936568 - 90, {"retry-after": "90"}),
        (RESETS_AT_ONLY, {}, 1777936568 - 120, {"retry-after": "120"}),
        (RESETS_AT_ONLY, {}, 1777936568 - 89.5, {"retry-after": "90"}),
        (RESETS_AT_ONLY, {}, 1777936568 + 50, {"retry-after": "1"}),
        (USAGE_LIMIT, {}, 1777936568 - 5, {"retry-after": "13872", "x-should-retry": "false"}),
        ({"error": {"type": "rate_limit_error", "message": "x"}}, {"retry-after": "7"}, None, {"retry-after": "7"}),
        ({"error": {"type": "rate_limit_error", "message": "x"}}, {}, None, {}),
    ],
    ids=[
        "resets-in-seconds",
        "resets-at-far",
        "resets-at-near",
        "resets-at-120s-still-retried",
        "resets-at-rounded-up",
        "resets-at-in-the-past",
        "resets-in-seconds-wins-over-resets-at",
        "retry-after-header-passed-on",
        "no-hint-no-header",
    ],
)
def test_429_retry_headers(
    body: dict[str, Any], headers: dict[str, str], now: float | None, expected: dict[str, str]
) -> None:
    assert upstream_error(429, j(body), headers, now=now).headers == expected


def test_usage_limit_message_names_plan_and_wait() -> None:
    err = upstream_error(429, j(USAGE_LIMIT), {})
    assert err.message == "The usage limit has been reached for this ChatGPT plus account. Try again in 3.9 h."


@pytest.mark.parametrize(
    "now, wait", [(1777936568 - 90, "90 s"), (1777936568 - 600, "10 min")], ids=["seconds", "minutes"]
)
def test_usage_limit_message_wait_units(now: float, wait: str) -> None:
    assert upstream_error(429, j(RESETS_AT_ONLY), {}, now=now).message.endswith(f"Try again in {wait}.")


HUMAN_DURATIONS = [
    (0, "0 s"),
    (0.2, "1 s"),
    (119, "119 s"),
    (120, "2 min"),
    (7199, "120 min"),
    (7200, "2.0 h"),
    (172799, "48.0 h"),
    (172800, "2.0 d"),
    (316705, "3.7 d"),
    (-5, "0 s"),
]


@pytest.mark.parametrize("seconds, text", HUMAN_DURATIONS)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


# -- 401 --------------------------------------------------------------------------------------------------------


def test_401_keeps_the_upstream_message_and_adds_a_login_hint() -> None:
    body = j(
        {
            "error": {
                "message": "Provided authentication token is expired. Please try signing in again.",
                "code": "token_expired",
            }
        }
    )
    message = upstream_error(401, body, {}).message
    assert message.startswith("Provided authentication token is expired. Please try signing in again.")
    assert "codex login" in message


# -- 5xx and HTML pages ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 520])
def test_5xx_stays_5xx(status: int) -> None:
    err = upstream_error(status, b"oops", {})
    assert (err.status, err.type) == (status, "server_error")


def test_5xx_retry_after_is_passed_on() -> None:
    assert upstream_error(503, b"", {"retry-after": "30"}).headers == {"retry-after": "30"}


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (403, CLOUDFLARE_403, "The Codex backend refused the request (HTTP 403): Just a moment..."),
        (
            403,
            b"<html><body><h1>Access denied</h1><p>You do not have access</p></body></html>",
            "The Codex backend refused the request (HTTP 403): an HTML error page",
        ),
        (
            503,
            b"<html><head><title>503 Service Unavailable</title></head></html>",
            "The Codex backend failed (HTTP 503): 503 Service Unavailable",
        ),
    ],
    ids=["cloudflare-title", "no-title", "503-title"],
)
def test_html_error_page_message_has_no_markup(status: int, body: bytes, expected: str) -> None:
    message = upstream_error(status, body, {}).message
    assert message == expected
    assert "<" not in message and ">" not in message


def test_long_plain_text_body_is_shortened() -> None:
    message = upstream_error(502, b"x" * 5000, {}).message
    assert len(message) < 400


# -- GatewayError -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "status, type_",
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (409, "conflict_error"),
        (429, "rate_limit_error"),
        (500, "server_error"),
        (503, "server_error"),
        (418, "api_error"),
    ],
)
def test_default_type_by_status(status: int, type_: str) -> None:
    assert GatewayError(status, "m").type == type_


def test_gateway_error_body() -> None:
    err = GatewayError(400, "Bad thing", param="messages", code="invalid_value")
    assert json.loads(err.body()) == {
        "error": {"message": "Bad thing", "type": "invalid_request_error", "param": "messages", "code": "invalid_value"}
    }
    assert str(err) == "Bad thing"
