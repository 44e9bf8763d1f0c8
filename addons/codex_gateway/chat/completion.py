"""Chat chunks → one whole answer: the one accumulator every reader of chat chunks uses (pure).

`fold_chunks` adds `chat.completion.chunk` dicts up the way the OpenAI SDK's accumulator does: text fields are
concatenated, tool calls are merged by `index`. It takes chunks of any origin (the gateway's own, or a saved
flow's), so it never assumes a field is there. `completion_from_chunks` turns the gateway's own chunks into the
`chat.completion` a non-streaming client gets; the content view and the replay shape read the fold directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import NamedTuple

__all__ = ["FoldedChunks", "ToolCall", "completion_from_chunks", "fold_chunks"]

Chunk = dict[str, Any]


class ToolCall(NamedTuple):
    """One accumulated tool call (a tuple, so it also compares equal to `(id, name, arguments)`)."""

    id: str
    name: str
    arguments: str


@dataclass
class FoldedChunks:
    """What a run of chat chunks adds up to."""

    chunks: int = 0  # chunks that are not an error payload
    id: str | None = None
    created: int | None = None
    model: str | None = None
    content: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)  # by index
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None  # a final `{"error": {...}}` payload


def fold_chunks(chunks: Iterable[Chunk]) -> FoldedChunks:
    """Accumulates chat.completion.chunk dicts (and a final `{"error": ...}`) the way the OpenAI SDK does."""
    out = FoldedChunks()
    content: list[str] = []
    reasoning: list[str] = []
    refusal: list[str] = []
    calls: dict[int, list[str]] = {}  # index → [id, name, arguments]
    count = 0
    for chunk in chunks:
        if "error" in chunk and "choices" not in chunk:
            err = chunk.get("error")
            out.error = dict(err) if isinstance(err, dict) else {"message": str(err)}
            continue
        count += 1
        if out.id is None:  # the envelope is the same on every chunk: the first one that has it says it
            out.id, out.created, out.model = chunk.get("id"), chunk.get("created"), chunk.get("model")
        if chunk.get("usage"):
            out.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if text := delta.get("content"):
                content.append(text)
            if text := delta.get("reasoning_content"):
                reasoning.append(text)
            if text := delta.get("refusal"):
                refusal.append(text)
            for tc in delta.get("tool_calls") or ():
                _add_call_delta(calls, tc)
            if choice.get("finish_reason"):
                out.finish_reason = choice["finish_reason"]
    out.chunks = count
    out.content, out.reasoning, out.refusal = "".join(content), "".join(reasoning), "".join(refusal)
    out.tool_calls = [ToolCall(*call) for _, call in sorted(calls.items())]
    return out


def _add_call_delta(calls: dict[int, list[str]], tc: dict[str, Any]) -> None:
    fn = tc.get("function") or {}
    index = tc.get("index")
    call = calls.setdefault(index if isinstance(index, int) else len(calls), ["", "", ""])
    call[0] = call[0] or tc.get("id") or ""
    call[1] += fn.get("name") or ""
    call[2] += fn.get("arguments") or ""


def completion_from_chunks(chunks: list[Chunk]) -> dict[str, Any]:
    """The gateway's chunks of a successful answer as one `chat.completion` (what a non-streaming client gets)."""
    folded = fold_chunks(chunks)
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in folded.tool_calls
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": folded.content if folded.content or not calls else None,
        "refusal": folded.refusal or None,
    }
    if folded.reasoning:
        message["reasoning_content"] = folded.reasoning
    if calls:
        message["tool_calls"] = calls
    return {
        "id": folded.id,
        "object": "chat.completion",
        "created": folded.created,
        "model": folded.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": folded.finish_reason}],
        "usage": folded.usage,
        "system_fingerprint": None,
    }
