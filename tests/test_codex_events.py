"""codex_events: what upstream events carry, read the same way by every client protocol."""

from __future__ import annotations

from typing import Any

import pytest
from codex_gateway.codex_events import STREAM_INCOMPLETE
from codex_gateway.codex_events import chat_usage
from codex_gateway.codex_events import incomplete_finish_reason
from codex_gateway.codex_events import incomplete_reason
from codex_gateway.codex_events import stream_incomplete
from codex_gateway.codex_events import unix_time
from codex_gateway.codex_events import upstream_failure

FAILED = "The upstream model failed to produce an answer."

FAILURES = [
    (
        "response.error",
        {"type": "response.failed", "response": {"error": {"code": "rate_limit_exceeded", "message": "slow"}}},
        {"message": "slow", "type": "rate_limit_error", "param": None, "code": "rate_limit_exceeded"},
    ),
    (
        "nested-error",
        {"type": "error", "error": {"type": "invalid_request_error", "message": "bad", "param": "input"}},
        {"message": "bad", "type": "invalid_request_error", "param": "input", "code": "upstream_error"},
    ),
    (
        "flat-error",
        {"type": "error", "code": "server_is_overloaded", "message": "busy", "param": None},
        {"message": "busy", "type": "server_error", "param": None, "code": "server_is_overloaded"},
    ),
    (
        "response.error-wins-over-nested",
        {"type": "response.failed", "response": {"error": {"code": "a"}}, "error": {"code": "b"}},
        {"message": FAILED, "type": "server_error", "param": None, "code": "a"},
    ),
    (
        "failed-without-error",
        {"type": "response.failed", "response": {"status": "failed", "error": None}},
        {"message": FAILED, "type": "server_error", "param": None, "code": "upstream_error"},
    ),
    (
        "fields-of-the-wrong-type",
        {"type": "error", "code": 5, "message": ["m"], "param": {}, "error": "x"},
        {"message": FAILED, "type": "server_error", "param": None, "code": "upstream_error"},
    ),
    (
        "empty-message",
        {"type": "error", "code": "", "message": ""},
        {"message": FAILED, "type": "server_error", "param": None, "code": "upstream_error"},
    ),
]


@pytest.mark.parametrize("event, expected", [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_upstream_failure(event: dict[str, Any], expected: dict[str, Any]) -> None:
    assert upstream_failure(event) == expected


def test_stream_incomplete() -> None:
    assert stream_incomplete() == {
        "message": STREAM_INCOMPLETE,
        "type": "server_error",
        "param": None,
        "code": "stream_incomplete",
    }


@pytest.mark.parametrize(
    "response, reason, finish",
    [
        ({"incomplete_details": {"reason": "max_output_tokens"}}, "max_output_tokens", "length"),
        ({"incomplete_details": {"reason": "content_filter"}}, "content_filter", "content_filter"),
        ({"incomplete_details": "content_filter"}, "content_filter", "content_filter"),
        ({"incomplete_details": {"reason": "brand_new"}}, "brand_new", "length"),
        ({}, None, "length"),
    ],
    ids=["max-tokens", "content-filter", "bare-reason", "unknown-reason", "no-details"],
)
def test_incomplete_reason_and_finish_reason(response: dict[str, Any], reason: Any, finish: str) -> None:
    assert (incomplete_reason(response), incomplete_finish_reason(incomplete_reason(response))) == (reason, finish)


@pytest.mark.parametrize(
    "value, expected",
    [
        (1760000000, 1760000000),
        (1760000000.9, 1760000000),
        (True, None),
        ("1760000000", None),
        (None, None),
        (2**64 - 1, None),  # orjson reads it, but one past it cannot be written
        (1.8446744073709552e19, None),
    ],
    ids=["int", "float", "bool", "str", "none", "u64-max", "huge-float"],
)
def test_unix_time(value: Any, expected: int | None) -> None:
    assert unix_time(value) == expected


def test_token_counts_past_2_53_read_as_zero() -> None:
    """Two counts near 2**64 would add up to a total orjson cannot write."""
    usage = chat_usage({"input_tokens": 2**64 - 1, "output_tokens": 2**64 - 1})
    assert usage is not None and (usage["prompt_tokens"], usage["total_tokens"]) == (0, 0)
