"""Model objects in the OpenAI shape, and the Codex CLI's own catalog cache (`$CODEX_HOME/models_cache.json`,
only ever read): the building blocks of model_catalog.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

__all__ = ["catalog_from_cache", "model_object"]

_CREATED = 1_760_000_000  # the catalog has no dates; a fixed value keeps answers reproducible


def model_object(slug: str, info: dict[str, Any] | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {"id": slug, "object": "model", "created": _CREATED, "owned_by": "openai"}
    if info:
        levels = [lv.get("effort") for lv in info.get("supported_reasoning_levels") or () if isinstance(lv, dict)]
        if levels:
            obj["reasoning_efforts"] = levels
        if info.get("input_modalities"):
            obj["input_modalities"] = info["input_modalities"]
        if info.get("context_window"):
            obj["context_window"] = info["context_window"]
    return obj


def catalog_from_cache(codex_home: Path) -> list[dict[str, Any]] | None:
    try:
        data = orjson.loads((codex_home / "models_cache.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        return None
    return [m for m in models if isinstance(m, dict) and isinstance(m.get("slug"), str)]
