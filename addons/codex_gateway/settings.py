"""The gateway's mitmproxy options: registration (in `load`) and validation into one immutable `Settings`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import SplitResult
from urllib.parse import urlsplit

from mitmproxy import exceptions
from mitmproxy import optmanager
from mitmproxy.utils import human

from . import __version__
from .accounts.auth_file import default_codex_home
from .accounts.state import DEFAULT_PREFIX
from .accounts.state import StateConfig
from .anthropic.models import DEFAULT_CLAUDE_MODELS
from .anthropic.models import parse_claude_models
from .model_names import parse_aliases
from .upstream.proxy import DIRECT
from .upstream.proxy import ProxyConfig
from .upstream.proxy import mask_credentials
from .upstream.proxy import proxy_config

__all__ = [
    "Settings",
    "register_options",
    "parse_settings",
    "settings_from",
    "deferred_option_problems",
    "deferred_strings",
    "DEFAULT_UPSTREAM",
]

DEFAULT_UPSTREAM = "https://chatgpt.com/backend-api/codex"

# name, type, default, help
_OPTIONS: list[tuple[str, Any, Any, str]] = [
    (
        "codex_upstream",
        str,
        DEFAULT_UPSTREAM,
        "Base URL of the Codex backend; requests go to {codex_upstream}/responses.",
    ),
    ("codex_home", str, "", "Codex CLI home holding auth.json (default: $CODEX_HOME, else ~/.codex)."),
    ("codex_auth_issuer", str, "https://auth.openai.com", "OAuth issuer used to refresh and obtain ChatGPT tokens."),
    (
        "gateway_home",
        str,
        "",
        "The gateway's own state: accounts, quotas, caches (default: $CODEX_GATEWAY_HOME, else ~/.codex-gateway).",
    ),
    (
        "gateway_api_key",
        str | None,
        None,
        "If set, clients must send it as `Authorization: Bearer <key>`. It is never forwarded.",
    ),
    ("codex_originator", str, "codex_gateway", "Value of the `originator` header sent to the Codex backend."),
    ("codex_user_agent", str, f"codex_gateway/{__version__}", "User-Agent sent to the Codex backend."),
    ("gateway_body_limit", str, "50m", "Largest client request body accepted (e.g. 50m); larger ones get a 413."),
    (
        "gateway_cors_origins",
        Sequence[str],
        [],
        "Browser origins allowed to call the gateway (CORS is off when empty).",
    ),
    ("gateway_allow_public", bool, False, "Allow listening on a non-loopback address without gateway_api_key."),
    ("codex_image_model", str, "gpt-5.4-mini", "Model that orchestrates the image_generation tool for /v1/images."),
    ("codex_idle_timeout", int, 300, "Seconds without upstream data after which a streamed answer is cut off."),
    (
        "codex_claude_models",
        str,
        DEFAULT_CLAUDE_MODELS,
        "Claude model families → Codex models for /v1/messages (family=model,…); other names pass through.",
    ),
    (
        "codex_model_aliases",
        str,
        "",
        "Extra model names, `name=target,…` (e.g. gpt-4o=gpt-5.4,fast=gpt-5.4-mini-low); listed in /v1/models.",
    ),
    (
        "codex_proxy",
        str | None,
        None,
        "HTTP(S) proxy for every upstream connection: http://[user:password@]host:port "
        "(default: HTTPS_PROXY/NO_PROXY from the environment, else direct).",
    ),
    ("codex_no_proxy", str, "", "Comma-separated hosts, domains or CIDR blocks reached without the proxy."),
    (
        "gateway_state",
        str,
        "",
        "Where accounts, cooldowns, pins and caches live: empty = files in gateway_home (env CODEX_GATEWAY_STATE); "
        "redis://[:password@]host:port/db or rediss://… = one Redis shared by several gateways.",
    ),
    ("gateway_state_prefix", str, DEFAULT_PREFIX, "Key prefix in the shared Redis (several teams can share one)."),
    (
        "gateway_state_secret",
        str | None,
        None,
        "Passphrase that encrypts tokens at rest in the shared Redis (env CODEX_GATEWAY_STATE_SECRET).",
    ),
    ("gateway_usage_log", bool, True, "Log every finished request to gateway_home/usage.sqlite3 (no tokens in it)."),
    ("gateway_log_days", int, 30, "Days the request log keeps its rows (0: keep them all); pruned daily."),
]


@dataclass(frozen=True)
class Settings:
    upstream: SplitResult
    codex_home: Path
    gateway_home: Path
    issuer: str
    api_key: str | None
    originator: str
    user_agent: str
    body_limit: int
    cors_origins: frozenset[str]
    allow_public: bool
    idle_timeout: int
    image_model: str
    claude_models: tuple[tuple[str, str], ...] = ()
    model_aliases: dict[str, str] = field(default_factory=dict, hash=False)
    proxy: ProxyConfig = DIRECT
    state: StateConfig = StateConfig()
    usage_log: bool = True
    log_days: int = 30

    def upstream_url(self, path: str) -> str:
        return f"{self.upstream.scheme}://{self.upstream.netloc}{self.upstream.path.rstrip('/')}{path}"


_OPTION_NAMES = frozenset(name for name, *_ in _OPTIONS)


def register_options(loader: Any) -> None:
    for name, typespec, default, help_text in _OPTIONS:
        loader.add_option(name, typespec, default, help_text)


def _http_url(name: str, value: str) -> SplitResult:
    url = urlsplit(value.rstrip("/"))
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{name} must be an http(s) URL, not {value!r}")
    return url


def parse_settings(options: Any) -> Settings:
    """Raises ValueError naming the option when a value is unusable."""
    try:
        body_limit = human.parse_size(options.gateway_body_limit) or 0
    except ValueError:
        raise ValueError(f"gateway_body_limit is not a size: {options.gateway_body_limit!r}") from None
    if body_limit <= 0:
        raise ValueError("gateway_body_limit must be positive")
    if options.codex_idle_timeout <= 0:
        raise ValueError("codex_idle_timeout must be positive")
    if options.gateway_log_days < 0:
        raise ValueError("gateway_log_days must be 0 (keep every row) or more")
    for origin in options.gateway_cors_origins:
        parts = urlsplit(origin)
        if origin != "*" and (parts.scheme not in ("http", "https") or not parts.netloc or parts.path):
            raise ValueError(f"gateway_cors_origins entries look like https://app.example, not {origin!r}")
    _http_url("codex_auth_issuer", options.codex_auth_issuer)
    gateway_home = options.gateway_home or os.environ.get("CODEX_GATEWAY_HOME") or "~/.codex-gateway"
    prefix = options.gateway_state_prefix
    state = StateConfig.from_env(
        url=options.gateway_state or None,
        prefix=prefix if prefix != DEFAULT_PREFIX else None,
        secret=options.gateway_state_secret or None,
    )
    return Settings(
        upstream=_http_url("codex_upstream", options.codex_upstream),
        codex_home=Path(options.codex_home).expanduser() if options.codex_home else default_codex_home(),
        gateway_home=Path(gateway_home).expanduser(),
        issuer=options.codex_auth_issuer.rstrip("/"),
        api_key=options.gateway_api_key or None,
        originator=options.codex_originator,
        user_agent=options.codex_user_agent,
        body_limit=body_limit,
        cors_origins=frozenset(options.gateway_cors_origins),
        allow_public=options.gateway_allow_public,
        idle_timeout=int(options.codex_idle_timeout),
        image_model=options.codex_image_model,
        claude_models=parse_claude_models(options.codex_claude_models),
        model_aliases=parse_aliases(options.codex_model_aliases),
        proxy=proxy_config(options.codex_proxy, options.codex_no_proxy, os.environ),
        state=state,
        usage_log=options.gateway_usage_log,
        log_days=int(options.gateway_log_days),
    )


def settings_from(**values: Any) -> Settings:
    """Settings from the options' defaults and `values` (option names), for command-line tools that run without
    mitmproxy (e.g. `doctor`). Raises ValueError like `parse_settings`, and TypeError for an unknown name."""
    defaults = {name: default for name, _, default, _ in _OPTIONS}
    unknown = set(values) - set(defaults)
    if unknown:
        raise TypeError(f"unknown options: {', '.join(sorted(unknown))}")
    return parse_settings(SimpleNamespace(**{**defaults, **values}))


def deferred_option_problems(options: Any) -> list[str]:
    """`--set` values for this addon's options that mitmproxy would fail to parse when the script registers.

    mitmproxy raises such an error inside the script loader, where it is swallowed: the addon would silently not
    load and mitmproxy would forward requests untranslated. Checking first lets the addon fail closed instead: each
    value is set on a scratch option manager holding this addon's options (public API), which parses it as
    mitmproxy will.
    """
    ours = {name: values for name, values in deferred_strings(options).items() if name in _OPTION_NAMES}
    if not ours:
        return []
    scratch = optmanager.OptManager()
    register_options(scratch)
    problems = []
    for name, values in ours.items():
        try:
            scratch.set(*([f"{name}={value}" for value in values] or [name]))
        except exceptions.OptionsError as e:
            problems.append(mask_credentials(str(e)))  # mitmproxy quotes the values (codex_proxy's password)
    return problems


def deferred_strings(options: Any) -> dict[str, list[str]]:
    """The `--set` strings mitmproxy keeps for options no addon has registered yet, by option name.

    The only private mitmproxy detail in this module: `OptManager.deferred` maps a name to an `_UnconvertedStrings`
    whose `val` is the list of strings, and nothing public reads them before mitmproxy parses them itself (too late,
    see above). tests/test_settings.py fails when a mitmproxy release changes that."""
    deferred = getattr(options, "deferred", None) or {}
    return {name: list(v.val) for name, v in deferred.items() if isinstance(getattr(v, "val", None), list)}
