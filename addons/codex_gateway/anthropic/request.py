"""Anthropic Messages request → Codex Responses request body (pure: no mitmproxy, no I/O).

The output satisfies the backend's rules exactly as the chat translator's does (`instructions` present,
`store: false`, `stream: true`, no `system` role, only accepted fields, every function call paired with its
output). What the client sent that cannot be forwarded is emulated (stop sequences), refused with a 400 naming it
(PDF documents, server tools without a backend equivalent, a prefilled assistant turn, unpaired tool use), or
dropped and recorded in `dropped`.

Reasoning, by this table (`output_config.effort` wins over the thinking budget):

| Anthropic request                                   | Codex `reasoning.effort` | thinking blocks            |
|-----------------------------------------------------|--------------------------|----------------------------|
| `output_config.effort` low/medium/high/xhigh/max    | low/medium/high/xhigh/xhigh | as `thinking` says      |
| `thinking: enabled`, budget < 2048 / < 8192 / < 20000 / more | low / medium / high / xhigh | yes             |
| `thinking: adaptive` (or `between_tools`), no effort | high (Anthropic's default effort) | yes               |
| `thinking: disabled`                                | low                      | none                       |
| no `thinking`, no effort                            | the backend's default    | none                       |

With thinking on, the request asks for `summary: auto` and `include: ["reasoning.encrypted_content"]`; the
summary becomes the thinking text (or is withheld with `display: "omitted"`), the encrypted reasoning becomes the
block's `signature` (prefixed with `SIGNATURE_PREFIX`), and a later turn sends it back as a reasoning item.
Thinking blocks whose signature the gateway did not make (another provider's) are dropped and recorded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from collections.abc import Mapping
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
from . import schema as s
from .models import codex_model_for

__all__ = ["MessagesUpstream", "translate_messages_request", "SIGNATURE_PREFIX", "upstream_tool_name"]

SIGNATURE_PREFIX = "codex-gateway.v1:"
MAX_TOOL_NAME = 64  # the backend's limit; Anthropic allows 128
BILLING_LINE = "x-anthropic-billing-header:"  # Claude Code's per-request system line: it would defeat the cache
_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_SESSION_IN_USER_ID = re.compile(r"session_([0-9a-fA-F-]{36})")


@dataclass
class MessagesUpstream:
    """The translated request plus what the gateway needs to answer the client."""

    body: dict[str, Any]
    model: str  # as the client named it: every answer echoes it
    stream: bool
    stop: tuple[str, ...]
    session_id: str
    thinking: str  # "off", "summarized" or "omitted": what thinking blocks the answer carries
    tool_names: dict[str, str] = field(default_factory=dict)  # shortened upstream name → the client's name
    dropped: list[str] = field(default_factory=list)
    betas: list[str] = field(default_factory=list)
    message_count: int = 0
    tool_count: int = 0

    def body_bytes(self) -> bytes:
        return orjson.dumps(self.body)


def translate_messages_request(
    raw: bytes,
    parsed: Any = None,
    headers: Mapping[str, str] | None = None,
    families: Iterable[tuple[str, str]] = (),
    *,
    counting: bool = False,
) -> MessagesUpstream:
    """Validates and translates a raw `/v1/messages` body. Raises `GatewayError` 400 naming the field.

    `headers`: the client's headers by lower-case name; `families`: the `codex_claude_models` mapping;
    `counting`: a `/v1/messages/count_tokens` body (no `max_tokens`)."""
    data = parsed if isinstance(parsed, dict) else parse_json_object(raw)
    headers = headers or {}
    for required in ("model", "messages") if counting else ("model", "messages", "max_tokens"):
        if required not in data:
            raise bad_request(f"{required}: Field required", required, "missing_required_parameter")
    try:
        req = (s.CountTokensRequest if counting else s.MessagesRequest).model_validate(data)
    except ValidationError as e:
        raise _validation_error(e, data) from e
    _refuse_unsupported(req)
    dropped: list[str] = [name for name in s.DROPPED_FIELDS if data.get(name) is not None]
    if counting:
        dropped = [d for d in dropped if d != "max_tokens"]
    instructions = _instructions(req.system, dropped)
    items = _Messages(dropped).translate(req.messages)
    body: dict[str, Any] = {
        "model": codex_model_for(req.model, families),
        "instructions": instructions or DEFAULT_INSTRUCTIONS,
        "input": items,
    }
    tools, names = _tools(req.tools or [])
    if req.tools is not None:
        body["tools"] = tools
    _tool_choice(req, tools, body)
    reasoning, thinking = _reasoning(req)
    if reasoning is not None:
        body["reasoning"] = reasoning
    body["store"] = False
    body["stream"] = True
    body["include"] = ["reasoning.encrypted_content"] if thinking != "off" else []
    session_id = _session_id(headers, req.metadata) or conversation_key(
        body["instructions"], items, namespace="messages"
    )
    body["prompt_cache_key"] = session_id
    fmt = (req.output_config.format if req.output_config else None) or req.output_format
    if fmt is not None:
        body["text"] = {"format": {"type": "json_schema", "name": "output", "schema": fmt.schema_, "strict": True}}
    if req.model_extra:
        dropped += sorted(req.model_extra)
    return MessagesUpstream(
        body=body,
        model=req.model,
        stream=bool(req.stream) and not counting,
        stop=tuple(x for x in req.stop_sequences or () if x),
        session_id=session_id,
        thinking=thinking,
        tool_names=names,
        dropped=dropped,
        betas=_betas(headers.get("anthropic-beta")),
        message_count=len(req.messages),
        tool_count=len(tools),
    )


def upstream_tool_name(name: str) -> str:
    """A client tool name the backend takes (at most 64 characters): longer ones (MCP tools) are cut and made
    unique with a hash of the whole name, the same on every turn, so history and answers map back and forth."""
    if len(name) <= MAX_TOOL_NAME:
        return name
    return f"{name[: MAX_TOOL_NAME - 9]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


# -- messages ---------------------------------------------------------------------------------------------


class _Messages:
    """Messages → input items in order; tool use must be answered in the very next user message (Anthropic's
    rule, which also gives the backend its call/output pairing)."""

    def __init__(self, dropped: list[str]) -> None:
        self.dropped = dropped
        self.items: list[dict[str, Any]] = []
        self.open_calls: dict[str, int] = {}  # tool_use id → index of the assistant message that made it
        self.parts: list[dict[str, Any]] = []
        self.role = "user"

    def translate(self, messages: list[Any]) -> list[dict[str, Any]]:
        last = len(messages) - 1
        for i, msg in enumerate(messages):
            if isinstance(msg, s.SystemMessage):  # may sit between a tool use and its result: no check here
                text = _joined(msg.content)
                if text:
                    self.items.append(_message("developer", [{"type": "input_text", "text": text}]))
            elif isinstance(msg, s.UserMessage):
                self._user(i, msg)
            else:
                if i == last:
                    raise bad_request(
                        f"messages.{i}: the Codex backend cannot continue a prefilled assistant message; "
                        "end the conversation with a user message.",
                        f"messages[{i}]",
                    )
                self._check_answered()
                self._assistant(i, msg)
        self._check_answered()
        return self.items

    def _flush(self) -> None:
        if self.parts:
            self.items.append(_message(self.role, self.parts))
            self.parts = []

    def _user(self, i: int, msg: s.UserMessage) -> None:
        self.role = "user"
        blocks = [s.TextBlock(type="text", text=msg.content)] if isinstance(msg.content, str) else msg.content
        for j, block in enumerate(blocks):
            if isinstance(block, s.ToolResultBlock):
                self._flush()
                self._tool_result(i, j, block)
            else:
                self.parts += _input_parts(block, f"messages.{i}.content.{j}")
        self._flush()
        self._check_answered()

    def _tool_result(self, i: int, j: int, block: s.ToolResultBlock) -> None:
        if block.tool_use_id not in self.open_calls:
            raise bad_request(
                f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{block.tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` block in "
                "the previous message.",
                f"messages[{i}].content[{j}].tool_use_id",
            )
        del self.open_calls[block.tool_use_id]
        self.items.append(
            {"type": "function_call_output", "call_id": block.tool_use_id, "output": _tool_output(block, i, j)}
        )

    def _check_answered(self) -> None:
        """Tool use left open after the user's next message (or with no user message after it at all)."""
        if not self.open_calls:
            return
        ids = ", ".join(self.open_calls)
        at = min(self.open_calls.values())
        raise bad_request(
            f"messages.{at}: `tool_use` ids were found without `tool_result` blocks immediately after: {ids}. "
            "Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
            f"messages[{at}].content",
        )

    def _assistant(self, i: int, msg: s.AssistantMessage) -> None:
        self.role = "assistant"
        blocks = [s.TextBlock(type="text", text=msg.content)] if isinstance(msg.content, str) else msg.content
        for j, block in enumerate(blocks):
            if isinstance(block, s.TextBlock):
                if block.text:
                    self.parts.append({"type": "output_text", "text": block.text})
            elif isinstance(block, s.ToolUseBlock):
                self._flush()
                if block.id in self.open_calls:
                    raise bad_request(f"messages.{i}.content.{j}: duplicate tool_use id {block.id}.")
                self.open_calls[block.id] = i
                self.items.append(
                    {
                        "type": "function_call",
                        "name": upstream_tool_name(block.name),
                        "arguments": json.dumps(block.input, ensure_ascii=False, separators=(",", ":")),
                        "call_id": block.id,
                    }
                )
            elif isinstance(block, s.ThinkingBlock | s.RedactedThinkingBlock):
                self._flush()
                self._reasoning_item(block, f"messages[{i}].content[{j}]")
            else:  # a hosted tool's call or result (web search): the answer text already holds what it found
                self.dropped.append(f"messages[{i}].content[{j}] ({block.type})")
        self._flush()

    def _reasoning_item(self, block: s.ThinkingBlock | s.RedactedThinkingBlock, where: str) -> None:
        carried = block.signature if isinstance(block, s.ThinkingBlock) else block.data
        if not carried or not carried.startswith(SIGNATURE_PREFIX) or len(carried) == len(SIGNATURE_PREFIX):
            self.dropped.append(f"{where} ({block.type} without a gateway signature)")
            return
        text = block.thinking if isinstance(block, s.ThinkingBlock) else ""
        self.items.append(
            {
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": text}] if text else [],
                "encrypted_content": carried[len(SIGNATURE_PREFIX) :],
            }
        )


