"""Allow-list validation of requests to the fake Codex backend.

The point of the fake is to fail loudly wherever the real backend would, so
the rules are an allow-list: every field and item shape that is not known
to be accepted is rejected (pydantic v2 models with ``extra="forbid"`` and
``strict=True``, so ``"store": 0`` is not ``false``). Policy rules the real
backend applies before schema validation answer with FastAPI-style
``{"detail": "..."}`` bodies; schema-level problems (bad types, unknown
nested fields, bad images) use the OpenAI ``{"error": {...}}`` envelope,
as the real backend does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pydantic import ValidationError

from scripts.fakes.codex_schema import ALLOWED_FIELDS
from scripts.fakes.codex_schema import ITEM_MODELS
from scripts.fakes.codex_schema import PART_MODELS
from scripts.fakes.codex_schema import PASSTHROUGH_TOOLS
from scripts.fakes.codex_schema import ROLE_PARTS
from scripts.fakes.codex_schema import FunctionTool
from scripts.fakes.codex_schema import JsonSchemaFormat
from scripts.fakes.codex_schema import ResponsesBody
from scripts.fakes.codex_schema import SimpleFormat
from scripts.fakes.codex_schema import Strict
from scripts.fakes.codex_schema import ToolChoiceFunction
from scripts.fakes.codex_schema import ToolChoiceImageGeneration


@dataclass(frozen=True)
class Rejection:
    """What the fake answers instead of a stream; ``message`` is recorded as ``RecordedRequest.error``."""

    status: int
    body: dict[str, Any]
    message: str


def detail(message: str, status: int = 400) -> Rejection:
    """FastAPI-style rejection, used by the backend's own policy checks."""
    return Rejection(status, {"detail": message}, message)


def openai_error(message: str, *, code: str | None, param: str | None, status: int = 400) -> Rejection:
    """OpenAI-envelope rejection, used for schema-level errors."""
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return Rejection(status, body, message)


# ------------------------------------------------------------------ auth

TOKEN_INVALIDATED = "Your authentication token has been invalidated. Please try signing in again."
TOKEN_EXPIRED = "Provided authentication token is expired. Please try signing in again."


def check_auth(headers: Mapping[str, str], accept_tokens: Collection[str] | None) -> Rejection | None:
    """Require ``Bearer <token>`` plus ``chatgpt-account-id``; ``accept_tokens=None`` accepts any token.

    Shape problems get the 401 ``token_invalidated`` body the backend sends for a bad token; the
    recorded message names the actual reason so test failures are readable.
    """
    scheme, _, token = headers.get("authorization", "").partition(" ")
    reason = None
    if scheme.lower() != "bearer" or not token.strip():
        reason = "missing or malformed Authorization: Bearer header"
    elif not headers.get("chatgpt-account-id", "").strip():
        reason = "missing ChatGPT-Account-ID header"
    if reason is not None:
        body = {
            "error": {
                "message": TOKEN_INVALIDATED,
                "type": "invalid_request_error",
                "code": "token_invalidated",
                "param": None,
            },
            "status": 401,
        }
        return Rejection(401, body, f"{TOKEN_INVALIDATED} [fake: {reason}]")
    if accept_tokens is not None and token.strip() not in accept_tokens:
        return openai_error(TOKEN_EXPIRED, code="token_expired", param=None, status=401)
    return None


