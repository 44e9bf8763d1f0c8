"""settings: the registered options, their validation into `Settings`, and `--set` values checked before loading.

`parse_settings` reads plain attributes, so most tests hand it a namespace holding the registered defaults plus
the values under test; `deferred_option_problems` runs against a real `mitmproxy.options.Options`.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from codex_gateway import __version__
from codex_gateway.settings import DEFAULT_UPSTREAM
from codex_gateway.settings import deferred_option_problems
from codex_gateway.settings import deferred_strings
from codex_gateway.settings import parse_settings
from codex_gateway.settings import register_options
from codex_gateway.settings import settings_from
from codex_gateway.upstream.proxy import DIRECT
from codex_gateway.upstream.proxy import ProxyURL
from mitmproxy import options as mitmproxy_options


class Recorder:
    def __init__(self) -> None:
        self.added: dict[str, tuple[Any, Any, str]] = {}

    def add_option(self, name: str, typespec: Any, default: Any, help_text: str) -> None:
        self.added[name] = (typespec, default, help_text)


def registered() -> dict[str, tuple[Any, Any, str]]:
    recorder = Recorder()
    register_options(recorder)
    return recorder.added


DEFAULTS = {name: default for name, (_, default, _) in registered().items()}


def opts(**values: Any) -> SimpleNamespace:
    unknown = set(values) - set(DEFAULTS)
    assert not unknown, unknown
    return SimpleNamespace(**{**DEFAULTS, **values})


PROXY_VARIABLES = [f"{n}_proxy" for n in ("http", "https", "all", "no")]
PROXY_VARIABLES += [n.upper() for n in PROXY_VARIABLES]


@pytest.fixture(autouse=True)
def _no_env_homes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CODEX_HOME", raising=False)
    monkeypatch.delenv("CODEX_GATEWAY_HOME", raising=False)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


# -- registration ---------------------------------------------------------------------------------------------


def test_every_option_is_registered_with_help() -> None:
    added = registered()
    assert set(added) == {
        "codex_upstream",
        "codex_home",
        "codex_auth_issuer",
        "gateway_home",
        "gateway_api_key",
        "codex_originator",
        "codex_user_agent",
        "gateway_body_limit",
        "gateway_cors_origins",
        "gateway_allow_public",
        "codex_image_model",
        "codex_idle_timeout",
        "codex_claude_models",
        "codex_model_aliases",
        "codex_proxy",
        "codex_no_proxy",
        "gateway_state",
        "gateway_state_prefix",
        "gateway_state_secret",
        "gateway_usage_log",
        "gateway_log_days",
    }
    assert all(help_text for _, _, help_text in added.values())


def test_options_register_into_mitmproxy() -> None:
    options = mitmproxy_options.Options()
    register_options(options)
    assert (options.codex_upstream, options.gateway_body_limit, options.codex_idle_timeout) == (
        DEFAULT_UPSTREAM,
        "50m",
        300,
    )


# -- defaults -------------------------------------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    s = parse_settings(opts())
    assert s.upstream_url("/responses") == "https://chatgpt.com/backend-api/codex/responses"
    assert s.upstream.netloc == "chatgpt.com"
    assert s.codex_home == tmp_path / ".codex"
    assert s.gateway_home == tmp_path / ".codex-gateway"
    assert s.issuer == "https://auth.openai.com"
    assert s.api_key is None
    assert (s.originator, s.user_agent) == ("codex_gateway", f"codex_gateway/{__version__}")
    assert s.body_limit == 50 * 1024 * 1024
    assert s.cors_origins == frozenset()
    assert s.allow_public is False
    assert s.idle_timeout == 300
    assert s.image_model == "gpt-5.4-mini"
    assert s.model_aliases == {}
    assert s.proxy == DIRECT


def test_the_proxy_options_route_upstream_connections() -> None:
    s = parse_settings(opts(codex_proxy="http://u:p@proxy.corp:3128", codex_no_proxy="localhost,.internal"))
    assert s.proxy.for_target("https", "chatgpt.com") == ProxyURL("http", "proxy.corp", 3128, "u", "p")
    assert s.proxy.for_target("https", "auth.internal") is None


def test_settings_from_defaults_and_values() -> None:
    s = settings_from(codex_proxy="http://proxy:3128")
    assert (s.upstream_url(""), s.proxy.source) == (DEFAULT_UPSTREAM, "codex_proxy")


def test_settings_from_refuses_unknown_names() -> None:
    with pytest.raises(TypeError, match="codex_prxy"):
        settings_from(codex_prxy="http://proxy:3128")


def test_without_codex_proxy_the_environment_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:8080")
    monkeypatch.setenv("NO_PROXY", "chatgpt.com")
    s = parse_settings(opts())
    assert (s.proxy.for_target("https", "auth.openai.com"), s.proxy.for_target("https", "chatgpt.com")) == (
        ProxyURL("http", "env-proxy", 8080),
        None,
    )
    assert (s.usage_log, s.log_days) == (True, 30)


def test_homes_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CODEX_HOME", str(tmp_path / "cx"))
    monkeypatch.setenv("CODEX_GATEWAY_HOME", str(tmp_path / "gw"))
    s = parse_settings(opts())
    assert (s.codex_home, s.gateway_home) == (tmp_path / "cx", tmp_path / "gw")


def test_home_options_win_over_the_environment_and_expand_the_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CODEX_HOME", "/elsewhere/cx")
    monkeypatch.setenv("CODEX_GATEWAY_HOME", "/elsewhere/gw")
    s = parse_settings(opts(codex_home="~/mycx", gateway_home="~/mygw"))
    assert (s.codex_home, s.gateway_home) == (tmp_path / "mycx", tmp_path / "mygw")


@pytest.mark.parametrize("key, expected", [(None, None), ("", None), ("sk-local", "sk-local")])
def test_api_key(key: str | None, expected: str | None) -> None:
    assert parse_settings(opts(gateway_api_key=key)).api_key == expected


UPSTREAM_URLS = [
    ("https://chatgpt.com/backend-api/codex/", "https://chatgpt.com/backend-api/codex/responses"),
    ("http://127.0.0.1:9000", "http://127.0.0.1:9000/responses"),
    ("http://127.0.0.1:9000/", "http://127.0.0.1:9000/responses"),
    ("https://proxy.example/a/b", "https://proxy.example/a/b/responses"),
]


@pytest.mark.parametrize("upstream, url", UPSTREAM_URLS)
def test_upstream_url(upstream: str, url: str) -> None:
    assert parse_settings(opts(codex_upstream=upstream)).upstream_url("/responses") == url


def test_issuer_loses_its_trailing_slash() -> None:
    assert parse_settings(opts(codex_auth_issuer="http://127.0.0.1:1/")).issuer == "http://127.0.0.1:1"


@pytest.mark.parametrize("limit, size", [("1k", 1024), ("50m", 50 * 1024 * 1024), ("1g", 1024**3), ("123", 123)])
def test_body_limit_sizes(limit: str, size: int) -> None:
    assert parse_settings(opts(gateway_body_limit=limit)).body_limit == size


@pytest.mark.parametrize("origins", [["*"], ["https://app.example", "http://localhost:3000"]])
def test_cors_origins_are_kept(origins: list[str]) -> None:
    assert parse_settings(opts(gateway_cors_origins=origins)).cors_origins == frozenset(origins)


# -- unusable values --------------------------------------------------------------------------------------------

BAD = [
    pytest.param({"codex_upstream": "chatgpt.com/backend-api/codex"}, "codex_upstream", id="upstream without scheme"),
    pytest.param({"codex_upstream": "ftp://chatgpt.com/x"}, "codex_upstream", id="upstream ftp"),
    pytest.param({"codex_upstream": "https://"}, "codex_upstream", id="upstream without host"),
    pytest.param({"codex_upstream": ""}, "codex_upstream", id="upstream empty"),
    pytest.param({"codex_auth_issuer": "auth.openai.com"}, "codex_auth_issuer", id="issuer without scheme"),
    pytest.param({"codex_auth_issuer": "ws://auth.openai.com"}, "codex_auth_issuer", id="issuer ws"),
    pytest.param({"gateway_body_limit": "lots"}, "gateway_body_limit", id="body limit words"),
    pytest.param({"gateway_body_limit": "1.5m"}, "gateway_body_limit", id="body limit fraction"),
    pytest.param({"gateway_body_limit": ""}, "gateway_body_limit", id="body limit empty"),
    pytest.param({"gateway_body_limit": "0"}, "gateway_body_limit", id="body limit zero"),
    pytest.param({"gateway_body_limit": "-5m"}, "gateway_body_limit", id="body limit negative"),
    pytest.param({"codex_idle_timeout": 0}, "codex_idle_timeout", id="idle timeout zero"),
    pytest.param({"codex_idle_timeout": -1}, "codex_idle_timeout", id="idle timeout negative"),
    pytest.param({"gateway_log_days": -1}, "gateway_log_days", id="log days negative"),
    pytest.param({"gateway_cors_origins": ["app.example"]}, "gateway_cors_origins", id="cors bare host"),
    pytest.param(
        {"gateway_cors_origins": ["https://ok.example", "app.example"]},
        "gateway_cors_origins",
        id="cors one bad of two",
    ),
    pytest.param({"gateway_cors_origins": [""]}, "gateway_cors_origins", id="cors empty entry"),
    pytest.param({"codex_claude_models": "opus gpt-5.4"}, "codex_claude_models", id="claude models no ="),
    pytest.param({"codex_proxy": "socks5://127.0.0.1:1080"}, "codex_proxy", id="proxy socks"),
    pytest.param({"codex_proxy": "127.0.0.1:3128"}, "codex_proxy", id="proxy without scheme"),
    pytest.param({"codex_no_proxy": "http://intranet"}, "codex_no_proxy", id="no_proxy with a scheme"),
    pytest.param(
        {"gateway_cors_origins": ["localhost:3000"]},
        "gateway_cors_origins",
        id="cors host:port",
    ),
]


@pytest.mark.parametrize("values, option", BAD)
def test_unusable_values_are_a_value_error_naming_the_option(values: dict[str, Any], option: str) -> None:
    with pytest.raises(ValueError, match=option):
        parse_settings(opts(**values))


# -- deferred --set values --------------------------------------------------------------------------------------


def deferred(*assignments: str) -> mitmproxy_options.Options:
    options = mitmproxy_options.Options()
    options.set(*assignments, defer=True)  # as `--set` leaves them until the script registers its options
    return options


def test_deferred_strings_are_what_set_left_for_later() -> None:
    """What the gateway reads of mitmproxy's private option store: a release that changes it fails here."""
    options = deferred(
        "codex_idle_timeout=soon", "gateway_cors_origins=a", "gateway_cors_origins=b", "gateway_allow_public"
    )
    assert deferred_strings(options) == {
        "codex_idle_timeout": ["soon"],
        "gateway_cors_origins": ["a", "b"],
        "gateway_allow_public": [],
    }


