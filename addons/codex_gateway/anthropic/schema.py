"""Pydantic models of an Anthropic Messages request, as strict about types as Anthropic's API.

Fields the Codex backend cannot take (`temperature`, `top_k`, `metadata`, `context_management`, …) are still
declared, so that they are type-checked as Anthropic checks them before they are dropped knowingly. Unknown
top-level fields are collected by `extra="allow"` and dropped too (Claude Code adds fields release by release);
content blocks and tools of unknown types are refused by their discriminated unions.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Discriminator
from pydantic import Field
from pydantic import StrictBool
from pydantic import StrictFloat
from pydantic import StrictInt
from pydantic import StrictStr
from pydantic import Tag
from pydantic import field_validator

from ..codex_request import MAX_SCHEMA_DEPTH
from ..codex_request import schema_depth

Number = StrictInt | StrictFloat
IMAGE_MEDIA = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Anthropic's own rule for a tool name; the backend's (64 characters) is met by shortening longer ones.
TOOL_NAME = r"^[a-zA-Z0-9_-]{1,128}$"


class _Loose(BaseModel):
    """`cache_control`, `citations` and other annotations the backend has no use for are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")


def _base64_payload(data: str) -> str:
    try:
        if not base64.b64decode(data, validate=True):
            raise ValueError("the base64 data is empty")
    except binascii.Error:
        raise ValueError("the data is not valid base64") from None
    return data


class _Base64Source(_Loose):
    """A `base64` source: the data must decode to something."""

    type: Literal["base64"]
    data: StrictStr = Field(min_length=1)

    @field_validator("data")
    @classmethod
    def _payload(cls, data: str) -> str:
        return _base64_payload(data)


class Base64ImageSource(_Base64Source):
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]


class URLSource(_Loose):
    type: Literal["url"]
    url: StrictStr = Field(min_length=1, pattern=r"^https?://[^/\s]+")


class FileSource(_Loose):
    type: Literal["file"]
    file_id: StrictStr


ImageSource = Annotated[Base64ImageSource | URLSource | FileSource, Field(discriminator="type")]


class TextBlock(_Loose):
    type: Literal["text"]
    text: StrictStr


class ImageBlock(_Loose):
    type: Literal["image"]
    source: ImageSource


class Base64PDFSource(_Base64Source):
    media_type: Literal["application/pdf"]


class PlainTextSource(_Loose):
    type: Literal["text"]
    media_type: Literal["text/plain"]
    data: StrictStr


class ContentSource(_Loose):
    type: Literal["content"]
    content: StrictStr | list[Annotated[TextBlock | ImageBlock, Field(discriminator="type")]]


DocumentSource = Annotated[
    Base64PDFSource | PlainTextSource | ContentSource | URLSource | FileSource, Field(discriminator="type")
]


class DocumentBlock(_Loose):
    type: Literal["document"]
    source: DocumentSource
    title: StrictStr | None = None
    context: StrictStr | None = None


class SearchResultBlock(_Loose):
    type: Literal["search_result"]
    source: StrictStr
    title: StrictStr
    content: list[TextBlock]


class ToolReferenceBlock(_Loose):
    """What Claude Code's tool search answers with: the named tool is now loaded (all tools always are here)."""

    type: Literal["tool_reference"]
    tool_name: StrictStr


ToolResultPart = Annotated[
    TextBlock | ImageBlock | DocumentBlock | SearchResultBlock | ToolReferenceBlock, Field(discriminator="type")
]


class ToolUseBlock(_Loose):
    type: Literal["tool_use"]
    id: StrictStr = Field(min_length=1)
    name: StrictStr = Field(min_length=1)
    input: dict[str, Any]


class ToolResultBlock(_Loose):
    type: Literal["tool_result"]
    tool_use_id: StrictStr = Field(min_length=1)
    content: StrictStr | list[ToolResultPart] | None = None
    is_error: StrictBool | None = None


class ThinkingBlock(_Loose):
    type: Literal["thinking"]
    thinking: StrictStr
    signature: StrictStr | None = None


class RedactedThinkingBlock(_Loose):
    type: Literal["redacted_thinking"]
    data: StrictStr


class ServerToolUseBlock(_Loose):
    """A hosted tool the server ran (web search): history only, it cannot be sent back to the backend."""

    type: Literal["server_tool_use"]
    id: StrictStr
    name: StrictStr
    input: dict[str, Any] = Field(default_factory=dict)