def _message(role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": parts}


def _joined(content: str | list[s.TextBlock]) -> str:
    return content if isinstance(content, str) else "\n\n".join(b.text for b in content if b.text)


def _input_parts(block: Any, where: str) -> list[dict[str, Any]]:
    """A user content block (or a tool result's) → `input_text` / `input_image` parts."""
    if isinstance(block, s.TextBlock):
        return [{"type": "input_text", "text": block.text}] if block.text else []
    if isinstance(block, s.ImageBlock):
        return [{"type": "input_image", "image_url": _image_url(block.source, where)}]
    if isinstance(block, s.DocumentBlock):
        return _document_parts(block, where)
    if isinstance(block, s.SearchResultBlock):
        text = "\n\n".join(b.text for b in block.content)
        return [{"type": "input_text", "text": f"{block.title} ({block.source})\n\n{text}"}]
    if isinstance(block, s.ToolReferenceBlock):
        return [{"type": "input_text", "text": f"Tool {block.tool_name} is available."}]
    raise bad_request(f"{where}: unsupported content block.")  # unreachable: the schema admits no other


def _image_url(source: Any, where: str) -> str:
    if isinstance(source, s.Base64ImageSource):
        return f"data:{source.media_type};base64,{source.data}"
    if isinstance(source, s.URLSource):
        return source.url
    raise bad_request(
        f"{where}.source: file sources need Anthropic's Files API, which the Codex backend does not have; "
        "send the image as base64 or a URL."
    )


def _document_parts(block: s.DocumentBlock, where: str) -> list[dict[str, Any]]:
    source = block.source
    head = "\n\n".join(x for x in (block.title, block.context) if x)
    if isinstance(source, s.PlainTextSource):
        return [{"type": "input_text", "text": f"{head}\n\n{source.data}" if head else source.data}]
    if isinstance(source, s.ContentSource):
        inner = [s.TextBlock(type="text", text=source.content)] if isinstance(source.content, str) else source.content
        parts = [p for b in inner for p in _input_parts(b, f"{where}.source.content")]
        return ([{"type": "input_text", "text": head}] if head else []) + parts
    kind = "PDF" if isinstance(source, s.Base64PDFSource | s.URLSource) else "file"
    raise bad_request(
        f"{where}: the Codex backend takes no {kind} documents; send the document's text "
        "(a `document` with a `text` source, or plain text blocks).",
    )


def _tool_output(block: s.ToolResultBlock, i: int, j: int) -> str | list[dict[str, Any]]:
    """A tool result's content → the function call's output: a string, or parts when it holds images.
    `is_error` has no upstream flag: the output says so in words."""
    content = block.content
    prefix = "Error: " if block.is_error else ""
    if content is None or isinstance(content, str):
        return prefix + (content or "")
    parts = [p for k, b in enumerate(content) for p in _input_parts(b, f"messages.{i}.content.{j}.content.{k}")]
    if all(p["type"] == "input_text" for p in parts):
        return prefix + "\n".join(p["text"] for p in parts)
    if prefix:
        parts.insert(0, {"type": "input_text", "text": prefix.strip()})
    return parts


# -- system, tools, options ---------------------------------------------------------------------------------


def _instructions(system: str | list[s.TextBlock] | None, dropped: list[str]) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    texts = []
    for k, block in enumerate(system):
        if block.text.startswith(BILLING_LINE):
            dropped.append(f"system[{k}] (billing header)")
        elif block.text:
            texts.append(block.text)
    return "\n\n".join(texts)


def _tools(tools: list[Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for k, tool in enumerate(tools):
        if isinstance(tool, s.ServerTool):
            if tool.type.startswith("web_search_"):
                out.append({"type": "web_search"})
                continue
            raise bad_request(
                f"tools.{k}: the Anthropic tool '{tool.type}' ({tool.name}) has no equivalent on the Codex "
                "backend; define it as a custom tool with an input_schema.",
                f"tools[{k}]",
            )
        name = upstream_tool_name(tool.name)
        if name != tool.name:
            names[name] = tool.name
        schema = {key: value for key, value in tool.input_schema.items() if key != "$schema"}
        entry: dict[str, Any] = {"type": "function", "name": name}
        if tool.description is not None:
            entry["description"] = tool.description
        entry["parameters"] = schema
        entry["strict"] = False
        out.append(entry)
    return out, names


def _tool_choice(req: s.MessagesRequest, tools: list[dict[str, Any]], body: dict[str, Any]) -> None:
    choice = req.tool_choice
    if tools and not (choice and choice.disable_parallel_tool_use):
        body["parallel_tool_calls"] = True  # Anthropic's default: several tool_use blocks per answer
    elif choice and choice.disable_parallel_tool_use:
        body["parallel_tool_calls"] = False
    if choice is None:
        return
    if choice.type == "tool":
        if not choice.name:
            raise bad_request("tool_choice.name: Field required", "tool_choice.name", "missing_required_parameter")
        name = upstream_tool_name(choice.name)
        if not any(t.get("name") == name for t in tools):
            raise bad_request(f"tool_choice.name: the tool '{choice.name}' is not in `tools`.", "tool_choice.name")
        body["tool_choice"] = {"type": "function", "name": name}
    elif choice.type == "any":
        if not tools:
            raise bad_request("tool_choice: 'any' needs at least one tool in `tools`.", "tool_choice")
        body["tool_choice"] = "required"
    else:
        body["tool_choice"] = choice.type


def _reasoning(req: s.MessagesRequest) -> tuple[dict[str, Any] | None, str]:
    """(the `reasoning` field, the thinking mode) by the table in the module docstring."""
    thinking = req.thinking
    effort = req.output_config.effort if req.output_config else None
    if isinstance(thinking, s.ThinkingDisabled):
        return {"effort": _EFFORT[effort] if effort else "low"}, "off"
    if thinking is None:
        return ({"effort": _EFFORT[effort]} if effort else None), "off"
    if effort is None and isinstance(thinking, s.ThinkingEnabled):
        budget = thinking.budget_tokens
        effort = "low" if budget < 2048 else "medium" if budget < 8192 else "high" if budget < 20000 else "xhigh"
    mode = "omitted" if thinking.display == "omitted" else "summarized"
    # The summary is asked for even when omitted: its events keep the stream alive (pings) while the model thinks.
    return {"effort": _EFFORT[effort or "high"], "summary": "auto"}, mode


def _refuse_unsupported(req: s.MessagesRequest) -> None:
    if req.mcp_servers:
        raise bad_request("mcp_servers: the Codex backend cannot connect to MCP servers.", "mcp_servers")
    if req.container is not None:
        raise bad_request("container: the Codex backend has no code-execution containers.", "container")


def _session_id(headers: Mapping[str, str], metadata: s.Metadata | None) -> str | None:
    """The client's conversation: Claude Code's session header, else the session in `metadata.user_id` (a JSON
    object with `session_id`, or the older `user_…_session_<uuid>` string)."""
    header = headers.get("x-claude-code-session-id", "").strip()
    if header:
        return header[:200]
    user_id = metadata.user_id if metadata else None
    if not user_id:
        return None
    try:
        doc = json.loads(user_id)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("session_id"), str) and doc["session_id"]:
        return str(doc["session_id"])[:200]
    match = _SESSION_IN_USER_ID.search(user_id)
    return match.group(1) if match else None


def _betas(header: str | None) -> list[str]:
    return [b.strip() for b in (header or "").split(",") if b.strip()]


def _validation_error(e: ValidationError, data: Any) -> GatewayError:
    """Anthropic's wording: `<dotted location>: <message>`, for the most specific error."""
    errors = e.errors(include_url=False)
    err = max(errors, key=lambda er: len(er["loc"]))
    loc = ".".join(str(p) for p in _client_loc(data, err["loc"]))
    kind = err["type"]
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tag = str(ctx.get("tag"))[:100]  # the client's value, maybe huge: quote only its start
        expected = ctx.get("expected_tags")
        message = f"Input tag '{tag}' found using 'type' does not match any of the expected tags: {expected}"
    elif kind == "missing":
        message = "Field required"
    else:
        message = err["msg"]
    code = "missing_required_parameter" if kind == "missing" else "invalid_value"
    return bad_request(f"{loc}: {message}" if loc else message, loc or None, code)


def _client_loc(data: Any, loc: tuple[int | str, ...]) -> list[int | str]:
    """pydantic's error location minus its names for union members: the path as it runs through the client's
    JSON (a part that is no key or index of the node reached so far is such a name)."""
    out: list[int | str] = []
    node = data
    tag_seen = False
    for n, part in enumerate(loc):
        if isinstance(node, dict) and not tag_seen and part in (node.get("type"), node.get("role")):
            tag_seen = True  # a discriminated union's tag (it may also be a key: a text block's "text")
            continue
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node, tag_seen = node[part], False
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node, tag_seen = node[part], False
        elif n < len(loc) - 1 or _is_label(part):
            continue  # a union member's label
        out.append(part)
    return out


def _is_label(part: int | str) -> bool:
    return isinstance(part, str) and ("[" in part or part[:1].isupper() or part in ("str", "int", "bool", "dict"))