SERVER_ITEM_ID = re.compile(r"^(rs|msg|fc|ctc)_[0-9a-f]{16,}$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
IMAGE_MIME = ("image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp")
BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
ITEM_NOT_FOUND = (
    "Item with id '{}' not found. Items are not persisted when `store` is set to false. "
    "Try again with `store` set to true, or remove this item from your input."
)


# ------------------------------------------------------------------ helpers


def _param(prefix: str, loc: tuple[int | str, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _from_pydantic(exc: ValidationError, prefix: str) -> Rejection:
    """Translate the most relevant pydantic error into the OpenAI wording (missing fields first)."""
    err = sorted(exc.errors(), key=lambda e: e["type"] != "missing")[0]
    param = _param(prefix, tuple(err["loc"]))
    kind = err["type"]
    if kind == "missing":
        return openai_error(f"Missing required parameter: '{param}'.", code="missing_required_parameter", param=param)
    if kind == "extra_forbidden":
        return openai_error(f"Unknown parameter: '{param}'.", code="unknown_parameter", param=param)
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return openai_error(
            f"Invalid value: {err['input']!r}. Supported values are: {expected}.",
            code="invalid_value",
            param=param,
        )
    return openai_error(f"Invalid type for '{param}': {err['msg']}.", code="invalid_type", param=param)


def _parse(model: type[Strict], data: Any, prefix: str) -> Rejection | None:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return _from_pydantic(exc, prefix)
    return None


def _dispatch(
    value: Any,
    table: Mapping[str, type[Strict]] | Collection[str],
    prefix: str,
    default_type: str | None = None,
) -> tuple[str | None, Rejection | None]:
    """Check ``value`` is an object whose ``type`` is in ``table``; return (type, rejection)."""
    if not isinstance(value, dict):
        return None, openai_error(
            f"Invalid type for '{prefix}': expected an object.", code="invalid_type", param=prefix
        )
    kind = value.get("type", default_type)
    if kind is None:
        return None, openai_error(
            f"Missing required parameter: '{prefix}.type'.",
            code="missing_required_parameter",
            param=f"{prefix}.type",
        )
    if kind not in table:
        allowed = ", ".join(f"'{k}'" for k in table)
        return None, openai_error(
            f"Invalid value: {kind!r}. Supported values are: {allowed}.",
            code="invalid_value",
            param=f"{prefix}.type",
        )
    if isinstance(table, Mapping):
        return kind, _parse(table[kind], value, prefix)
    return kind, None


def check_image_url(url: str, param: str) -> Rejection | None:
    """Accept http(s) URLs and standard-base64 ``data:image/<png|jpeg|gif|webp>;base64,`` URLs."""
    if url.startswith(("http://", "https://")):
        return (
            None
            if urlparse(url).netloc
            else openai_error(
                f"Invalid '{param}'. Expected a valid URL, but got a value with an invalid format.",
                code="invalid_value",
                param=param,
            )
        )
    head = (
        f"Invalid '{param}'. Expected a base64-encoded data URL with an image MIME type "
        "(e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got "
    )
    match = re.fullmatch(r"data:([^;,]*)((?:;[^;,]*)*),(.*)", url, re.S)
    if match is None or "base64" not in match.group(2).split(";"):
        return openai_error(head + "a value with an invalid format.", code="invalid_value", param=param)
    mime, payload = match.group(1).lower(), match.group(3)
    if mime not in IMAGE_MIME:
        return openai_error(head + f"unsupported MIME type '{mime}'.", code="invalid_value", param=param)
    if not payload:
        return openai_error(head + "empty base64-encoded bytes.", code="invalid_value", param=param)
    if not BASE64.match(payload) or len(payload) % 4:
        return openai_error(head + "a value with an invalid format.", code="invalid_value", param=param)
    return None


def _check_parts(parts: Any, allowed: Collection[str], prefix: str) -> Rejection | None:
    """Validate a content/output list; strings are always fine."""
    if isinstance(parts, str):
        return None
    if not isinstance(parts, list):
        return openai_error(
            f"Invalid type for '{prefix}': expected a string or an array of content parts.",
            code="invalid_type",
            param=prefix,
        )
    for j, part in enumerate(parts):
        kind, rej = _dispatch(part, {k: PART_MODELS[k] for k in allowed}, f"{prefix}[{j}]")
        if rej is None and kind == "input_image":
            rej = check_image_url(part["image_url"], f"{prefix}[{j}].image_url")
        if rej is not None:
            return rej
    return None


def _check_item(item: Any, i: int) -> Rejection | None:
    prefix = f"input[{i}]"
    default = "message" if isinstance(item, dict) and "role" in item else None
    kind, rej = _dispatch(item, ITEM_MODELS, prefix, default)
    if rej is not None or kind is None:
        return rej
    if kind == "message":
        return _check_parts(item["content"], ROLE_PARTS[item["role"]], f"{prefix}.content")
    if kind in ("function_call_output", "custom_tool_call_output"):
        return _check_parts(item["output"], ("input_text", "input_image"), f"{prefix}.output")
    if kind == "function_call":
        try:
            json.loads(item["arguments"])
        except ValueError:
            return openai_error(
                f"Invalid '{prefix}.arguments': expected a JSON-encoded string.",
                code="invalid_value",
                param=f"{prefix}.arguments",
            )
    return None


def _check_pairing(items: list[dict[str, Any]]) -> Rejection | None:
    """Codex's mock invariant: calls and outputs pair up by call_id, outputs after calls."""
    pairs = (
        ("function_call", "function_call_output", "function call"),
        ("custom_tool_call", "custom_tool_call_output", "custom tool call"),
    )
    for call_type, out_type, label in pairs:
        calls: list[str] = []
        outputs: set[str] = set()
        for item in items:
            if item.get("type") == call_type:
                calls.append(item["call_id"])
            elif item.get("type") == out_type:
                if item["call_id"] not in calls:
                    return detail(f"No tool call found for {label} output with call_id {item['call_id']}.")
                outputs.add(item["call_id"])
        for call_id in calls:
            if call_id not in outputs:
                return detail(f"No tool output found for {label} {call_id}.")
    return None


def _check_tools(tools: list[Any]) -> Rejection | None:
    for i, tool in enumerate(tools):
        prefix = f"tools[{i}]"
        kind, rej = _dispatch(tool, ("function", *PASSTHROUGH_TOOLS), prefix)
        if rej is None and kind == "function":
            rej = _parse(FunctionTool, tool, prefix)
            if rej is None:
                rej = _check_function_tool(tool, prefix)
        if rej is not None:
            return rej
    return None


def _check_function_tool(tool: dict[str, Any], prefix: str) -> Rejection | None:
    name = tool["name"]
    if len(name) > 64:
        return openai_error(
            f"Invalid '{prefix}.name': string too long. Expected a string with maximum length 64, "
            f"but got a string with length {len(name)} instead.",
            code="string_above_max_length",
            param=f"{prefix}.name",
        )
    if not TOOL_NAME.match(name):
        return openai_error(
            f"Invalid '{prefix}.name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$'.",
            code="invalid_value",
            param=f"{prefix}.name",
        )
    if tool["parameters"].get("type") != "object":
        return openai_error(
            f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: "
            f'"object"\', got \'type: "{tool["parameters"].get("type")}"\'.',
            code="invalid_function_parameters",
            param=f"{prefix}.parameters",
        )
    return None


def _check_tool_choice(choice: Any, tools: list[Any]) -> Rejection | None:
    if choice is None or choice in ("auto", "none", "required"):
        return None
    if not isinstance(choice, dict):
        return openai_error(
            f"Invalid value: {choice!r}. Supported values are: 'auto', 'none', 'required'.",
            code="invalid_value",
            param="tool_choice",
        )
    if choice.get("type") == "image_generation":
        # A hosted tool forced by type (how a gateway drives the Codex image_generation tool).
        rej = _parse(ToolChoiceImageGeneration, choice, "tool_choice")
        if rej is None and not any(isinstance(t, dict) and t.get("type") == "image_generation" for t in tools):
            rej = openai_error(
                "Tool choice 'image_generation' not found in 'tools' parameter.",
                code="invalid_value",
                param="tool_choice",
            )
        return rej
    rej = _parse(ToolChoiceFunction, choice, "tool_choice")
    if rej is None and not any(t.get("type") == "function" and t.get("name") == choice["name"] for t in tools):
        rej = openai_error(
            f"Tool choice 'function' not found in 'tools' parameter: {choice['name']!r}.",
            code="invalid_value",
            param="tool_choice",
        )
    return rej


def _check_text_format(fmt: dict[str, Any] | None) -> Rejection | None:
    if fmt is None:
        return None
    _, rej = _dispatch(
        fmt,
        {"json_schema": JsonSchemaFormat, "json_object": SimpleFormat, "text": SimpleFormat},
        "text.format",
    )
    return rej


# ------------------------------------------------------------------ entry point


def validate_responses_body(
    body: Any, *, require_instructions: bool = True, allowed_models: Collection[str] | None = None
) -> Rejection | None:
    """Return why the real backend would reject ``body``, or None if it would accept it.

    Order: policy checks with ``{"detail"}`` bodies (unsupported field,
    instructions, store, stream, system role), then schema, then model,
    server-style item ids (404), then call/output pairing.
    """
    if not isinstance(body, dict):
        return detail("Request body must be a JSON object")
    for key in body:
        if key not in ALLOWED_FIELDS:
            return detail(f"Unsupported parameter: {key}")
    if require_instructions and body.get("instructions") in (None, ""):
        return detail("Instructions are required")
    if body.get("store", None) is not False:
        return detail("Store must be set to false")
    if body.get("stream", None) is not True:
        return detail("Stream must be set to true")
    items = body.get("input")
    if isinstance(items, list) and any(isinstance(it, dict) and it.get("role") == "system" for it in items):
        return detail("System messages are not allowed")
    rej = _parse(ResponsesBody, body, "")
    if rej is not None:
        return rej
    assert isinstance(items, list)
    for i, item in enumerate(items):
        if (rej := _check_item(item, i)) is not None:
            return rej
    tools = body.get("tools") or []
    text = body.get("text") or {}
    rej = (
        _check_tools(tools)
        or _check_tool_choice(body.get("tool_choice"), tools)
        or _check_text_format(text.get("format"))
    )
    if rej is not None:
        return rej
    if allowed_models is not None and body["model"] not in allowed_models:
        return detail(f"The '{body['model']}' model is not supported when using Codex with a ChatGPT account.")
    for item in items:
        item_id = item.get("id")
        if isinstance(item_id, str) and SERVER_ITEM_ID.match(item_id):
            return openai_error(ITEM_NOT_FOUND.format(item_id), code=None, param="input", status=404)
    return _check_pairing(items)
