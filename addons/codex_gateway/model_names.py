"""Model names a client may send besides the catalog's ids (pure: no I/O, no mitmproxy).

Many clients can only pick a model name, so a name can carry more than the model:

- an alias from the option `codex_model_aliases` (`name=target,…`, e.g. `gpt-4o=gpt-5.4,fast=gpt-5.4-mini-low`)
  is replaced by its target first (one step: a target is never looked up as an alias again);
- `<model>-<effort>` (`gpt-5.4-high`, `gpt-5.4-mini-low`; efforts `none`, `minimal`, `low`, `medium`, `high`,
  `xhigh`) sends `<model>` with that reasoning effort, unless the catalog has a model of exactly that id.

An explicit reasoning effort in the request wins over the one a name carries. The translated Codex body is
rewritten in one place (`apply_choice`) for chat completions and responses alike.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import model_object

__all__ = ["EFFORTS", "ModelChoice", "parse_aliases", "resolve", "apply_choice", "alias_objects"]

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
ENCRYPTED_REASONING = "reasoning.encrypted_content"


@dataclass(frozen=True)
class ModelChoice:
    """What a requested name means: the model sent upstream, and the effort the name carries (if any)."""

    requested: str
    model: str
    effort: str | None = None
    alias: str | None = None  # the alias the client used, if any

    @property
    def renamed(self) -> bool:
        return self.model != self.requested


def parse_aliases(text: str) -> dict[str, str]:
    """`name=target,…` → {name: target}; ValueError naming the entry that is not of that form."""
    aliases: dict[str, str] = {}
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, target = (part.strip() for part in entry.partition("="))
        if not sep or not name or not target:
            raise ValueError(f"codex_model_aliases: {entry!r} is not of the form name=target")
        if any(c.isspace() for c in name + target):
            raise ValueError(f"codex_model_aliases: {entry!r} holds whitespace inside a name")
        if name == target:
            raise ValueError(f"codex_model_aliases: {entry!r} names itself")
        if name in aliases:
            raise ValueError(f"codex_model_aliases: {name!r} is given twice")
        aliases[name] = target
    return aliases


def resolve(name: str, aliases: Mapping[str, str], known: Callable[[str], bool]) -> ModelChoice:
    """The model behind `name`: alias first, then the exact id if the catalog `known`s it, then an effort suffix."""
    alias = name if name in aliases else None
    target = aliases[name] if alias is not None else name
    if known(target):
        return ModelChoice(name, target, None, alias)
    base, sep, effort = target.rpartition("-")
    if sep and base and effort in EFFORTS:
        return ModelChoice(name, base, effort, alias)
    return ModelChoice(name, target, None, alias)


def apply_choice(body: dict[str, Any], choice: ModelChoice) -> str | None:
    """Rewrites a translated Codex Responses body for `choice`; returns the effort applied from the name (None when
    the name carries none, or the request set its own effort, which wins)."""
    body["model"] = choice.model
    if choice.effort is None:
        return None
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None:
        return None
    summary = reasoning.get("summary") if isinstance(reasoning, dict) else None
    body["reasoning"] = {"effort": choice.effort, "summary": summary or "auto"}
    include = body.get("include")
    include = include if isinstance(include, list) else []
    if ENCRYPTED_REASONING not in include:
        body["include"] = [*include, ENCRYPTED_REASONING]  # the reasoning items can then be sent back next turn
    return choice.effort


def alias_objects(
    aliases: Mapping[str, str], lookup: Callable[[str], dict[str, Any] | None], known: Callable[[str], bool]
) -> list[dict[str, Any]]:
    """`/v1/models` entries for the aliases: the target model's object under the alias id, marked `alias_for`
    (and `reasoning_effort` when the target carries one), so pickers offer them."""
    out = []
    for name, target in aliases.items():
        choice = resolve(name, aliases, known)
        base = lookup(choice.model)
        obj = dict(base) if base is not None else model_object(name)
        obj["id"] = name
        obj["owned_by"] = "codex-gateway"
        obj["alias_for"] = target
        if choice.effort is not None:
            obj["reasoning_effort"] = choice.effort
        out.append(obj)
    return out
