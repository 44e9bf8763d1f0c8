"""`chat.completions` request → Codex Responses request body (pure: no mitmproxy, no I/O).

The output always satisfies the backend's rules: `instructions` present, `store: false`, `stream: true`, no
`system` role, only fields the backend accepts, every function call paired with its output. Whatever the
client sent that cannot be forwarded is either emulated (stop sequences), rejected with a 400 naming the
parameter (n > 1, broken tool-call pairing) or dropped and recorded in `dropped`.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson
from pydantic import ValidationError

from ..codex_request import DEFAULT_INSTRUCTIONS
from ..codex_request import conversation_key
from ..errors import GatewayError
from ..errors import bad_request
from ..errors import parse_json_object
from .schema import DROPPED_FIELDS
from .schema import AssistantMessage
from .schema import ChatRequest
from .schema import ImagePart
from .schema import RefusalPart
from .schema import SystemMessage
from .schema import TextPart
from .schema import ToolMessage
from .schema import UserMessage

__all__ = ["CodexRequest", "translate_chat_request"]

MAX_STOP_SEQUENCES = 4


@dataclass
class CodexRequest:
    """The translated request plus what the gateway needs to answer the client."""

    body: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    stop: tuple[str, ...]
    session_id: str
    dropped: list[str] = field(default_factory=list)
    message_count: int = 0
    tool_count: int = 0

    def body_bytes(self) -> bytes:
        # Dict order is fixed by construction, so equal requests give equal bytes (server replay matches on them).
        return orjson.dumps(self.body)


def translate_chat_request(raw: bytes, parsed: Any = None) -> CodexRequest:
    """Validates and translates a raw request body. Raises `GatewayError` (400) with the offending `param`.

    `parsed`: `raw` already parsed by the caller, if it did (only a JSON object is taken; anything else is parsed
    again, so that the client gets the same 400 as without it). It is read, never modified."""
    data = parsed if isinstance(parsed, dict) else parse_json_object(raw)
    for legacy in ("functions", "function_call"):
        if data.get(legacy) is not None:  # silently dropping them would silently drop the client's tools
            raise bad_request(
                f"'{legacy}' is the deprecated form of tools and is not supported: send 'tools' and 'tool_choice'.",
                legacy,
                "unsupported_parameter",
            )
    if "messages" not in data:
        raise bad_request("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if "model" not in data:
        raise bad_request("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    try:
        req = ChatRequest.model_validate(data)
    except ValidationError as e:
        raise _validation_error(e) from e
    if req.n is not None and req.n > 1:
        raise bad_request("n > 1 is not supported by the Codex backend: ask for one choice at a time.", "n")
    stop = _stop_sequences(req.stop)

    instructions, items = _translate_messages(req)
    body: dict[str, Any] = {
        "model": req.model,
        "instructions": instructions or DEFAULT_INSTRUCTIONS,
        "input": items,
    }
    tools = [_flat_tool(t.function) for t in req.tools or ()]
    if req.tools is not None:
        body["tools"] = tools
    if req.tool_choice is not None:
        body["tool_choice"] = _tool_choice(req, {t["name"] for t in tools})
    if req.parallel_tool_calls is not None:
        body["parallel_tool_calls"] = req.parallel_tool_calls
    effort = req.reasoning_effort or (req.reasoning.effort if req.reasoning else None)
    if effort is not None:
        summary = (req.reasoning.summary if req.reasoning else None) or "auto"
        body["reasoning"] = {"effort": effort, "summary": summary}
    body["store"] = False
    body["stream"] = True
    body["include"] = ["reasoning.encrypted_content"] if effort is not None else []
    session_id = req.prompt_cache_key or conversation_key(body["instructions"], items)
    body["prompt_cache_key"] = session_id
    text = _text_options(req)
    if text:
        body["text"] = text

    # Most requests carry none of them: one set intersection first, then the fields in their reporting order.
    dropped = [name for name in DROPPED_FIELDS if name in data] if not _DROPPED.isdisjoint(data) else []
    if req.reasoning is not None and effort is None and req.reasoning.summary is not None:
        dropped.append("reasoning.summary")  # a summary without an effort: the backend would reason by default
    if req.model_extra:
        dropped += sorted(k for k in req.model_extra if k not in DROPPED_FIELDS)
    dropped += [f"messages[{i}].name" for i, m in enumerate(req.messages) if m.name is not None]
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    return CodexRequest(
        body=body,
        model=req.model,
        stream=bool(req.stream),
        include_usage=include_usage and bool(req.stream),
        stop=stop,
        session_id=session_id,
        dropped=dropped,
        message_count=len(req.messages),
        tool_count=len(tools),
    )


def _translate_messages(req: ChatRequest) -> tuple[str, list[dict[str, Any]]]:
    instructions: list[str] = []
    items: list[dict[str, Any]] = []
    open_calls: dict[str, int] = {}  # call id → index of the assistant message that made it
    for i, msg in enumerate(req.messages):
        if isinstance(msg, SystemMessage):
            text = _joined_text(msg.content)
            if text:
                instructions.append(text)
        elif isinstance(msg, UserMessage):
            items.append({"type": "message", "role": "user", "content": _user_parts(msg.content)})
        elif isinstance(msg, AssistantMessage):
            parts = _assistant_parts(msg)
            if parts:
                items.append({"type": "message", "role": "assistant", "content": parts})
            for call in msg.tool_calls or ():
                if call.id in open_calls:
                    raise bad_request(
                        f"Duplicate tool call id '{call.id}' in messages[{i}].tool_calls.",
                        f"messages[{i}].tool_calls",
                    )
                open_calls[call.id] = i
                items.append(
                    {
                        "type": "function_call",
                        "name": call.function.name,
                        "arguments": call.function.arguments,
                        "call_id": call.id,
                    }
                )
        elif isinstance(msg, ToolMessage):
            if msg.tool_call_id not in open_calls:
                raise bad_request(
                    f"Invalid parameter: messages[{i}] with role 'tool' must be a response to a preceding message "
                    f"with 'tool_calls' (no earlier tool call has id '{msg.tool_call_id}').",
                    f"messages[{i}].tool_call_id",
                )
            del open_calls[msg.tool_call_id]
            items.append(
                {"type": "function_call_output", "call_id": msg.tool_call_id, "output": _joined_text(msg.content)}
            )
    if open_calls:
        first = min(open_calls.values())
        ids = ", ".join(open_calls)
        raise bad_request(
            f"An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {ids}",
            f"messages[{first}].tool_calls",
        )
    return "\n\n".join(instructions), items


def _joined_text(content: str | list[TextPart]) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content)


def _user_parts(content: str | list[TextPart | ImagePart]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            parts.append({"type": "input_text", "text": part.text})
        else:
            image: dict[str, Any] = {"type": "input_image", "image_url": part.image_url.url}
            if part.image_url.detail is not None:
                image["detail"] = part.image_url.detail
            parts.append(image)
    return parts


def _assistant_parts(msg: AssistantMessage) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if isinstance(msg.content, str):
        if msg.content:
            parts.append({"type": "output_text", "text": msg.content})
    else:
        for part in msg.content or ():
            if isinstance(part, RefusalPart):
                parts.append({"type": "refusal", "refusal": part.refusal})
            elif part.text:
                parts.append({"type": "output_text", "text": part.text})
    if msg.refusal:
        parts.append({"type": "refusal", "refusal": msg.refusal})
    return parts


def _flat_tool(fn: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {"type": "function", "name": fn.name}
    if fn.description is not None:
        tool["description"] = fn.description
    tool["parameters"] = fn.parameters if fn.parameters is not None else {"type": "object", "properties": {}}
    tool["strict"] = bool(fn.strict)
    return tool


def _tool_choice(req: ChatRequest, names: set[str]) -> Any:
    choice = req.tool_choice
    if isinstance(choice, str):
        if choice == "required" and not names:
            raise bad_request("tool_choice 'required' needs at least one tool in 'tools'.", "tool_choice")
        return choice
    assert choice is not None
    if choice.function.name not in names:
        raise bad_request(
            f"tool_choice names the function '{choice.function.name}', which is not in 'tools'.", "tool_choice"
        )
    return {"type": "function", "name": choice.function.name}


def _text_options(req: ChatRequest) -> dict[str, Any]:
    text: dict[str, Any] = {}
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema":
        if fmt.json_schema is None:
            raise bad_request(
                "Missing required parameter: 'response_format.json_schema'.",
                "response_format.json_schema",
                "missing_required_parameter",
            )
        js = fmt.json_schema
        out: dict[str, Any] = {"type": "json_schema", "name": js.name}
        if js.description is not None:
            out["description"] = js.description
        out["schema"] = js.schema_ if js.schema_ is not None else {"type": "object"}
        out["strict"] = bool(js.strict)
        text["format"] = out
    elif fmt is not None and fmt.type == "json_object":
        text["format"] = {"type": "json_object"}
    if req.verbosity is not None:
        text["verbosity"] = req.verbosity
    return text


def _stop_sequences(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if len(stops) > MAX_STOP_SEQUENCES:
        raise bad_request(f"'stop' takes at most {MAX_STOP_SEQUENCES} sequences.", "stop")
    return tuple(s for s in stops if s)


_DROPPED = frozenset(DROPPED_FIELDS)


_TAGS = {
    "messages": {"system", "developer", "user", "assistant", "tool"},
    "content": {"text", "image_url", "refusal"},
}


def _validation_error(e: ValidationError) -> GatewayError:
    errors = e.errors(include_url=False)
    # The deepest location is the most specific one (union members each report their own failure).
    err = max(errors, key=lambda er: len(er["loc"]))
    param = _param(err["loc"])
    kind = err["type"]
    alternatives = [er["msg"] for er in errors if _param(er["loc"]) == param and er["type"].endswith("_type")]
    if len(alternatives) > 1:
        # A union (e.g. string or list): name every accepted shape, not just the first member's.
        accepted = " or ".join(m.removeprefix("Input should be ") for m in alternatives)
        return bad_request(f"Invalid type for '{param}': expected {accepted}.", param, "invalid_type")
    if kind == "union_tag_not_found":
        field_name = "role" if param.startswith("messages") and "." not in param else "type"
        return bad_request(
            f"Missing required parameter: '{param}.{field_name}'.",
            f"{param}.{field_name}",
            "missing_required_parameter",
        )
    if kind == "union_tag_invalid":
        tag = str(err.get("ctx", {}).get("tag"))[:100]  # the client's value, maybe huge: quote only its start
        field_name = "role" if param.startswith("messages") and param.count(".") == 0 else "type"
        param = f"{param}.{field_name}"
        message = f"Invalid value: '{tag}'. Supported values are: {err.get('ctx', {}).get('expected_tags')}."
    elif kind == "missing":
        message = f"Missing required parameter: '{param}'."
    elif kind == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
    else:
        message = f"Invalid value for '{param}': {err['msg']}."
    code = "missing_required_parameter" if kind == "missing" else "invalid_value"
    if kind in ("string_type", "int_type", "bool_type", "float_type", "dict_type", "list_type", "model_type"):
        code = "invalid_type"
    return bad_request(message, param, code)


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    skip_tag_of: str | None = None
    last_key = ""
    for n, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
            skip_tag_of = last_key
            continue
        # After a list index, pydantic names the member of a discriminated union (a message's role, a user
        # content part's type); a plain list of text parts has no such tag, so a last "text" is the field.
        is_tag = skip_tag_of in _TAGS and part in _TAGS[skip_tag_of]
        if is_tag and (skip_tag_of == "messages" or n < len(loc) - 1):
            skip_tag_of = None
            continue
        skip_tag_of = None
        if "[" in part or part[:1].isupper() or part in ("str", "int", "float", "bool", "dict", "list", "none"):
            continue  # pydantic's label for a union member, not a field
        last_key = part
        out += f".{part}" if out else part
    return out
