"""responses.request.prepare: `/v1/responses` body → a body the Codex backend accepts, and its 400s.

Every prepared body is also run through the fake backend's rules (`validate_responses_body`), so a fix-up that
the real backend would still reject fails here. The recorded Codex CLI requests (tests/fixtures/codex_cli) are
replayed through `prepare` as well.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from codex_gateway.errors import GatewayError
from codex_gateway.responses.request import ResponsesRequest
from codex_gateway.responses.request import prepare
from codex_gateway.responses.request import upstream_session_headers

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_rules import validate_responses_body

CODEX_CLI = Path(__file__).resolve().parents[1] / "fixtures" / "codex_cli"
DEFAULT = "You are a helpful assistant."
USER = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
SERVER_MSG_ID = ev.make_item_id("msg", "resp_1", 0)
SERVER_RS_ID = ev.make_item_id("rs", "resp_1", 0)
SERVER_FC_ID = ev.make_item_id("fc", "resp_1", 1)
CLIENT_MSG_ID = "msg_01a22939-22e3-7402-a15b-ffabb94b3260"
FN_TOOL = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}


def run(request: dict[str, Any]) -> ResponsesRequest:
    return prepare(json.dumps({"model": "gpt-5.4", **request}).encode(), default_instructions=DEFAULT)


def accepted(req: ResponsesRequest) -> dict[str, Any]:
    """The body, after checking that the fake backend (strict rules) would accept it."""
    rejection = validate_responses_body(req.body)
    assert rejection is None, rejection
    return req.body


# (id, request (model added), expected subset of the upstream body)
VALID: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "string-input",
        {"input": "hi"},
        {"input": [USER], "instructions": DEFAULT, "store": False, "stream": True},
    ),
    ("instructions-kept", {"input": "hi", "instructions": "Be brief."}, {"instructions": "Be brief."}),
    ("empty-instructions-defaulted", {"input": "hi", "instructions": ""}, {"instructions": DEFAULT}),
    ("null-instructions-defaulted", {"input": "hi", "instructions": None}, {"instructions": DEFAULT}),
    ("stream-false-still-streams-upstream", {"input": "hi", "stream": False}, {"stream": True}),
    ("store-true-forced-false", {"input": "hi", "store": True}, {"store": False}),
    (
        "system-role-to-developer",
        {"input": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]},
        {
            "input": [
                {"role": "developer", "content": [{"type": "input_text", "text": "Be terse."}]},
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            ]
        },
    ),
    (
        "typed-system-message-to-developer",
        {"input": [{"type": "message", "role": "system", "content": [{"type": "input_text", "text": "x"}]}, USER]},
        {"input": [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "x"}]}, USER]},
    ),
    (
        "assistant-string-content-is-output-text",
        {"input": [USER, {"role": "assistant", "content": "hello"}, USER]},
        {"input": [USER, {"role": "assistant", "content": [{"type": "output_text", "text": "hello"}]}, USER]},
    ),
    (
        "part-types-matched-to-role",
        {
            "input": [
                {"role": "user", "content": [{"type": "output_text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "input_text", "text": "b"}]},
            ]
        },
        {
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "a"}]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "b"}]},
            ]
        },
    ),
    (
        "chat-style-image-url-object",
        {
            "input": [
                {"role": "user", "content": [{"type": "input_image", "image_url": {"url": "https://x.test/a.png"}}]}
            ]
        },
        {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "https://x.test/a.png"}]}]},
    ),
    (
        "server-ids-stripped",
        {
            "input": [
                USER,
                {
                    "type": "reasoning",
                    "id": SERVER_RS_ID,
                    "summary": [],
                    "encrypted_content": "gAAAA==",
                },
                {
                    "type": "function_call",
                    "id": SERVER_FC_ID,
                    "call_id": "call_1",
                    "name": "f",
                    "arguments": "{}",
                    "status": "completed",
                },
                {"type": "function_call_output", "call_id": "call_1", "output": "42"},
                {
                    "type": "message",
                    "id": SERVER_MSG_ID,
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "done", "annotations": []}],
                },
            ],
            "tools": [FN_TOOL],
        },
        {
            "input": [
                USER,
                {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA=="},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}", "status": "completed"},
                {"type": "function_call_output", "call_id": "call_1", "output": "42"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "done", "annotations": []}],
                },
            ]
        },
    ),
    (
        "client-made-ids-kept",
        {"input": [{**USER, "id": CLIENT_MSG_ID}]},
        {"input": [{**USER, "id": CLIENT_MSG_ID}]},
    ),
    (
        "reasoning-without-encrypted-content-dropped",
        {"input": [USER, {"type": "reasoning", "id": SERVER_RS_ID, "summary": []}, USER]},
        {"input": [USER, USER]},
    ),
    (
        "unknown-tool-types-pass-unchanged",
        {
            "input": "hi",
            "tools": [
                {"type": "web_search", "external_web_access": False},
                {"type": "namespace", "name": "multi_agent_v1", "description": "d", "tools": [FN_TOOL]},
                {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark"}},
                {"type": "image_generation", "output_format": "png"},
            ],
        },
        {
            "tools": [
                {"type": "web_search", "external_web_access": False},
                {"type": "namespace", "name": "multi_agent_v1", "description": "d", "tools": [FN_TOOL]},
                {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark"}},
                {"type": "image_generation", "output_format": "png"},
            ]
        },
    ),
    (
        "chat-style-function-tool-flattened",
        {
            "input": "hi",
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
        },
        {
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "f"},
        },
    ),
    (
        "function-tool-without-parameters",
        {"input": "hi", "tools": [{"type": "function", "name": "f"}]},
        {"tools": [{"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}]},
    ),
    ("include-gets-encrypted-reasoning", {"input": "hi"}, {"include": ["reasoning.encrypted_content"]}),
    (
        "include-kept-and-extended",
        {"input": "hi", "include": ["message.output_text.logprobs"]},
        {"include": ["message.output_text.logprobs", "reasoning.encrypted_content"]},
    ),
    (
        "include-not-duplicated",
        {"input": "hi", "include": ["reasoning.encrypted_content"]},
        {"include": ["reasoning.encrypted_content"]},
    ),
    (
        "reasoning-kept",
        {"input": "hi", "reasoning": {"effort": "high", "summary": "auto"}},
        {"reasoning": {"effort": "high", "summary": "auto"}},
    ),
    (
        "generate-summary-alias",
        {"input": "hi", "reasoning": {"effort": "low", "generate_summary": "concise"}},
        {"reasoning": {"effort": "low", "summary": "concise"}},
    ),
    ("prompt-cache-key-kept", {"input": "hi", "prompt_cache_key": "conv-1"}, {"prompt_cache_key": "conv-1"}),
    (
        "text-format-passes",
        {"input": "hi", "text": {"verbosity": "low", "format": {"type": "json_object"}}},
        {"text": {"verbosity": "low", "format": {"type": "json_object"}}},
    ),
    ("parallel-tool-calls-passes", {"input": "hi", "parallel_tool_calls": False}, {"parallel_tool_calls": False}),
    ("null-options-omitted", {"input": "hi", "tools": None, "tool_choice": None, "text": None}, {"input": [USER]}),
]


@pytest.mark.parametrize(("request_", "expected"), [v[1:] for v in VALID], ids=[v[0] for v in VALID])
def test_fix_ups(request_: dict[str, Any], expected: dict[str, Any]) -> None:
    body = accepted(run(request_))
    for key, value in expected.items():
        assert body[key] == value, key


def test_null_options_are_absent() -> None:
    body = run({"input": "hi", "tools": None, "tool_choice": None, "text": None, "reasoning": None}).body
    assert not {"tools", "tool_choice", "text", "reasoning"} & set(body)


def test_body_key_order_is_fixed() -> None:
    request = {
        "text": {"verbosity": "low"},
        "input": "hi",
        "tools": [FN_TOOL],
        "stream": True,
        "instructions": "x",
        "reasoning": {"effort": "low"},
    }
    assert list(run(request).body) == [
        "model",
        "instructions",
        "input",
        "tools",
        "reasoning",
        "store",
        "stream",
        "include",
        "prompt_cache_key",
        "text",
    ]


# (id, request, dropped)
DROPPED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("none", {"input": "hi"}, []),
    (
        "sampling-and-limits",
        {
            "input": "hi",
            "max_output_tokens": 100,
            "temperature": 0,
            "top_p": 1,
            "truncation": "auto",
            "user": "u",
            "frequency_penalty": 0.5,
            "presence_penalty": 0.5,
        },
        ["max_output_tokens", "temperature", "top_p", "truncation", "user", "frequency_penalty", "presence_penalty"],
    ),
    (
        "misc",
        {
            "input": "hi",
            "metadata": {"a": "b"},
            "context_management": [{"type": "compaction"}],
            "max_tool_calls": 3,
            "safety_identifier": "s",
            "stream_options": {"include_obfuscation": False},
            "top_logprobs": 2,
            "prompt_cache_retention": "24h",
        },
        [
            "metadata",
            "context_management",
            "max_tool_calls",
            "safety_identifier",
            "stream_options",
            "top_logprobs",
            "prompt_cache_retention",
        ],
    ),
    ("nulls-are-not-dropped-params", {"input": "hi", "temperature": None, "previous_response_id": None}, []),
    ("background-false-is-fine", {"input": "hi", "background": False}, []),
    ("store-true", {"input": "hi", "store": True}, ["store"]),
    ("store-false", {"input": "hi", "store": False}, []),
    ("reasoning-extra-key", {"input": "hi", "reasoning": {"effort": "low", "foo": 1}}, ["reasoning.foo"]),
    (
        "server-ids",
        {"input": [{**USER, "id": SERVER_MSG_ID}, {**USER, "id": CLIENT_MSG_ID}]},
        ["input[].id"],
    ),
    (
        "reasoning-item-without-content",
        {"input": [USER, {"type": "reasoning", "summary": []}]},
        ["input[1]"],
    ),
]


@pytest.mark.parametrize(("request_", "dropped"), [d[1:] for d in DROPPED], ids=[d[0] for d in DROPPED])
def test_dropped_parameters_are_recorded(request_: dict[str, Any], dropped: list[str]) -> None:
    req = run(request_)
    accepted(req)
    assert req.dropped == dropped


def test_stripped_id_count() -> None:
    req = run({"input": [{**USER, "id": SERVER_MSG_ID}, {**USER, "id": CLIENT_MSG_ID}, {**USER, "id": "msg_abc"}]})
    assert req.stripped_ids == 1
    assert [it.get("id") for it in req.body["input"]] == [None, CLIENT_MSG_ID, "msg_abc"]


def test_unstripped_server_id_would_be_rejected() -> None:
    """The reason for stripping: the fake (like the real backend) answers a 404 for a server-assigned id."""
    body = dict(run({"input": "hi"}).body)
    body["input"] = [{**USER, "id": SERVER_MSG_ID}]
    rejection = validate_responses_body(body)
    assert rejection is not None and rejection.status == 404


# (id, raw body, status, param, code)
INVALID: list[tuple[str, bytes, int, str | None, str]] = [
    ("not-json", b"{", 400, None, "invalid_json"),
    ("not-object", b"[]", 400, None, "invalid_type"),
    ("no-model", b'{"input":"hi"}', 400, "model", "missing_required_parameter"),
    ("model-not-string", b'{"model":5,"input":"hi"}', 400, "model", "invalid_type"),
    ("model-blank", b'{"model":" ","input":"hi"}', 400, "model", "invalid_type"),
    ("no-input", b'{"model":"m"}', 400, "input", "missing_required_parameter"),
    ("input-number", b'{"model":"m","input":3}', 400, "input", "invalid_type"),
    ("input-item-not-object", b'{"model":"m","input":["hi"]}', 400, "input[0]", "invalid_type"),
    ("stream-not-bool", b'{"model":"m","input":"hi","stream":"yes"}', 400, "stream", "invalid_type"),
    ("instructions-list", b'{"model":"m","input":"hi","instructions":[]}', 400, "instructions", "invalid_type"),
    ("tools-object", b'{"model":"m","input":"hi","tools":{}}', 400, "tools", "invalid_type"),
    ("tool-not-object", b'{"model":"m","input":"hi","tools":["f"]}', 400, "tools[0]", "invalid_type"),
    ("include-string", b'{"model":"m","input":"hi","include":"x"}', 400, "include", "invalid_type"),
    ("reasoning-string", b'{"model":"m","input":"hi","reasoning":"high"}', 400, "reasoning", "invalid_type"),
    (
        "previous-response-id",
        b'{"model":"m","input":"hi","previous_response_id":"resp_1"}',
        400,
        "previous_response_id",
        "unsupported_parameter",
    ),
    (
        "conversation",
        b'{"model":"m","input":"hi","conversation":"conv_1"}',
        400,
        "conversation",
        "unsupported_parameter",
    ),
    ("stored-prompt", b'{"model":"m","input":"hi","prompt":{"id":"pmpt_1"}}', 400, "prompt", "unsupported_parameter"),
    ("background", b'{"model":"m","input":"hi","background":true}', 400, "background", "unsupported_parameter"),
    (
        "item-reference",
        b'{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}',
        400,
        "input[0]",
        "unsupported_parameter",
    ),
]


@pytest.mark.parametrize(("raw", "status", "param", "code"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID])
def test_invalid_requests(raw: bytes, status: int, param: str | None, code: str) -> None:
    with pytest.raises(GatewayError) as info:
        prepare(raw, default_instructions=DEFAULT)
    err = info.value
    assert (err.status, err.param, err.code, err.type) == (status, param, code, "invalid_request_error")
    assert err.message


def test_previous_response_id_message_says_what_to_do() -> None:
    with pytest.raises(GatewayError) as info:
        run({"input": "hi", "previous_response_id": "resp_1"})
    assert "stores no responses" in info.value.message and "input" in info.value.message


def test_request_fields() -> None:
    req = run({"input": [USER, USER], "stream": True, "tools": [FN_TOOL, FN_TOOL]})
    assert (req.model, req.stream, req.message_count, req.tool_count) == ("gpt-5.4", True, 2, 2)
    assert run({"input": "hi"}).stream is False


def test_session_id_is_prompt_cache_key() -> None:
    req = run({"input": "hi", "prompt_cache_key": "conv-1"})
    assert req.session_id == req.body["prompt_cache_key"] == "conv-1"


def test_derived_session_id_is_stable_across_turns() -> None:
    first = run({"input": [USER], "instructions": "x"})
    later = run({"input": [USER, {"role": "assistant", "content": "hello"}, USER], "instructions": "x"})
    other = run({"input": [USER], "instructions": "y"})
    assert first.session_id == later.session_id != other.session_id
    assert uuid.UUID(first.session_id).version == 4
    assert first.body["prompt_cache_key"] == first.session_id


def test_equal_input_gives_equal_bytes() -> None:
    raw = json.dumps({"model": "m", "input": [USER, {"role": "system", "content": "s"}], "temperature": 1}).encode()
    assert (
        prepare(raw, default_instructions=DEFAULT).body_bytes()
        == prepare(raw, default_instructions=DEFAULT).body_bytes()
    )
    assert orjson.loads(prepare(raw, default_instructions=DEFAULT).body_bytes())["input"][1]["role"] == "developer"


def test_input_is_not_mutated() -> None:
    item = {"type": "message", "id": SERVER_MSG_ID, "role": "system", "content": "s"}
    data = {"model": "m", "input": [item]}
    raw = json.dumps(data).encode()
    prepare(raw, default_instructions=DEFAULT)
    assert json.loads(raw) == data


# -- the recorded Codex CLI requests ------------------------------------------------------------------------


def load_fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CODEX_CLI / name).read_text())
    return doc


@pytest.mark.parametrize("name", ["request.json", "request_tool_turn.json"])
def test_codex_cli_request_is_accepted_after_prepare(name: str) -> None:
    doc = load_fixture(name)
    raw = json.dumps(doc["body"]).encode()
    assert validate_responses_body(doc["body"]) is not None  # as sent: no instructions (and ids on turn 2)
    req = prepare(raw, default_instructions=DEFAULT)
    body = accepted(req)
    sent = doc["body"]
    assert req.dropped == (["input[].id"] if name == "request_tool_turn.json" else [])
    assert req.session_id == sent["prompt_cache_key"] == doc["headers"]["session-id"]
    assert body["instructions"] == DEFAULT
    assert body["tools"] == sent["tools"]  # namespace and web_search tools untouched
    assert body["client_metadata"] == sent["client_metadata"]
    assert body["reasoning"] == sent["reasoning"]
    assert req.stream is True


def test_codex_cli_tool_turn_history() -> None:
    doc = load_fixture("request_tool_turn.json")
    req = prepare(json.dumps(doc["body"]).encode(), default_instructions=DEFAULT)
    sent = doc["body"]["input"]
    assert req.stripped_ids == 2  # the rs_ and fc_ ids Codex echoes from our (server-style) answer
    kinds = [it.get("type") for it in req.body["input"]]
    assert kinds == [it.get("type") for it in sent]
    for before, after in zip(sent, req.body["input"], strict=True):
        assert {k: v for k, v in before.items() if k != "id"} == {k: v for k, v in after.items() if k != "id"}
        if before.get("type") == "message":
            assert after["id"] == before["id"]  # client-made msg_<uuid> ids are kept


def test_codex_cli_headers_forwarded() -> None:
    headers = load_fixture("request.json")["headers"]
    forwarded = dict(upstream_session_headers(headers, "ignored"))
    assert set(forwarded) == {
        "session-id",
        "thread-id",
        "x-client-request-id",
        "x-codex-beta-features",
        "x-codex-window-id",
        "x-codex-turn-metadata",
    }
    assert forwarded["session-id"] == headers["session-id"]


# (id, client headers, expected forwarded)
HEADERS: list[tuple[str, list[tuple[str, str]], list[tuple[str, str]]]] = [
    ("none-adds-session-id", [("Content-Type", "application/json")], [("session_id", "S")]),
    (
        "2025-spelling",
        [("session_id", "a"), ("conversation_id", "a"), ("Authorization", "Bearer k")],
        [("session_id", "a"), ("conversation_id", "a")],
    ),
    ("2026-spelling", [("Session-Id", "b"), ("Thread-Id", "b")], [("session-id", "b"), ("thread-id", "b")]),
    (
        "codex-turn-headers",
        [("X-Codex-Turn-State", "t"), ("x-openai-subagent", "review"), ("x-codex-turn-metadata", "{}")],
        [
            ("x-codex-turn-state", "t"),
            ("x-openai-subagent", "review"),
            ("x-codex-turn-metadata", "{}"),
            ("session_id", "S"),
        ],
    ),
    (
        "secrets-and-framing-never",
        [("chatgpt-account-id", "a"), ("cookie", "c"), ("host", "h"), ("content-length", "1"), ("x-api-key", "k")],
        [("session_id", "S")],
    ),
]


@pytest.mark.parametrize(("client", "expected"), [h[1:] for h in HEADERS], ids=[h[0] for h in HEADERS])
def test_upstream_session_headers(client: list[tuple[str, str]], expected: list[tuple[str, str]]) -> None:
    assert upstream_session_headers(client, "S") == expected
