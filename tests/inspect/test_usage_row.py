"""usage_row: one finished gateway flow → one request-log row (the only reader of the flow's gateway record)."""

from __future__ import annotations

from typing import Any

import pytest
from codex_gateway.answer import Outcome
from codex_gateway.chat.stream import ChatStream
from codex_gateway.chat.translator import ChatSSETranslator
from codex_gateway.flow_record import FlowRecord
from codex_gateway.flow_record import set_record
from codex_gateway.inspect.usage_row import RequestRow
from codex_gateway.inspect.usage_row import row_from_flow
from codex_gateway.inspect.usage_row import row_from_record
from codex_gateway.inspect.usage_row import tokens_of
from mitmproxy.test import tflow

from scripts.fakes import codex_events as ev
from tests.conftest import encode_upstream

USAGE = {
    "prompt_tokens": 900,
    "completion_tokens": 120,
    "total_tokens": 1020,
    "prompt_tokens_details": {"cached_tokens": 512},
    "completion_tokens_details": {"reasoning_tokens": 64},
}


def record(**overrides: Any) -> FlowRecord:
    """A finished chat flow's record, from its saved (JSON) form."""
    base: dict[str, Any] = {
        "endpoint": "chat.completions",
        "started": 1000.0,
        "client": "OpenClaw",
        "trace": "4bf92f3577b34da6a3ce929d0e0e4736",
        "model": "gpt-5.4",
        "stream": True,
        "account": "user@example.com",
        "client_status": 200,
        "usage": USAGE,
        "tool_calls": ["read", "write"],
        "dropped": ["temperature", "user"],
        "first_token_at": 1000.25,
        "finished_at": 1002.5,
    }
    return FlowRecord.from_json({k: v for k, v in {**base, **overrides}.items() if v is not None})


def test_a_finished_stream_becomes_a_full_row() -> None:
    assert row_from_record(record(), summary="OpenClaw | gpt-5.4") == RequestRow(
        finished_at=1002.5,
        endpoint="chat.completions",
        client="OpenClaw",
        run="4bf92f3577b34da6a3ce929d0e0e4736",
        model="gpt-5.4",
        model_served="gpt-5.4",
        stream=True,
        account="user@example.com",
        status=200,
        input_tokens=900,
        cached_tokens=512,
        output_tokens=120,
        reasoning_tokens=64,
        ttft_ms=250.0,
        total_ms=2500.0,
        tool_calls=2,
        dropped="temperature,user",
        summary="OpenClaw | gpt-5.4",
    )


@pytest.mark.parametrize(
    "overrides, field, expected",
    [
        ({"model_served": "gpt-5.4-2026-01-01"}, "model_served", "gpt-5.4-2026-01-01"),
        ({"first_token_at": None}, "ttft_ms", None),
        ({"retries": ["401 → refreshed", "429 → b@example.com"]}, "retries", 2),
        ({"failure": "upstream_status", "upstream_status": 429, "client_status": 429}, "failure", "upstream_status"),
        ({"upstream_status": 502}, "upstream_status", 502),
        ({"client_status": None}, "status", None),
        ({"client_status": 99}, "status", None),
        ({"codex_model": "gpt-5.4-mini"}, "model_served", "gpt-5.4-mini"),
        ({"usage": None}, "input_tokens", 0),
        ({"trace": None}, "run", None),
        ({"account": None}, "account", None),
        ({"client": None}, "client", "unknown client"),
        ({"endpoint": None}, "endpoint", "unknown"),
        ({"endpoint": "a.future.endpoint"}, "endpoint", "a.future.endpoint"),
    ],
)
def test_row_fields(overrides: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(row_from_record(record(**overrides)), field) == expected


@pytest.mark.parametrize(
    "usage, expected",
    [
        (USAGE, (900, 512, 120, 64)),
        ({"prompt_tokens": 5, "completion_tokens": 2}, (5, 0, 2, 0)),
        ({"prompt_tokens": 5, "prompt_tokens_details": None, "completion_tokens_details": None}, (5, 0, 0, 0)),
        ({"prompt_tokens": "5", "completion_tokens": -3}, (0, 0, 0, 0)),
        (None, (0, 0, 0, 0)),
    ],
)
def test_tokens_of(usage: Any, expected: tuple[int, int, int, int]) -> None:
    assert tokens_of(usage) == expected


def test_a_flow_without_gateway_record_has_no_row() -> None:
    assert row_from_flow(tflow.tflow(resp=True)) is None


def test_a_server_replayed_flow_is_marked_and_keeps_its_comment() -> None:
    f = tflow.tflow(resp=True)
    set_record(f, record())
    f.is_replay = "response"
    f.comment = "OpenClaw (replayed) | gpt-5.4"
    row = row_from_flow(f)
    assert row is not None and row.replayed and row.summary == "OpenClaw (replayed) | gpt-5.4"


def test_a_live_flow_is_not_marked_replayed() -> None:
    f = tflow.tflow(resp=True)
    set_record(f, record())
    row = row_from_flow(f)
    assert row is not None and not row.replayed


def test_the_served_model_comes_from_the_answers_outcome() -> None:
    served = record()
    served.record_answer(200, Outcome(model="gpt-5.4-2026-03-05"))
    assert row_from_record(served).model_served == "gpt-5.4-2026-03-05"


def test_a_streamed_chat_answer_reports_the_model_upstream_named() -> None:
    translator = ChatSSETranslator(ChatStream(model="gpt-5.4"))
    translator(encode_upstream(ev.text("hi", model="gpt-5.4-2026-03-05")))
    translator(b"")
    assert translator.outcome().model == "gpt-5.4-2026-03-05"
