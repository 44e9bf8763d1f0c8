"""chat.completion.fold_chunks: the one accumulator of chat chunks (completion, content view, replay shape)."""

from __future__ import annotations

from typing import Any

import pytest
from codex_gateway.chat.completion import FoldedChunks
from codex_gateway.chat.completion import ToolCall
from codex_gateway.chat.completion import fold_chunks


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish_reason}
    return {"id": "c1", "created": 7, "model": "m", "object": "chat.completion.chunk", "choices": [choice], **extra}


def call(index: Any, name: str = "", arguments: str = "", id: str | None = None) -> dict[str, Any]:
    tc: dict[str, Any] = {"index": index, "function": {"name": name, "arguments": arguments}}
    return {**tc, "id": id} if id else tc


FOLDS = [
    (
        "text pieces",
        [chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}, "stop")],
        FoldedChunks(chunks=3, id="c1", created=7, model="m", content="Hello", finish_reason="stop"),
    ),
    (
        "reasoning and refusal",
        [chunk({"reasoning_content": "hm"}), chunk({"refusal": "No."})],
        FoldedChunks(chunks=2, id="c1", created=7, model="m", reasoning="hm", refusal="No."),
    ),
    (
        "calls merged by index",
        [
            chunk({"tool_calls": [call(0, "f", "", id="a")]}),
            chunk({"tool_calls": [call(1, "g", "{}", id="b")]}),
            chunk({"tool_calls": [call(0, arguments='{"x":1}')]}, "tool_calls"),
        ],
        FoldedChunks(
            chunks=3,
            id="c1",
            created=7,
            model="m",
            tool_calls=[ToolCall("a", "f", '{"x":1}'), ToolCall("b", "g", "{}")],
            finish_reason="tool_calls",
        ),
    ),
    (
        "a call without a usable index is the next one",
        [chunk({"tool_calls": [call(None, "f", id="a")]})],
        FoldedChunks(chunks=1, id="c1", created=7, model="m", tool_calls=[ToolCall("a", "f", "")]),
    ),
    (
        "usage chunk and error payload",
        [{**chunk(), "choices": [], "usage": {"total_tokens": 3}}, {"error": "boom"}],
        FoldedChunks(chunks=1, id="c1", created=7, model="m", usage={"total_tokens": 3}, error={"message": "boom"}),
    ),
]


@pytest.mark.parametrize("chunks, folded", [f[1:] for f in FOLDS], ids=[f[0] for f in FOLDS])
def test_fold_chunks(chunks: list[dict[str, Any]], folded: FoldedChunks) -> None:
    assert fold_chunks(chunks) == folded
