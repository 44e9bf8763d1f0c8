"""Chat chunks → one `chat.completion`: how non-streamed answers are built from the streaming state machine."""

from __future__ import annotations

from typing import Any

__all__ = ["completion_from_chunks"]

Chunk = dict[str, Any]


def completion_from_chunks(chunks: list[Chunk]) -> dict[str, Any]:
    """Folds the chunks of a successful answer into one `chat.completion`, as the SDK's accumulator would."""
    first = next(c for c in chunks if "choices" in c)
    content: list[str] = []
    reasoning: list[str] = []
    refusal: list[str] = []
    calls: list[dict[str, Any]] = []
    finish_reason = None
    usage = None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk.get("choices", ()):
            delta = choice["delta"]
            if delta.get("content"):
                content.append(delta["content"])
            if delta.get("reasoning_content"):
                reasoning.append(delta["reasoning_content"])
            if delta.get("refusal"):
                refusal.append(delta["refusal"])
            for tc in delta.get("tool_calls", ()):
                if tc["index"] == len(calls):
                    calls.append({"id": tc["id"], "type": "function", "function": {"name": "", "arguments": ""}})
                    calls[-1]["function"]["name"] = tc["function"].get("name", "")
                    calls[-1]["function"]["arguments"] = tc["function"].get("arguments", "")
                else:
                    calls[tc["index"]]["function"]["arguments"] += tc["function"].get("arguments", "")
            if choice.get("finish_reason"):
                finish_reason = choice["finish_reason"]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(content) if content or not calls else None,
        "refusal": "".join(refusal) if refusal else None,
    }
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = calls
    return {
        "id": first["id"],
        "object": "chat.completion",
        "created": first["created"],
        "model": first["model"],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
        "system_fingerprint": None,
    }
