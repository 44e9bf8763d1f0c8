"""Pydantic v2 allow-list models for Codex ``/responses`` request bodies.

Every model forbids extra fields and is strict (no coercion), because the
fake exists to catch what the real backend would reject; unions (input
items, content parts, tools) are dispatched by hand in ``codex_rules`` so
error locations read like the OpenAI ``param`` paths (``input[3].content[0]``).
"""

from __future__ import annotations

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class ReasoningParam(Strict):
    effort: Effort | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class TextParam(Strict):
    verbosity: Literal["low", "medium", "high"] | None = None
    format: dict[str, Any] | None = None


class JsonSchemaFormat(Strict):
    type: Literal["json_schema"]
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None
    description: str | None = None


class SimpleFormat(Strict):
    type: Literal["json_object", "text"]


class ResponsesBody(Strict):
    """Top-level allow-list; unions (input items, tools, tool_choice) are dispatched by hand."""

    model: str
    instructions: str | None = None
    input: list[Any]
    tools: list[Any] | None = None
    tool_choice: Any = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningParam | None = None
    store: bool
    stream: bool
    include: list[str] | None = None
    prompt_cache_key: str | None = None
    text: TextParam | None = None
    client_metadata: dict[str, str] | None = None
    service_tier: Literal["auto", "default", "flex", "priority", "scale"] | None = None


class ItemBase(Strict):
    id: str | None = None
    status: Literal["in_progress", "completed", "incomplete"] | None = None


class MessageItem(ItemBase):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "developer"]
    content: Any  # str | list of parts, checked by _check_parts
    phase: Literal["commentary", "final_answer"] | None = None


class FunctionCallItem(ItemBase):
    type: Literal["function_call"]
    name: str
    arguments: str
    call_id: str


class FunctionCallOutputItem(ItemBase):
    type: Literal["function_call_output"]
    call_id: str
    output: Any  # str | list of input_text/input_image


class SummaryText(Strict):
    type: Literal["summary_text"]
    text: str


class ReasoningText(Strict):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(ItemBase):
    type: Literal["reasoning"]
    summary: list[SummaryText]
    encrypted_content: str
    content: list[ReasoningText] | None = None


class CustomToolCallItem(ItemBase):
    type: Literal["custom_tool_call"]
    call_id: str
    name: str
    input: str


class CustomToolCallOutputItem(ItemBase):
    type: Literal["custom_tool_call_output"]
    call_id: str
    output: Any


class InputTextPart(Strict):
    type: Literal["input_text"]
    text: str


class OutputTextPart(Strict):
    type: Literal["output_text"]
    text: str
    annotations: list[Any] | None = None


class InputImagePart(Strict):
    type: Literal["input_image"]
    image_url: str
    detail: Literal["low", "high", "auto"] | None = None


class RefusalPart(Strict):
    type: Literal["refusal"]
    refusal: str


class FunctionTool(Strict):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any]
    strict: bool | None = None
    defer_loading: bool | None = None


class ToolChoiceFunction(Strict):
    type: Literal["function"]
    name: str


class ToolChoiceImageGeneration(Strict):
    type: Literal["image_generation"]


ITEM_MODELS: dict[str, type[Strict]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "reasoning": ReasoningItem,
    "custom_tool_call": CustomToolCallItem,
    "custom_tool_call_output": CustomToolCallOutputItem,
}
PART_MODELS: dict[str, type[Strict]] = {
    "input_text": InputTextPart,
    "output_text": OutputTextPart,
    "input_image": InputImagePart,
    "refusal": RefusalPart,
}
ROLE_PARTS = {
    "user": ("input_text", "input_image"),
    "developer": ("input_text", "input_image"),
    "assistant": ("output_text", "refusal"),
}
PASSTHROUGH_TOOLS = ("web_search", "local_shell", "custom", "namespace", "image_generation")
ALLOWED_FIELDS = frozenset(ResponsesBody.model_fields)
