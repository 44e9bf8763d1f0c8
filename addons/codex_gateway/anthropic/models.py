"""Claude model names → Codex models, and the model list in Anthropic's shape (pure).

Claude Code and the `anthropic` SDKs name Claude models (`claude-opus-5-5`, `claude-3-5-haiku-latest`, `sonnet`);
the option `codex_claude_models` maps each family to a Codex model. A name that is no Claude name (a Codex model id
such as `gpt-5.4`) passes through unchanged, so `claude --model gpt-5.4` picks that model. Answers always echo the
name the client asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_CLAUDE_MODELS", "parse_claude_models", "codex_model_for", "anthropic_model_list", "model_info"]

# family → Codex model; the first family whose name occurs in the client's model name wins, `claude` catches the
# rest of the Claude names (a new family, a bare `claude-latest`).
DEFAULT_CLAUDE_MODELS = "opus=gpt-5.4,sonnet=gpt-5.4,haiku=gpt-5.4-mini,claude=gpt-5.4"
_CREATED_AT = "2025-01-01T00:00:00Z"  # the Codex catalog carries no dates; Anthropic's list requires one


def parse_claude_models(spec: str) -> tuple[tuple[str, str], ...]:
    """`family=model,family=model` → pairs in order. Raises ValueError naming the bad entry."""
    pairs: list[tuple[str, str]] = []
    for entry in spec.split(","):
        if not entry.strip():
            continue
        family, sep, model = entry.partition("=")
        family, model = family.strip().lower(), model.strip()
        if not sep or not family or not model or any(c.isspace() for c in model):
            raise ValueError(f"codex_claude_models entries look like 'opus=gpt-5.4', not {entry.strip()!r}")
        pairs.append((family, model))
    return tuple(pairs)


def codex_model_for(model: str, families: Iterable[tuple[str, str]]) -> str:
    """The Codex model a client's model name stands for: a Claude family's mapping, or the name itself."""
    lower = model.lower()
    families = tuple(families)
    named = lower.startswith("claude") or any(lower == f or lower.startswith(f + "-") for f, _ in families)
    if not named:
        return model  # a Codex model id (or anything else): the catalog and the backend decide
    for family, target in families:
        if family in lower:
            return target
    return model


def model_info(model: Mapping[str, Any]) -> dict[str, Any]:
    """One catalog model (OpenAI shape, see model_catalog.py) as an Anthropic `ModelInfo`."""
    slug = str(model["id"])
    info: dict[str, Any] = {
        "type": "model",
        "id": slug,
        "display_name": str(model.get("display_name") or slug),
        "created_at": _CREATED_AT,
    }
    if isinstance(model.get("context_window"), int):
        info["max_input_tokens"] = model["context_window"]
    return info


def anthropic_model_list(models: list[dict[str, Any]]) -> dict[str, Any]:
    """`GET /v1/models` in Anthropic's list shape (one page: the catalog is small)."""
    data = [model_info(m) for m in models]
    return {
        "data": data,
        "has_more": False,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }
