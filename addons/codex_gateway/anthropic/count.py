"""`POST /v1/messages/count_tokens`, answered locally: an estimate from the translated request (pure, no download).

The backend's tokenizer (o200k) is not shipped with the gateway, so the count is a documented estimate over what
would be sent upstream: the instructions, every input item's text (tool calls' arguments and outputs included),
the tools' JSON, plus fixed costs:

- text: one token per `CHARS_PER_TOKEN` ASCII characters, one per other character (CJK and emoji take about one
  token each in o200k; accented Latin letters cost less, so such text is over-counted);
- `PER_ITEM` tokens per input item (role and framing), `PER_IMAGE` per image (a high-detail tile's cost);
- the tools' JSON at the same rate as text.

How close it comes is measured in tests/anthropic/test_count.py against recorded requests (Claude Code's included).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

import orjson

from .request import translate_messages_request

__all__ = ["count_tokens", "estimate_tokens", "text_tokens"]

CHARS_PER_TOKEN = 4.5  # fitted on English prose and JSON schemas (see tests/anthropic/test_claude_code.py)
PER_ITEM = 4
PER_IMAGE = 765


def count_tokens(
    raw: bytes, parsed: Any, headers: Mapping[str, str], families: Iterable[tuple[str, str]]
) -> dict[str, int]:
    """The answer to a count_tokens request. Raises `GatewayError` 400 for what `/v1/messages` would refuse."""
    upstream = translate_messages_request(raw, parsed, headers, families, counting=True)
    return {"input_tokens": estimate_tokens(upstream.body)}


def estimate_tokens(body: Mapping[str, Any]) -> int:
    """Estimated input tokens of a Codex request body (see the module docstring)."""
    total = text_tokens(str(body.get("instructions") or ""))
    for item in body.get("input") or ():
        total += PER_ITEM + _item_tokens(item)
    tools = body.get("tools")
    if tools:
        total += text_tokens(orjson.dumps(tools).decode())
    return total


def text_tokens(text: str) -> int:
    if not text:
        return 0
    ascii_chars = len(text.encode("ascii", "ignore"))
    return math.ceil(ascii_chars / CHARS_PER_TOKEN) + (len(text) - ascii_chars)


def _item_tokens(item: Mapping[str, Any]) -> int:
    kind = item.get("type")
    if kind == "message":
        return _parts_tokens(item.get("content"))
    if kind == "function_call":
        return text_tokens(str(item.get("name"))) + text_tokens(str(item.get("arguments")))
    if kind == "function_call_output":
        return _parts_tokens(item.get("output"))
    if kind == "reasoning":
        summary = item.get("summary") or []
        # The encrypted reasoning stands for the model's hidden reasoning: about as long as its ciphertext / 4.
        return _parts_tokens(summary) + text_tokens(str(item.get("encrypted_content") or "")) // 4
    return 0


def _parts_tokens(parts: Any) -> int:
    if isinstance(parts, str):
        return text_tokens(parts)
    total = 0
    for part in parts if isinstance(parts, list) else ():
        if part.get("type") == "input_image":
            total += PER_IMAGE
        else:
            total += text_tokens(str(part.get("text") or ""))
    return total