def test_no_deferred_values_no_problems() -> None:
    assert deferred_option_problems(mitmproxy_options.Options()) == []


def test_an_object_without_deferred_values_has_no_problems() -> None:
    assert deferred_option_problems(SimpleNamespace()) == []


PROBLEMS = [
    (("codex_originator=a", "codex_originator=b"), "Received multiple values for codex_originator"),
    (("codex_home=a", "codex_home=b"), "Received multiple values for codex_home"),
    (("gateway_api_key=a", "gateway_api_key=b"), "Received multiple values for gateway_api_key"),
    (("codex_idle_timeout=soon",), "codex_idle_timeout"),
    (("gateway_allow_public=maybe",), "gateway_allow_public"),
    (("codex_proxy=http://a:1", "codex_proxy=http://b:2"), "Received multiple values for codex_proxy"),
]


@pytest.mark.parametrize("assignments, problem", PROBLEMS, ids=[p[1] for p in PROBLEMS])
def test_unparseable_deferred_values_are_reported(assignments: tuple[str, ...], problem: str) -> None:
    problems = deferred_option_problems(deferred(*assignments))
    assert len(problems) == 1 and problem in problems[0]


def test_a_problem_never_quotes_a_proxy_password() -> None:
    problems = deferred_option_problems(deferred("codex_proxy=http://u:s3cret@a:1", "codex_proxy=http://b:2"))
    assert "s3cret" not in problems[0] and "http://***@a:1" in problems[0]


