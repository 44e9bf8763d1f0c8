"""Claude Code's recorded requests (tests/fixtures/claude_code, see record.py there) through the translator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from codex_gateway.anthropic.count import estimate_tokens
from codex_gateway.anthropic.models import DEFAULT_CLAUDE_MODELS
from codex_gateway.anthropic.models import parse_claude_models
from codex_gateway.anthropic.request import MessagesUpstream
from codex_gateway.anthropic.request import translate_messages_request
from codex_gateway.inspect.summary import client_name

from scripts.fakes.codex_rules import validate_responses_body

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"
NAMES = ["request.json", "request_tool_turn.json"]
# o200k_base token counts of the same requests' text (instructions + input texts + the tools' JSON), measured once
# with the npm package gpt-tokenizer 4.0.0 (`encode(text).length`); the backend's own count adds its framing.
O200K = {"request.json": 10734, "request_tool_turn.json": 10762}


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


def translated(name: str) -> tuple[dict[str, Any], MessagesUpstream]:
    doc = load(name)
    headers = {k.lower(): v for k, v in doc["headers"]}
    raw = json.dumps(doc["body"]).encode()
    return doc, translate_messages_request(raw, None, headers, parse_claude_models(DEFAULT_CLAUDE_MODELS))


@pytest.mark.parametrize("name", NAMES)
def test_recorded_request_becomes_a_body_the_backend_accepts(name: str) -> None:
    _, out = translated(name)
    assert validate_responses_body(out.body) is None


@pytest.mark.parametrize("name", NAMES)
def test_claude_codes_session_keys_the_prompt_cache(name: str) -> None:
    doc, out = translated(name)
    assert out.session_id == dict(doc["headers"])["X-Claude-Code-Session-Id"]


@pytest.mark.parametrize("name", NAMES)
def test_its_system_entry_stays_in_place_and_its_billing_line_goes(name: str) -> None:
    doc, out = translated(name)
    roles = [m["role"] for m in doc["body"]["messages"]]
    sent = [i.get("role") for i in out.body["input"] if i["type"] == "message"]
    assert roles[:2] == ["user", "system"] and sent[:2] == ["user", "developer"]
    assert "x-anthropic-billing-header" not in out.body["instructions"]
    assert "system[0] (billing header)" in out.dropped and "context_management" in out.dropped


def test_its_options_become_reasoning() -> None:
    _, out = translated("request.json")
    assert (out.body["reasoning"], out.thinking, out.stream) == (
        {"effort": "medium", "summary": "auto"},
        "omitted",
        True,
    )


def test_its_tool_turn_sends_the_history_back() -> None:
    _, out = translated("request_tool_turn.json")
    kinds = [i["type"] for i in out.body["input"]]
    assert kinds[-3:] == ["reasoning", "function_call", "function_call_output"]
    assert out.body["input"][-3]["encrypted_content"] == "gAAAAencReason1"


@pytest.mark.parametrize("name", NAMES)
def test_client_is_recognised(name: str) -> None:
    assert client_name({k.lower(): v for k, v in load(name)["headers"]}, None) == "Claude Code"


@pytest.mark.parametrize("name", NAMES)
def test_count_estimate_is_close_to_o200k(name: str) -> None:
    _, out = translated(name)
    assert abs(estimate_tokens(out.body) - O200K[name]) / O200K[name] < 0.05
