"""Default ``GET /backend-api/codex/models`` payload for the fake backend.

Shaped like the Codex CLI's ``ModelInfo`` (``{"models": [...]}`` with slug, visibility,
reasoning levels, input modalities) so a gateway that
builds ``/v1/models`` from it sees every field the real list carries,
including a ``visibility: "hide"`` entry it should filter out.
"""

from __future__ import annotations

from typing import Any

_LEVELS = [
    {"effort": "low", "description": "Fast responses with lighter reasoning"},
    {"effort": "medium", "description": "Balances speed and reasoning depth for everyday tasks"},
    {"effort": "high", "description": "Greater reasoning depth for complex problems"},
    {"effort": "xhigh", "description": "Extra high reasoning depth for complex problems"},
]


def model_info(
    slug: str, display_name: str, *, visibility: str = "list", priority: int = 0, context_window: int = 272000
) -> dict[str, Any]:
    """One realistic ModelInfo dict; tests may tweak the returned copy."""
    return {
        "slug": slug,
        "display_name": display_name,
        "description": f"{display_name} model for Codex.",
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": [dict(level) for level in _LEVELS],
        "shell_type": "shell_command",
        "visibility": visibility,
        "supported_in_api": True,
        "priority": priority,
        "upgrade": None,
        "base_instructions": "You are Codex, a coding agent based on GPT-5.",
        "supports_reasoning_summaries": True,
        "support_verbosity": True,
        "default_verbosity": "low",
        "apply_patch_tool_type": "freeform",
        "truncation_policy": {"mode": "tokens", "limit": 10000},
        "supports_parallel_tool_calls": True,
        "context_window": context_window,
        "auto_compact_token_limit": None,
        "effective_context_window_percent": 95,
        "experimental_supported_tools": [],
        "input_modalities": ["text", "image"],
    }


DEFAULT_MODELS: list[dict[str, Any]] = [
    model_info("gpt-5.4", "gpt-5.4", priority=1),
    model_info("gpt-5.4-mini", "gpt-5.4-mini", priority=2, context_window=128000),
    model_info("gpt-5.3-codex", "gpt-5.3-codex", priority=3),
    model_info("gpt-5.1-codex-max", "gpt-5.1-codex-max", visibility="hide", priority=10),
]
