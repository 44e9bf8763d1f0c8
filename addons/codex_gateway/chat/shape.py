"""The shape of a chat answer, streamed or not: what a replay compares against a recording (pure).

A shape is what must stay the same when a captured request is answered again by a different model run: the
finish reason, the number and names of tool calls, whether there is text, whether the chunk sequence is valid,
and whether a usage chunk came.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson

from ..sse import SSEDecoder

__all__ = ["ChatShape", "shape_of_answer"]


@dataclass
class ChatShape:
    status: int
    finish_reason: str | None = None
    tool_calls: list[str] = field(default_factory=list)
    has_text: bool = False
    usage_chunk: bool = False
    done: bool = False
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.problems

    def same_as(self, other: ChatShape) -> list[str]:
        """Differences that matter between a recorded answer (`other`) and this one."""
        diffs = []
        if self.finish_reason != other.finish_reason:
            diffs.append(f"finish_reason {self.finish_reason!r} != recorded {other.finish_reason!r}")
        if self.tool_calls != other.tool_calls:
            diffs.append(f"tool calls {self.tool_calls} != recorded {other.tool_calls}")
        if self.has_text != other.has_text:
            diffs.append(f"text present {self.has_text} != recorded {other.has_text}")
        return diffs


def shape_of_answer(status: int, content_type: str, body: bytes, *, include_usage: bool | None = None) -> ChatShape:
    shape = ChatShape(status=status)
    if status >= 400:
        try:
            shape.error = str(orjson.loads(body)["error"]["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            shape.error = body[:200].decode("utf-8", "replace")
        return shape
    if content_type.startswith("text/event-stream"):
        _stream_shape(body, shape, include_usage)
    else:
        _completion_shape(body, shape)
    return shape


def _completion_shape(body: bytes, shape: ChatShape) -> None:
    try:
        doc = orjson.loads(body)
        choice = doc["choices"][0]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        shape.problems.append("not a chat.completion")
        return
    msg = choice.get("message") or {}
    shape.finish_reason = choice.get("finish_reason")
    shape.has_text = bool(msg.get("content"))
    shape.tool_calls = [c["function"]["name"] for c in msg.get("tool_calls") or ()]
    shape.usage_chunk = doc.get("usage") is not None
    shape.done = True


def _stream_shape(body: bytes, shape: ChatShape, include_usage: bool | None) -> None:
    decoder = SSEDecoder()
    events = decoder.feed(body) + decoder.close()
    ids: set[str] = set()
    open_index = -1
    for n, event in enumerate(events):
        if event.data == "[DONE]":
            shape.done = True
            if n != len(events) - 1:
                shape.problems.append("data after [DONE]")
            continue
        if event.event is not None:
            shape.problems.append(f"event: line {event.event!r} in a chat stream")
        try:
            chunk: Any = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            chunk = None
        if not isinstance(chunk, dict):
            shape.problems.append(f"event {n} is not a JSON object")
            continue
        if "error" in chunk:
            shape.error = str(chunk["error"].get("message"))
            continue
        if chunk.get("object") != "chat.completion.chunk":
            shape.problems.append(f"chunk {n} is not a chat.completion.chunk")
        ids.add(str(chunk.get("id")))
        if chunk.get("usage") and not chunk.get("choices"):
            shape.usage_chunk = True
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                shape.has_text = True
            for tc in delta.get("tool_calls") or ():
                index = tc.get("index")
                if index == open_index + 1 and tc.get("id"):
                    open_index = index
                    shape.tool_calls.append(tc["function"]["name"])
                elif index != open_index or tc.get("id"):
                    shape.problems.append(f"tool call delta for index {index} out of order")
            if choice.get("finish_reason"):
                shape.finish_reason = choice["finish_reason"]
    if len(ids) > 1:
        shape.problems.append("chunk ids differ")
    if not shape.done and shape.error is None:
        shape.problems.append("stream ended without [DONE] or an error event")
    if include_usage is not None and shape.usage_chunk != include_usage:
        shape.problems.append(f"usage chunk {'missing' if include_usage else 'sent without include_usage'}")
