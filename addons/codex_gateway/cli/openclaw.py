"""`codex-gateway openclaw-config`: the OpenClaw provider configuration for a running gateway, from its `/v1/models`.

OpenClaw (`~/.openclaw/openclaw.json`) talks to the gateway as an `openai-completions` provider. Each model entry is
taken from the gateway's model object: `contextWindow` from `context_window`; `reasoning` (and OpenClaw's
`compat.supportsReasoningEffort` / `supportedReasoningEfforts`, so it sends `reasoning_effort`) from
`reasoning_efforts`; `input` from `input_modalities`. `cost` is zero (a ChatGPT plan, not per-token billing), and
`maxTokens` is what OpenClaw asks for as `max_completion_tokens`, which the gateway drops (the backend has no such
limit). The README's "OpenClaw" section shows the output for the built-in catalog.
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import orjson

from .args import Parser

__all__ = ["main", "provider_config", "openclaw_config"]

PROVIDER = "codex-gateway"
MAX_TOKENS = 32768
_INPUTS = ("text", "image")


def model_entry(model: dict[str, Any]) -> dict[str, Any]:
    """One OpenClaw model entry from a gateway model object."""
    efforts = [e for e in model.get("reasoning_efforts") or () if isinstance(e, str)]
    inputs = [m for m in model.get("input_modalities") or ("text",) if m in _INPUTS] or ["text"]
    entry: dict[str, Any] = {
        "id": model["id"],
        "name": f"{model.get('display_name') or model['id']} (codex-gateway)",
        "reasoning": bool(efforts),
        "input": inputs,
        "cost": {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0},
        "contextWindow": int(model.get("context_window") or 272000),
        "maxTokens": MAX_TOKENS,
    }
    if efforts:
        entry["compat"] = {"supportsReasoningEffort": True, "supportedReasoningEfforts": efforts}
    return entry


def provider_config(models: list[dict[str, Any]], base_url: str, api_key: str) -> dict[str, Any]:
    """The `models.providers.codex-gateway` entry."""
    return {
        "baseUrl": base_url.rstrip("/") + "/v1",
        "apiKey": api_key,
        "api": "openai-completions",
        "models": [model_entry(m) for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)],
    }


def openclaw_config(models: list[dict[str, Any]], base_url: str, api_key: str, default: str) -> dict[str, Any]:
    """What to merge into `~/.openclaw/openclaw.json`: the provider, and its model as the default one."""
    return {
        "agents": {"defaults": {"model": {"primary": f"{PROVIDER}/{default}"}}},
        "models": {"mode": "merge", "providers": {PROVIDER: provider_config(models, base_url, api_key)}},
    }


def main(argv: list[str], prog: str = "codex-gateway openclaw-config") -> int:
    parser = Parser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8787", help="the gateway's base URL")
    parser.add_argument("--api-key", help="your gateway_api_key, if the gateway has one (default: `local`)")
    parser.add_argument("--model", default="gpt-5.4", help="OpenClaw's default model (default: gpt-5.4)")
    args = parser.parse_args(argv)
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    try:
        # trust_env=False: the gateway is local, a proxy from the environment must not carry the request.
        answer = httpx.get(args.gateway.rstrip("/") + "/v1/models", headers=headers, timeout=30, trust_env=False)
    except httpx.HTTPError as exc:
        print(f"{prog}: error: cannot reach the gateway at {args.gateway}: {exc}", file=sys.stderr)
        return 2
    if answer.status_code != 200:
        print(f"{prog}: error: {args.gateway}/v1/models answered {answer.status_code}", file=sys.stderr)
        return 2
    models = answer.json().get("data") or []
    if args.model not in {m.get("id") for m in models}:
        print(f"{prog}: error: the gateway lists no model {args.model!r} (see --model)", file=sys.stderr)
        return 2
    config = openclaw_config(models, args.gateway, args.api_key or "local", args.model)
    print(orjson.dumps(config, option=orjson.OPT_INDENT_2).decode())
    return 0
