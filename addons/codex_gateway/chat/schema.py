"""Pydantic models of a `chat.completions` request, as strict about types as the OpenAI API.

Fields the Codex backend cannot take are still declared (and so type-checked like the OpenAI API does) so that
they can be dropped knowingly; anything undeclared is collected by `extra="allow"` and dropped too.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from typing import Any
from typing import Literal
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import StrictBool
from pydantic import StrictFloat
from pydantic import StrictInt
from pydantic import StrictStr
from pydantic import field_validator

from ..codex_request import MAX_SCHEMA_DEPTH
from ..codex_request import schema_depth

Number = StrictInt | StrictFloat
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp")
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextPart(_Loose):
    type: Literal["text"]
    text: StrictStr


class ImageURL(_Loose):
    url: StrictStr = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _image_reference(cls, url: str) -> str:
        # What the backend accepts as an `input_image`: an http(s) URL with a host, or a base64 data URL of a
        # raster image; anything else comes back as a 400 naming `input[i].content[j].image_url`, a field the
        # client never sent.
        lower = url[:40].lower()
        if lower.startswith(("http://", "https://")):
            if urlsplit(url).hostname:
                return url
            raise ValueError("the URL has no host")
        head, sep, payload = url.partition(",")
        media = head[5:].lower() if head.lower().startswith("data:") else ""
        if not sep or not media.endswith(";base64") or media[: -len(";base64")] not in IMAGE_TYPES:
            raise ValueError(f"expected an http(s) URL or a base64 data URL of a {'/'.join(IMAGE_TYPES)} image")
        try:
            if not base64.b64decode(payload, validate=True):
                raise ValueError("the data URL holds no image data")
        except binascii.Error:
            raise ValueError("the data URL's payload is not valid base64") from None
        return url


class ImagePart(_Loose):
    type: Literal["image_url"]
    image_url: ImageURL


class RefusalPart(_Loose):
    type: Literal["refusal"]
    refusal: StrictStr


UserPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]
AssistantPart = Annotated[TextPart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Loose):
    name: StrictStr = Field(min_length=1)
    arguments: StrictStr

    @field_validator("arguments")
    @classmethod
    def _json_arguments(cls, arguments: str) -> str:
        # The backend takes call arguments as a JSON string; say so here, naming the client's own field.
        try:
            orjson.loads(arguments)
        except orjson.JSONDecodeError:
            raise ValueError("expected a JSON string (the arguments the model produced)") from None
        return arguments


class ToolCall(_Loose):
    id: StrictStr = Field(min_length=1)
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Loose):
    role: Literal["system", "developer"]
    content: StrictStr | list[TextPart]
    name: StrictStr | None = None


class UserMessage(_Loose):
    role: Literal["user"]
    content: StrictStr | list[UserPart]
    name: StrictStr | None = None


class AssistantMessage(_Loose):
    role: Literal["assistant"]
    content: StrictStr | list[AssistantPart] | None = None
    refusal: StrictStr | None = None
    tool_calls: list[ToolCall] | None = None
    name: StrictStr | None = None
    # OpenAI-compatible servers commonly echo these back; they carry nothing the backend can use.
    reasoning_content: StrictStr | None = None
    function_call: Any = None
    audio: Any = None


class ToolMessage(_Loose):
    role: Literal["tool"]
    content: StrictStr | list[TextPart]
    tool_call_id: StrictStr = Field(min_length=1)
    name: StrictStr | None = None


Message = Annotated[SystemMessage | UserMessage | AssistantMessage | ToolMessage, Field(discriminator="role")]


class FunctionDef(_Loose):
    name: StrictStr = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None
    strict: StrictBool | None = None

    @field_validator("parameters")
    @classmethod
    def _object_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is None:
            return None
        if schema.get("type", "object") != "object":
            raise ValueError("expected a JSON Schema of type 'object' describing the function's arguments")
        if schema_depth(schema) > MAX_SCHEMA_DEPTH:
            raise ValueError(f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        return {"type": "object", "properties": {}, **schema}


class FunctionTool(_Loose):
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(_Loose):
    name: StrictStr


class NamedToolChoice(_Loose):
    type: Literal["function"]
    function: NamedFunction


class StreamOptions(_Loose):
    include_usage: StrictBool | None = None
    include_obfuscation: StrictBool | None = None


class Reasoning(_Loose):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class JSONSchemaFormat(_Loose):
    name: StrictStr = Field(min_length=1, max_length=64)
    description: StrictStr | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: StrictBool | None = None

    @field_validator("schema_")
    @classmethod
    def _shallow_enough(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        if schema is not None and schema_depth(schema) > MAX_SCHEMA_DEPTH:
            raise ValueError(f"the schema nests deeper than {MAX_SCHEMA_DEPTH} levels")
        return schema


class ResponseFormat(_Loose):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool | None = None
    stream_options: StreamOptions | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None
    reasoning_effort: Effort | None = None
    reasoning: Reasoning | None = None
    response_format: ResponseFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None
    prompt_cache_key: StrictStr | None = None
    stop: StrictStr | list[StrictStr] | None = None
    n: StrictInt | None = Field(default=None, ge=1, le=128)
    # Declared only to be type-checked, then dropped: the backend rejects them.
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: Number | None = Field(default=None, ge=0, le=2)
    top_p: Number | None = Field(default=None, ge=0, le=1)
    presence_penalty: Number | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: Number | None = Field(default=None, ge=-2, le=2)
    seed: StrictInt | None = None
    user: StrictStr | None = None
    metadata: dict[str, StrictStr] | None = None
    logit_bias: dict[str, Number] | None = None
    logprobs: StrictBool | None = None
    top_logprobs: StrictInt | None = Field(default=None, ge=0, le=20)
    store: StrictBool | None = None
    service_tier: StrictStr | None = None
    safety_identifier: StrictStr | None = None


# The fields above that are validated and then never forwarded (in the order they are reported).
DROPPED_FIELDS = (
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "user",
    "metadata",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "stream_options",
    "store",
    "service_tier",
    "safety_identifier",
    "n",
)
