"""What the Codex backend's events carry that every client protocol reads (pure).

Token usage arrives in the Responses shape (`input_tokens`, `output_tokens`, their `*_details`); every answer the
gateway writes and every flow summary reports it in the Chat Completions shape.
"""

from __future__ import annotations

from typing import Any

__all__ = ["chat_usage"]


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Responses usage → Chat usage, tolerating absent or null detail objects."""
    if not isinstance(usage, dict):
        return None
    prompt = _int(usage.get("input_tokens"))
    completion = _int(usage.get("output_tokens"))
    total = usage.get("total_tokens")
    in_details = usage.get("input_tokens_details")
    out_details = usage.get("output_tokens_details")
    in_details = in_details if isinstance(in_details, dict) else {}
    out_details = out_details if isinstance(out_details, dict) else {}
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _int(total) if isinstance(total, int) else prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _int(in_details.get("cached_tokens"))},
        "completion_tokens_details": {"reasoning_tokens": _int(out_details.get("reasoning_tokens"))},
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
