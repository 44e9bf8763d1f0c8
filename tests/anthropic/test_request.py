"""anthropic.request: Messages requests → Codex bodies, every one accepted by the fake backend's rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from codex_gateway.anthropic.errors import anthropic_error_answer
from codex_gateway.anthropic.models import DEFAULT_CLAUDE_MODELS
from codex_gateway.anthropic.models import anthropic_model_list
from codex_gateway.anthropic.models import codex_model_for
from codex_gateway.anthropic.models import parse_claude_models
from codex_gateway.anthropic.request import SIGNATURE_PREFIX
from codex_gateway.anthropic.request import MessagesUpstream
from codex_gateway.anthropic.request import translate_messages_request
from codex_gateway.anthropic.request import upstream_tool_name
from codex_gateway.errors import GatewayError

from scripts.fakes.codex_rules import validate_responses_body

FAMILIES = parse_claude_models(DEFAULT_CLAUDE_MODELS)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
USER = {"role": "user", "content": "hi"}


def request(**kw: Any) -> dict[str, Any]:
    return {"model": "claude-opus-5-5", "max_tokens": 1024, "messages": [USER], **kw}


def translate(doc: dict[str, Any], headers: dict[str, str] | None = None) -> MessagesUpstream:
    out = translate_messages_request(json.dumps(doc).encode(), None, headers, FAMILIES)
    rejection = validate_responses_body(out.body)
    assert rejection is None, rejection
    return out


def tool_turn(result: Any, **extra: Any) -> list[dict[str, Any]]:
    return [
        USER,
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"p": 1}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": result, **extra}]},
    ]


# request → the part of the Codex body it becomes
TRANSLATION_TABLE: list[tuple[str, dict[str, Any], str, Any]] = [
    ("system string", request(system="Be terse."), "instructions", "Be terse."),
    (
        "system blocks with cache_control",
        request(
            system=[
                {"type": "text", "text": "A"},
                {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
            ]
        ),
        "instructions",
        "A\n\nB",
    ),
    ("no system", request(), "instructions", "You are a helpful assistant."),
    (
        "Claude Code's billing line stays out of the instructions",
        request(
            system=[
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=1; cch=ab"},
                {"type": "text", "text": "Hi"},
            ]
        ),
        "instructions",
        "Hi",
    ),
    ("opus → flagship", request(), "model", "gpt-5.4"),
    ("haiku → mini", request(model="claude-haiku-4-5"), "model", "gpt-5.4-mini"),
    ("a Codex id passes", request(model="gpt-5.3-codex"), "model", "gpt-5.3-codex"),
    (
        "system message in the conversation stays in place as developer",
        request(messages=[USER, {"role": "system", "content": "env: linux"}, {"role": "user", "content": "go"}]),
        "input",
        [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "env: linux"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
        ],
    ),
    (
        "base64 and URL images",
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                    ],
                }
            ]
        ),
        "input",
        [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                    {"type": "input_image", "image_url": "https://example.com/a.png"},
                ],
            }
        ],
    ),
    (
        "text document",
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "title": "notes.txt",
                            "source": {"type": "text", "media_type": "text/plain", "data": "line"},
                        }
                    ],
                }
            ]
        ),
        "input",
        [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "notes.txt\n\nline"}]}],
    ),
    (
        "tool use and its string result",
        request(messages=tool_turn("file body")),
        "input",
        [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "name": "Read", "arguments": '{"p":1}', "call_id": "toolu_1"},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "file body"},
        ],
    ),
    (
        "error result says so",
        request(messages=tool_turn([{"type": "text", "text": "no such file"}], is_error=True)),
        "input",
        [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "name": "Read", "arguments": '{"p":1}', "call_id": "toolu_1"},
            {"type": "function_call_output", "call_id": "toolu_1", "output": "Error: no such file"},
        ],
    ),
    (
        "image in a tool result",
        request(
            messages=tool_turn(
                [
                    {"type": "text", "text": "screenshot"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                ]
            )
        ),
        "input",
        [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "function_call", "name": "Read", "arguments": '{"p":1}', "call_id": "toolu_1"},
            {
                "type": "function_call_output",
                "call_id": "toolu_1",
                "output": [
                    {"type": "input_text", "text": "screenshot"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                ],
            },
        ],
    ),
    (
        "a gateway-signed thinking block goes back as reasoning, in place",
        request(
            messages=[
                USER,
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "plan", "signature": SIGNATURE_PREFIX + "gAAAAenc"},
                        {"type": "text", "text": "Hello"},
                    ],
                },
                {"role": "user", "content": "more"},
            ]
        ),
        "input",
        [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "plan"}],
                "encrypted_content": "gAAAAenc",
            },
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "more"}]},
        ],
    ),
    (
        "a foreign signature is dropped",
        request(
            messages=[
                USER,
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "x", "signature": "EqQBCkYIBxgC"}]},
                {"role": "user", "content": "more"},
            ]
        ),
        "input",
        [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "more"}]},
        ],
    ),
    (
        "tools become flat function tools",
        request(tools=[{"name": "Bash", "description": "Run", "input_schema": {"$schema": "x", "type": "object"}}]),
        "tools",
        [
            {
                "type": "function",
                "name": "Bash",
                "description": "Run",
                "parameters": {"type": "object", "properties": {}},
                "strict": False,
            }
        ],
    ),
    (
        "web search → the hosted tool",
        request(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
        "tools",
        [{"type": "web_search"}],
    ),
    (
        "tool_choice any → required",
        request(tools=[{"name": "a", "input_schema": {}}], tool_choice={"type": "any"}),
        "tool_choice",
        "required",
    ),
    (
        "tool_choice tool → named function",
        request(tools=[{"name": "a", "input_schema": {}}], tool_choice={"type": "tool", "name": "a"}),
        "tool_choice",
        {"type": "function", "name": "a"},
    ),
    (
        "disable_parallel_tool_use",
        request(
            tools=[{"name": "a", "input_schema": {}}], tool_choice={"type": "auto", "disable_parallel_tool_use": True}
        ),
        "parallel_tool_calls",
        False,
    ),
    ("parallel by default", request(tools=[{"name": "a", "input_schema": {}}]), "parallel_tool_calls", True),
    (
        "structured output",
        request(output_config={"format": {"type": "json_schema", "schema": {"type": "object"}}}),
        "text",
        {"format": {"type": "json_schema", "name": "output", "schema": {"type": "object"}, "strict": True}},
    ),
]

REASONING_TABLE: list[tuple[dict[str, Any], Any, str]] = [
    ({}, None, "off"),
    ({"thinking": {"type": "disabled"}}, {"effort": "low"}, "off"),
    ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, {"effort": "low", "summary": "auto"}, "summarized"),
    ({"thinking": {"type": "enabled", "budget_tokens": 4000}}, {"effort": "medium", "summary": "auto"}, "summarized"),
    ({"thinking": {"type": "enabled", "budget_tokens": 10000}}, {"effort": "high", "summary": "auto"}, "summarized"),
    ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, {"effort": "xhigh", "summary": "auto"}, "summarized"),
    ({"thinking": {"type": "adaptive"}}, {"effort": "high", "summary": "auto"}, "summarized"),
    (
        {"thinking": {"type": "adaptive", "display": "omitted"}, "output_config": {"effort": "medium"}},
        {"effort": "medium", "summary": "auto"},
        "omitted",
    ),
    ({"output_config": {"effort": "max"}}, {"effort": "xhigh"}, "off"),
]


@pytest.mark.parametrize(("what", "doc", "key", "expected"), TRANSLATION_TABLE, ids=[t[0] for t in TRANSLATION_TABLE])
def test_translation(what: str, doc: dict[str, Any], key: str, expected: Any) -> None:
    assert translate(doc).body[key] == expected


@pytest.mark.parametrize(("extra", "reasoning", "mode"), REASONING_TABLE)
def test_reasoning_table(extra: dict[str, Any], reasoning: Any, mode: str) -> None:
    out = translate(request(**extra))
    assert (out.body.get("reasoning"), out.thinking) == (reasoning, mode)
    assert out.body["include"] == (["reasoning.encrypted_content"] if mode != "off" else [])


def test_dropped_parameters_are_recorded_and_never_sent() -> None:
    out = translate(
        request(
            temperature=0.5,
            top_p=0.9,
            top_k=5,
            metadata={"user_id": "u"},
            context_management={"edits": []},
            speed="fast",
        )
    )
    assert out.dropped == ["max_tokens", "temperature", "top_p", "top_k", "metadata", "context_management", "speed"]


SESSION_TABLE = [
    ({"x-claude-code-session-id": "cc-session"}, {}, "cc-session"),
    ({}, {"metadata": {"user_id": json.dumps({"device_id": "d", "session_id": "json-session"})}}, "json-session"),
    (
        {},
        {"metadata": {"user_id": "user_ab_account_cd_session_123e4567-e89b-12d3-a456-426614174000"}},
        "123e4567-e89b-12d3-a456-426614174000",
    ),
]


@pytest.mark.parametrize(("headers", "extra", "key"), SESSION_TABLE)
def test_prompt_cache_key_follows_the_clients_session(headers: dict[str, str], extra: dict[str, Any], key: str) -> None:
    out = translate(request(**extra), headers)
    assert out.body["prompt_cache_key"] == out.session_id == key


def test_derived_cache_key_is_stable_across_turns() -> None:
    first = translate(request(system="S"))
    later = translate(
        request(
            system="S", messages=[USER, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "and?"}]
        )
    )
    assert first.session_id == later.session_id


def test_long_tool_names_are_shortened_both_ways() -> None:
    name = "mcp__a_server__" + "t" * 100
    out = translate(request(tools=[{"name": name, "input_schema": {}}], messages=tool_turn("ok")[:1]))
    short = out.body["tools"][0]["name"]
    assert len(short) == 64 and out.tool_names == {short: name} and upstream_tool_name(name) == short


def test_beta_flags_are_recorded() -> None:
    assert translate(request(), {"anthropic-beta": "a-1, b-2"}).betas == ["a-1", "b-2"]


# bad request → (status, what the message starts with)
ERROR_TABLE: list[tuple[str, Any, str]] = [
    ("not json", b"{", "We could not parse"),
    ("no max_tokens", {"model": "m", "messages": [USER]}, "max_tokens: Field required"),
    ("no messages", {"model": "m", "max_tokens": 1}, "messages: Field required"),
    ("empty messages", request(messages=[]), "messages: List should have at least 1 item"),
    ("bad role", request(messages=[{"role": "tool", "content": "x"}]), "messages.0: Input tag 'tool'"),
    (
        "bad block",
        request(messages=[{"role": "user", "content": [{"type": "video"}]}]),
        "messages.0.content.0: Input tag 'video'",
    ),
    (
        "text not a string",
        request(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
        "messages.0.content.0.text:",
    ),
    (
        "bad image type",
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": PNG}}
                    ],
                }
            ]
        ),
        "messages.0.content.0.source.media_type:",
    ),
    (
        "bad base64",
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}}
                    ],
                }
            ]
        ),
        "messages.0.content.0.source.data:",
    ),
    (
        "PDF",
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PNG}}
                    ],
                }
            ]
        ),
        "messages.0.content.0: the Codex backend takes no PDF documents",
    ),
    ("temperature out of range", request(temperature=1.5), "temperature:"),
    ("small budget", request(thinking={"type": "enabled", "budget_tokens": 100}), "thinking.budget_tokens:"),
    ("bad effort", request(output_config={"effort": "extreme"}), "output_config.effort:"),
    ("bad tool name", request(tools=[{"name": "a b", "input_schema": {}}]), "tools.0.name:"),
    (
        "schema not an object",
        request(tools=[{"name": "a", "input_schema": {"type": "array"}}]),
        "tools.0.input_schema:",
    ),
    (
        "unknown server tool",
        request(tools=[{"type": "computer_20250124", "name": "computer"}]),
        "tools.0: the Anthropic tool",
    ),
    (
        "tool_choice names no tool",
        request(tools=[{"name": "a", "input_schema": {}}], tool_choice={"type": "tool", "name": "b"}),
        "tool_choice.name:",
    ),
    (
        "prefill",
        request(messages=[USER, {"role": "assistant", "content": "Sure"}]),
        "messages.1: the Codex backend cannot continue",
    ),
    (
        "unanswered tool use",
        request(messages=[*tool_turn("x")[:2], {"role": "user", "content": "skip"}]),
        "messages.1: `tool_use` ids",
    ),
    (
        "result for no tool use",
        request(
            messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}]}]
        ),
        "messages.0.content.0: unexpected `tool_use_id`",
    ),
    ("mcp servers", request(mcp_servers=[{"type": "url", "url": "https://x", "name": "x"}]), "mcp_servers:"),
]


@pytest.mark.parametrize(("what", "doc", "start"), ERROR_TABLE, ids=[t[0] for t in ERROR_TABLE])
def test_bad_requests_are_anthropic_400s(what: str, doc: Any, start: str) -> None:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(GatewayError) as caught:
        translate_messages_request(raw, None, {}, FAMILIES)
    answer = anthropic_error_answer(caught.value)
    body = json.loads(answer.body)
    assert answer.status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith(start), body["error"]["message"]


@pytest.mark.parametrize(
    ("status", "etype"),
    [
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_envelopes_use_anthropics_types(status: int, etype: str) -> None:
    answer = anthropic_error_answer(GatewayError(status, "m", headers={"retry-after": "3"}))
    assert json.loads(answer.body) == {"type": "error", "error": {"type": etype, "message": "m"}}
    assert answer.headers == {"retry-after": "3"}


@pytest.mark.parametrize(
    ("model", "codex"),
    [
        ("claude-opus-5-5", "gpt-5.4"),
        ("claude-sonnet-4-5-20250929", "gpt-5.4"),
        ("claude-3-5-haiku-latest", "gpt-5.4-mini"),
        ("claude-next", "gpt-5.4"),
        ("opus", "gpt-5.4"),
        ("gpt-5.4-mini", "gpt-5.4-mini"),
    ],
)
def test_model_families(model: str, codex: str) -> None:
    assert codex_model_for(model, FAMILIES) == codex


def test_bad_model_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match="codex_claude_models"):
        parse_claude_models("opus gpt-5.4")


def test_model_list_in_anthropics_shape() -> None:
    listed = anthropic_model_list([{"id": "gpt-5.4", "object": "model", "context_window": 272000}])
    assert listed == {
        "data": [
            {
                "type": "model",
                "id": "gpt-5.4",
                "display_name": "gpt-5.4",
                "created_at": "2025-01-01T00:00:00Z",
                "max_input_tokens": 272000,
            }
        ],
        "has_more": False,
        "first_id": "gpt-5.4",
        "last_id": "gpt-5.4",
    }
