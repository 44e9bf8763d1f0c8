"""`POST /v1/responses` request → Codex Responses request body (pure: no mitmproxy, no I/O).

Responses-API clients (the OpenAI SDK's `responses.create`/`responses.stream()`, the Codex CLI pointed at the
gateway, agent frameworks) already speak the backend's language; the gateway only fixes up what the ChatGPT
backend refuses, and forwards everything else unchanged (unknown item and tool types included: the backend knows
more of them than the gateway does).

Wiring (addon):

    req = prepare(raw, default_instructions=DEFAULT_INSTRUCTIONS)   # GatewayError 400 → answer locally
    upstream POST {codex_upstream}/responses, body req.body_bytes(), headers:
        Authorization / ChatGPT-Account-ID (the account), originator, User-Agent, Accept: text/event-stream,
        Content-Type: application/json, plus upstream_session_headers(client_headers, req.session_id)
    req.stream → install responses.stream.ResponsesSSEPassThrough; else aggregate (responses.stream)

The Codex CLI with the gateway as its backend (`~/.codex/config.toml`; verified with codex-cli 0.171.0, whose
requests are recorded in tests/fixtures/codex_cli; `env_key` only when the gateway has a `gateway_api_key`):

    model = "gpt-5.4"
    model_provider = "codex-gateway"

    [model_providers.codex-gateway]
    name = "codex-gateway"
    base_url = "http://127.0.0.1:8787/v1"
    wire_api = "responses"
    env_key = "CODEX_GATEWAY_KEY"
    supports_websockets = false

It then sends no `instructions` (its prompt is the first developer message), `session-id`/`thread-id`/
`x-client-request-id` and `x-codex-*` turn headers, client-made `msg_<uuid>` ids, and on later requests of a
turn the server-style `rs_`/`fc_` ids of the previous answer's items.

Fix-ups, each one deterministic (equal request bytes give equal upstream bytes, so server replay matches):

- `stream: true` and `store: false` are always sent; the client's `stream` decides how it is answered.
- `instructions` defaults to `default_instructions` when absent, null or empty (the backend requires it).
- Input: a string becomes one user message; `system` role → `developer`; string message content becomes one
  text part; part types are matched to the role (`input_text` ↔ `output_text`); a chat-style
  `image_url: {"url": ...}` becomes the string form; server-assigned item ids (`rs_`/`msg_`/`fc_`/... + hex,
  which the backend answers with a 404 since nothing is stored) are stripped, client-made ids (`msg_<uuid>`,
  as the Codex CLI sends) are kept; reasoning items without `encrypted_content` cannot be resolved without
  storage and are dropped.
- `include` always carries `reasoning.encrypted_content`, so output items can be sent back next turn.
- Tools: chat-style `{"type":"function","function":{...}}` is flattened, a missing `parameters` becomes an
  empty object schema; every other tool type passes unchanged. A chat-style function `tool_choice` is flattened.
- Parameters the backend rejects (`max_output_tokens`, `temperature`, `top_p`, `truncation`, `user`,
  `metadata`, ...) and any other unknown top-level parameter are dropped and listed in `dropped`.
- `previous_response_id`, `conversation`, `prompt` (stored prompts), `background: true` and `item_reference`
  input items need server-side storage, which the backend does not keep: a 400 naming the parameter.
- `prompt_cache_key` is kept, or derived from the conversation's prefix (stable across turns); it is also the
  `session_id` header for clients that send no session header of their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson

from ..codex_request import conversation_key
from ..errors import bad_request
from ..errors import parse_json_object

__all__ = [
    "ResponsesRequest",
    "prepare",
    "upstream_session_headers",
    "SESSION_HEADERS",
    "SERVER_ITEM_ID",
]

# Top-level fields the backend accepts, in the order they are sent; it answers any other one with
# `400 {"detail": "Unsupported parameter: <name>"}`.
_FORWARDED = (
    "model",
    "instructions",
    "input",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "store",
    "stream",
    "include",
    "prompt_cache_key",
    "text",
    "client_metadata",
    "service_tier",
)
# Need a stored response, conversation or prompt: the backend keeps nothing (store is always false).
_NEEDS_STORAGE = {
    "previous_response_id": "previous_response_id is not supported: the Codex backend stores no responses "
    "(store is always false). Send the whole conversation in 'input' instead (append the previous "
    "response's output items and your new input).",
    "conversation": "conversation is not supported: the Codex backend stores no conversations. Send the whole "
    "conversation in 'input' instead.",
    "prompt": "prompt (a stored prompt template) is not supported by the Codex backend: send 'instructions' "
    "and 'input' instead.",
}
ENCRYPTED_REASONING = "reasoning.encrypted_content"
# Ids the backend assigned to output items: 404 "Item with id ... not found" when sent back with store=false.
SERVER_ITEM_ID = re.compile(r"^[a-z]{1,8}_[0-9a-f]{16,}$")

# Client headers forwarded upstream: the session and turn headers Codex CLI versions send (2025: `session_id`
# and `conversation_id`; 2026: `session-id`, `thread-id`, `x-client-request-id`; sub-agent and `x-codex-*` turn
# headers; see the recorded request in tests/fixtures/codex_cli). Anything else (credentials, framing,
# hop-by-hop) is not.
SESSION_HEADERS = (
    "session_id",
    "session-id",
    "conversation_id",
    "thread-id",
    "thread_id",
    "x-client-request-id",
    "x-openai-subagent",
    "x-openai-internal-codex-residency",
)
_SESSION_PREFIXES = ("x-codex-",)


@dataclass
class ResponsesRequest:
    """The upstream body plus what the gateway needs to answer the client and summarise the flow."""

    body: dict[str, Any]
    model: str
    stream: bool
    session_id: str
    dropped: list[str] = field(default_factory=list)
    stripped_ids: int = 0  # server-assigned item ids removed from input
    message_count: int = 0  # input items
    tool_count: int = 0

    def body_bytes(self) -> bytes:
        # Dict order is fixed by construction, so equal requests give equal bytes (server replay matches on them).
        return orjson.dumps(self.body)


def prepare(raw: bytes, *, default_instructions: str) -> ResponsesRequest:
    """Validates and fixes up a raw `/v1/responses` body. Raises `GatewayError` (400) naming the `param`."""
    data = parse_json_object(raw)

    for name, message in _NEEDS_STORAGE.items():
        if data.get(name) not in (None, "", {}):
            raise bad_request(message, name, "unsupported_parameter")
    if data.get("background") is True:
        raise bad_request(
            "background mode is not supported: the Codex backend stores no responses to poll later.",
            "background",
            "unsupported_parameter",
        )

    model = data.get("model")
    if model is None:
        raise bad_request("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("Invalid type for 'model': expected a non-empty string.", "model", "invalid_type")
    stream = data.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("Invalid type for 'stream': expected a boolean.", "stream", "invalid_type")
    instructions = data.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        # The public API also takes a list of input items here; the backend only takes text.
        raise bad_request("Invalid type for 'instructions': expected a string.", "instructions", "invalid_type")

    dropped: list[str] = []
    items, stripped = _input_items(data.get("input"), dropped)
    tools = _tools(data.get("tools"))

    body: dict[str, Any] = {}
    for name in _FORWARDED:
        value = data.get(name)
        if name == "model":
            body[name] = model
        elif name == "instructions":
            body[name] = instructions or default_instructions
        elif name == "input":
            body[name] = items
        elif name == "tools":
            if tools is not None:
                body[name] = tools
        elif name == "tool_choice":
            if value is not None:
                body[name] = _tool_choice(value)
        elif name == "reasoning":
            if value is not None:
                body[name] = _reasoning(value, dropped)
        elif name == "store":
            body[name] = False
            if value not in (None, False):
                dropped.append("store")  # the backend keeps nothing; store=true cannot be honoured
        elif name == "stream":
            body[name] = True
        elif name == "include":
            body[name] = _include(value)
        elif name == "prompt_cache_key":
            key = (
                value
                if isinstance(value, str) and value
                else conversation_key(body["instructions"], items, namespace="responses")
            )
            body[name] = key
        elif value is not None:
            body[name] = value

    forwarded = set(_FORWARDED)
    dropped += [k for k, v in data.items() if k not in forwarded and v is not None and v is not False]
    return ResponsesRequest(
        body=body,
        model=model,
        stream=bool(stream),
        session_id=body["prompt_cache_key"],
        dropped=_unique(dropped),
        stripped_ids=stripped,
        message_count=len(items),
        tool_count=len(tools or ()),
    )


def upstream_session_headers(
    client_headers: Iterable[tuple[str, str]] | Mapping[str, str], session_id: str
) -> list[tuple[str, str]]:
    """The client's session/turn headers to forward (names lower-cased, order kept), plus `session_id` when the
    client sent neither `session_id` nor `session-id` (so the backend can route and cache the conversation)."""
    pairs = client_headers.items() if isinstance(client_headers, Mapping) else client_headers
    out: list[tuple[str, str]] = []
    for name, value in pairs:
        lower = name.lower()
        if lower in SESSION_HEADERS or lower.startswith(_SESSION_PREFIXES):
            out.append((lower, value))
    if not any(name in ("session_id", "session-id") for name, _ in out):
        out.append(("session_id", session_id))
    return out


# -- input ----------------------------------------------------------------------------------------------------


def _input_items(value: Any, dropped: list[str]) -> tuple[list[Any], int]:
    if value is None:
        raise bad_request("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": value}]}], 0
    if not isinstance(value, list):
        raise bad_request(
            "Invalid type for 'input': expected a string or an array of input items.", "input", "invalid_type"
        )
    items: list[Any] = []
    stripped = 0
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise bad_request(f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]", "invalid_type")
        kind = item.get("type")
        if kind == "item_reference":
            raise bad_request(
                f"input[{i}] is an item_reference, which needs a stored item: the Codex backend stores nothing. "
                "Send the item itself instead.",
                f"input[{i}]",
                "unsupported_parameter",
            )
        if kind == "reasoning" and not item.get("encrypted_content"):
            # Without storage only the encrypted content lets the backend use a reasoning item.
            dropped.append(f"input[{i}]")
            continue
        fixed = dict(item)
        item_id = fixed.get("id")
        if isinstance(item_id, str) and SERVER_ITEM_ID.match(item_id):
            del fixed["id"]
            stripped += 1
        if "role" in fixed and kind in (None, "message"):
            _fix_message(fixed, i)
        items.append(fixed)
    if stripped:
        dropped.append("input[].id")
    return items, stripped


def _fix_message(msg: dict[str, Any], i: int) -> None:
    role = msg.get("role")
    if role == "system":
        msg["role"] = role = "developer"
    content = msg.get("content")
    text_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        msg["content"] = [{"type": text_type, "text": content}]
        return
    if not isinstance(content, list):
        return  # the backend names the problem
    parts: list[Any] = []
    for part in content:
        if isinstance(part, dict):
            kind = part.get("type")
            if kind in ("input_text", "output_text", "text") and kind != text_type:
                part = {**part, "type": text_type}
            elif kind == "input_image" and isinstance(part.get("image_url"), dict):
                url = part["image_url"].get("url")
                part = {**part, "image_url": url}
        parts.append(part)
    msg["content"] = parts


# -- tools and options ----------------------------------------------------------------------------------------


def _tools(value: Any) -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_request("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    out: list[Any] = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise bad_request(f"Invalid type for 'tools[{i}]': expected an object.", f"tools[{i}]", "invalid_type")
        if tool.get("type") == "function":
            fn = tool.get("function")
            if isinstance(fn, dict) and "name" not in tool:
                tool = {"type": "function", **fn}  # chat-completions shape
            if "parameters" not in tool or tool["parameters"] is None:
                tool = {**tool, "parameters": {"type": "object", "properties": {}}}
        out.append(tool)
    return out


def _tool_choice(value: Any) -> Any:
    if isinstance(value, dict) and value.get("type") == "function" and "name" not in value:
        fn = value.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return {"type": "function", "name": fn["name"]}
    return value


def _reasoning(value: Any, dropped: list[str]) -> Any:
    if not isinstance(value, dict):
        raise bad_request("Invalid type for 'reasoning': expected an object.", "reasoning", "invalid_type")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in ("effort", "summary"):
            if item is not None:
                out[key] = item
        elif key == "generate_summary":  # deprecated alias of summary
            if item is not None and value.get("summary") is None:
                out["summary"] = item
        else:
            dropped.append(f"reasoning.{key}")
    return out


def _include(value: Any) -> list[Any]:
    if value is None:
        return [ENCRYPTED_REASONING]
    if not isinstance(value, list):
        raise bad_request("Invalid type for 'include': expected an array of strings.", "include", "invalid_type")
    return value if ENCRYPTED_REASONING in value else [*value, ENCRYPTED_REASONING]


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
