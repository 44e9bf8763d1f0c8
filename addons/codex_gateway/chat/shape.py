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
from .completion import fold_chunks

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
    numbered: list[tuple[int, dict[str, Any]]] = []  # (event number, chunk)
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
        numbered.append((n, chunk))
    shape.problems += _chunk_problems(numbered)
    chunks = [chunk for _, chunk in numbered]
    folded = fold_chunks(chunks)
    shape.finish_reason = folded.finish_reason
    shape.tool_calls = [call.name for call in folded.tool_calls]
    shape.has_text = bool(folded.content)
    shape.usage_chunk = any(c.get("usage") and not c.get("choices") for c in chunks)
    if folded.error is not None:
        shape.error = str(folded.error.get("message"))
    if not shape.done and shape.error is None:
        shape.problems.append("stream ended without [DONE] or an error event")
    if include_usage is not None and shape.usage_chunk != include_usage:
        shape.problems.append(f"usage chunk {'missing' if include_usage else 'sent without include_usage'}")


def _chunk_problems(numbered: list[tuple[int, dict[str, Any]]]) -> list[str]:
    """What a strict client would trip over: a foreign object, differing ids, tool calls opened out of order."""
    problems: list[str] = []
    ids: set[str] = set()
    open_index = -1
    for n, chunk in numbered:
        if "error" in chunk and "choices" not in chunk:  # the final error payload, as fold_chunks reads it
            continue
        if chunk.get("object") != "chat.completion.chunk":
            problems.append(f"chunk {n} is not a chat.completion.chunk")
        ids.add(str(chunk.get("id")))
        for choice in chunk.get("choices") or ():
            for tc in (choice.get("delta") or {}).get("tool_calls") or ():
                index = tc.get("index")
                if index == open_index + 1 and tc.get("id"):
                    open_index = index
                elif index != open_index or tc.get("id"):
                    problems.append(f"tool call delta for index {index} out of order")
    if len(ids) > 1:
        problems.append("chunk ids differ")
    return problems