def test_every_problem_is_reported() -> None:
    problems = deferred_option_problems(deferred("codex_idle_timeout=soon", "gateway_allow_public=maybe"))
    assert len(problems) == 2


PARSEABLE = [
    ("codex_originator=a",),
    ("codex_idle_timeout=60",),
    ("gateway_allow_public=true",),
    ("gateway_allow_public",),
    ("gateway_cors_origins=https://a.example", "gateway_cors_origins=https://b.example"),
    ("other_addon_option=a", "other_addon_option=b"),
]


@pytest.mark.parametrize("assignments", PARSEABLE, ids=[" ".join(a) for a in PARSEABLE])
def test_parseable_and_foreign_deferred_values_are_not_problems(assignments: tuple[str, ...]) -> None:
    assert deferred_option_problems(deferred(*assignments)) == []


def test_model_aliases() -> None:
    s = parse_settings(opts(codex_model_aliases="gpt-4o=gpt-5.4, fast=gpt-5.4-mini-low"))
    assert s.model_aliases == {"gpt-4o": "gpt-5.4", "fast": "gpt-5.4-mini-low"}


def test_bad_model_aliases_name_the_option() -> None:
    with pytest.raises(ValueError, match="codex_model_aliases: 'gpt-4o' is not of the form name=target"):
        parse_settings(opts(codex_model_aliases="gpt-4o"))