class WebSearchResultBlock(_Loose):
    type: Literal["web_search_tool_result"]
    tool_use_id: StrictStr
    content: Any = None


UserBlock = Annotated[
    TextBlock | ImageBlock | DocumentBlock | SearchResultBlock | ToolResultBlock, Field(discriminator="type")
]
AssistantBlock = Annotated[
    TextBlock | ToolUseBlock | ThinkingBlock | RedactedThinkingBlock | ServerToolUseBlock | WebSearchResultBlock,
    Field(discriminator="type"),
]


class UserMessage(_Loose):
    role: Literal["user"]
    content: StrictStr | list[UserBlock]


class AssistantMessage(_Loose):
    role: Literal["assistant"]
    content: StrictStr | list[AssistantBlock]


class SystemMessage(_Loose):
    """Claude Code 2.1 puts `system` entries inside `messages`: kept in place as developer messages."""

    role: Literal["system"]
    content: StrictStr | list[TextBlock]


Message = Annotated[UserMessage | AssistantMessage | SystemMessage, Field(discriminator="role")]


class CustomTool(_Loose):
    type: Literal["custom"] | None = None
    name: StrictStr = Field(pattern=TOOL_NAME)
    description: StrictStr | None = None
    input_schema: dict[str, Any]

    @field_validator("input_schema")
    @classmethod
    def _object_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        if schema.get("type", "object") != "object":
            raise ValueError("expected a JSON Schema of type 'object' describing the tool's input")
        if schema_depth(schema) > MAX_SCHEMA_DEPTH:
            raise ValueError(f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        return {"type": "object", "properties": {}, **schema}


class ServerTool(_Loose):
    """Anthropic-defined tools (`web_search_20250305`, `bash_20250124`, …): typed by a versioned name."""

    type: StrictStr = Field(pattern=r"^[a-z_]+_\d{8}$")
    name: StrictStr


def _tool_kind(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "custom" if kind in (None, "custom") else "server"


Tool = Annotated[Annotated[CustomTool, Tag("custom")] | Annotated[ServerTool, Tag("server")], Discriminator(_tool_kind)]


class ToolChoice(_Loose):
    type: Literal["auto", "any", "tool", "none"]
    name: StrictStr | None = None
    disable_parallel_tool_use: StrictBool | None = None


class ThinkingEnabled(_Loose):
    type: Literal["enabled"]
    budget_tokens: StrictInt = Field(ge=1024)
    display: Literal["summarized", "omitted"] | None = None


class ThinkingAdaptive(_Loose):
    type: Literal["adaptive", "between_tools"]
    display: Literal["summarized", "omitted"] | None = None


class ThinkingDisabled(_Loose):
    type: Literal["disabled"]


Thinking = Annotated[ThinkingEnabled | ThinkingAdaptive | ThinkingDisabled, Field(discriminator="type")]


class JSONOutputFormat(_Loose):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _shallow_enough(cls, schema: dict[str, Any]) -> dict[str, Any]:
        if schema_depth(schema) > MAX_SCHEMA_DEPTH:
            raise ValueError(f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        return schema


Effort = Literal["low", "medium", "high", "xhigh", "max"]


class OutputConfig(_Loose):
    effort: Effort | None = None
    format: JSONOutputFormat | None = None


class Metadata(_Loose):
    user_id: StrictStr | None = None


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    max_tokens: StrictInt = Field(ge=1)
    system: StrictStr | list[TextBlock] | None = None
    stream: StrictBool | None = None
    stop_sequences: list[StrictStr] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    output_format: JSONOutputFormat | None = None  # the structured-outputs beta's spelling of output_config.format
    # Declared only to be type-checked, then dropped: the backend has no equivalent.
    temperature: Number | None = Field(default=None, ge=0, le=1)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    top_k: StrictInt | None = Field(default=None, ge=0)
    metadata: Metadata | None = None
    context_management: dict[str, Any] | None = None
    service_tier: Literal["auto", "standard_only"] | None = None
    container: Any = None
    mcp_servers: list[Any] | None = None


class CountTokensRequest(MessagesRequest):
    """count_tokens takes the same body without `max_tokens` (and without `stream`)."""

    max_tokens: StrictInt = Field(default=1, ge=1)


# Top-level fields that are validated and then never forwarded (in the order they are reported).
DROPPED_FIELDS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "metadata",
    "context_management",
    "service_tier",
)
