"""upstream.proxy: proxy URLs, no-proxy matching, the option/environment precedence and credential masking."""

from __future__ import annotations

import pytest
from codex_gateway.upstream.proxy import DIRECT
from codex_gateway.upstream.proxy import ProxyURL
from codex_gateway.upstream.proxy import mask_credentials
from codex_gateway.upstream.proxy import parse_no_proxy
from codex_gateway.upstream.proxy import parse_proxy_url
from codex_gateway.upstream.proxy import proxy_config

# -- proxy URLs -------------------------------------------------------------------------------------------------

GOOD_URLS = [
    ("http://127.0.0.1:3128", ProxyURL("http", "127.0.0.1", 3128)),
    ("http://proxy.corp:8080/", ProxyURL("http", "proxy.corp", 8080)),
    ("HTTP://Proxy.Corp:8080", ProxyURL("http", "proxy.corp", 8080)),
    ("http://proxy.corp", ProxyURL("http", "proxy.corp", 80)),
    ("https://proxy.corp", ProxyURL("https", "proxy.corp", 443)),
    ("http://[::1]:3128", ProxyURL("http", "::1", 3128)),
    ("http://alice:s3cret@proxy:3128", ProxyURL("http", "proxy", 3128, "alice", "s3cret")),
    ("http://alice:p%40ss%2Fw@proxy:3128", ProxyURL("http", "proxy", 3128, "alice", "p@ss/w")),
    ("http://alice@proxy:3128", ProxyURL("http", "proxy", 3128, "alice", "")),
    ("  http://proxy:3128  ", ProxyURL("http", "proxy", 3128)),
]


@pytest.mark.parametrize("value, expected", GOOD_URLS, ids=[v for v, _ in GOOD_URLS])
def test_proxy_urls(value: str, expected: ProxyURL) -> None:
    assert parse_proxy_url(value) == expected


BAD_URLS = [
    ("socks5://127.0.0.1:1080", "SOCKS proxy"),
    ("socks5h://u:pw@127.0.0.1:1080", "SOCKS proxy"),
    ("socks4://127.0.0.1:1080", "SOCKS proxy"),
    ("ftp://proxy:21", "http:// or https://"),
    ("proxy.corp:3128", "http:// or https://"),
    ("http://", "must look like"),
    ("http://proxy:3128/path", "must look like"),
    ("http://proxy:3128?x=1", "must look like"),
    ("http://proxy:port", "invalid port"),
    ("http://proxy:99999", "invalid port"),
    ("http://u:pw@proxy:99999", "invalid port"),
]


@pytest.mark.parametrize("value, problem", BAD_URLS, ids=[v for v, _ in BAD_URLS])
def test_unusable_proxy_urls_are_a_value_error_naming_the_option(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match="codex_proxy") as caught:
        parse_proxy_url(value)
    assert problem in str(caught.value)


@pytest.mark.parametrize("value", ["socks5://u:pw@h:1", "http://u:pw@h:99999", "http://u:pw@h/p", "ftp://u:pw@h"])
def test_an_error_never_quotes_the_password(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_proxy_url(value)
    assert "pw" not in str(caught.value)


def test_environment_values_may_omit_the_scheme() -> None:
    assert parse_proxy_url("proxy.corp:3128", "HTTPS_PROXY", default_scheme="http") == ProxyURL(
        "http", "proxy.corp", 3128
    )


SHOWN = [
    (ProxyURL("http", "proxy", 3128), "http://proxy:3128", "proxy:3128"),
    (ProxyURL("https", "proxy", 443, "alice", "pw"), "https://***@proxy:443", "proxy:443"),
    (ProxyURL("http", "::1", 3128, "", "pw"), "http://***@[::1]:3128", "[::1]:3128"),
]


@pytest.mark.parametrize("proxy, display, address", SHOWN, ids=[s[1] for s in SHOWN])
def test_display_and_address_hide_credentials(proxy: ProxyURL, display: str, address: str) -> None:
    assert (proxy.display, str(proxy), repr(proxy), proxy.address) == (
        display,
        display,
        f"ProxyURL({display})",
        address,
    )


def test_the_full_url_and_the_authorization_carry_the_credentials() -> None:
    proxy = parse_proxy_url("http://alice:p%40ss@proxy:3128")
    assert (proxy.url(), proxy.authorization()) == ("http://alice:p%40ss@proxy:3128", "Basic YWxpY2U6cEBzcw==")


def test_no_credentials_no_authorization() -> None:
    assert ProxyURL("http", "proxy", 3128).authorization() is None


# -- masking ----------------------------------------------------------------------------------------------------

MASKED = [
    ("http://alice:pw@proxy:3128", "http://***@proxy:3128"),
    ("via http://alice:p@ss@proxy:3128 failed", "via http://***@proxy:3128 failed"),
    ("http://alice:pa/ss@proxy:3128", "http://***@proxy:3128"),
    ("https://u@a and http://v:w@b", "https://***@a and http://***@b"),
    ("http://proxy:3128", "http://proxy:3128"),
    ("no url here", "no url here"),
]


@pytest.mark.parametrize("text, masked", MASKED, ids=[t for t, _ in MASKED])
def test_mask_credentials(text: str, masked: str) -> None:
    assert mask_credentials(text) == masked


def test_mask_credentials_also_hides_given_secrets() -> None:
    assert mask_credentials("407 for s3cret", "s3cret", "") == "407 for ***"


# -- no-proxy lists ---------------------------------------------------------------------------------------------

BYPASS = [
    ("localhost", "localhost", True),
    ("localhost", "localhost.", True),
    ("example.com", "example.com", True),
    ("example.com", "api.example.com", True),
    ("example.com", "notexample.com", False),
    (".example.com", "example.com", True),
    (".example.com", "a.b.example.com", True),
    ("*.example.com", "api.example.com", True),
    ("Example.COM", "API.example.com", True),
    ("example.com:443", "example.com", True),
    ("127.0.0.1", "127.0.0.1", True),
    ("127.0.0.1", "127.0.0.2", False),
    ("127.0.0.1:8080", "127.0.0.1", True),
    ("10.0.0.0/8", "10.1.2.3", True),
    ("10.0.0.0/8", "11.0.0.1", False),
    ("::1", "::1", True),
    ("::1", "[::1]", True),
    ("[::1]", "::1", True),
    ("[::1]:8080", "::1", True),
    ("fd00::/8", "fd12::1", True),
    ("*", "anything.example", True),
    ("a.example, *, b.example", "c.example", True),
    ("a.example,,b.example", "b.example", True),
    ("", "chatgpt.com", False),
    ("chatgpt.com", "10.0.0.1", False),
]


@pytest.mark.parametrize("entries, host, direct", BYPASS, ids=[f"{e!r}~{h}" for e, h, _ in BYPASS])
def test_no_proxy_matching(entries: str, host: str, direct: bool) -> None:
    assert parse_no_proxy(entries).matches(host) is direct


@pytest.mark.parametrize("entry", ["http://intranet", "a b", "exa$mple.com", "host:port", "a..b"])
def test_the_option_rejects_what_cannot_be_a_host(entry: str) -> None:
    with pytest.raises(ValueError, match="codex_no_proxy"):
        parse_no_proxy(entry)


def test_the_environment_value_skips_what_cannot_be_a_host() -> None:
    bypass = parse_no_proxy("http://intranet, corp.example", "NO_PROXY", strict=False)
    assert (bypass.matches("corp.example"), bypass.matches("intranet")) == (True, False)


# -- option and environment -------------------------------------------------------------------------------------

OPTION = "http://u:pw@opt-proxy:3128"
OPT = ProxyURL("http", "opt-proxy", 3128, "u", "pw")
ENV_HTTPS = ProxyURL("http", "env-https", 1)
ENV_HTTP = ProxyURL("http", "env-http", 2)
ENV_ALL = ProxyURL("http", "env-all", 3)

CHOICES = [
    # option, codex_no_proxy, environment, target scheme, target host -> proxy
    (None, "", {}, "https", "chatgpt.com", None),
    (OPTION, "", {}, "https", "chatgpt.com", OPT),
    (OPTION, "", {}, "http", "127.0.0.1", OPT),
    (OPTION, "chatgpt.com", {}, "https", "chatgpt.com", None),
    (OPTION, "", {"HTTPS_PROXY": "http://env-https:1"}, "https", "chatgpt.com", OPT),
    (OPTION, "", {"NO_PROXY": "chatgpt.com"}, "https", "chatgpt.com", OPT),
    (None, "", {"HTTPS_PROXY": "http://env-https:1"}, "https", "chatgpt.com", ENV_HTTPS),
    (None, "", {"https_proxy": "env-https:1"}, "https", "chatgpt.com", ENV_HTTPS),
    (None, "", {"https_proxy": "http://env-https:1", "HTTPS_PROXY": "http://x:9"}, "https", "h", ENV_HTTPS),
    (None, "", {"HTTPS_PROXY": "http://env-https:1"}, "http", "127.0.0.1", None),
    (None, "", {"HTTP_PROXY": "http://env-http:2"}, "http", "127.0.0.1", ENV_HTTP),
    (None, "", {"HTTP_PROXY": "http://env-http:2"}, "https", "chatgpt.com", None),
    (None, "", {"ALL_PROXY": "http://env-all:3"}, "https", "chatgpt.com", ENV_ALL),
    (None, "", {"all_proxy": "http://env-all:3", "HTTPS_PROXY": "http://env-https:1"}, "https", "h", ENV_HTTPS),
    (None, "", {"HTTPS_PROXY": "http://env-https:1", "NO_PROXY": ".openai.com"}, "https", "auth.openai.com", None),
    (None, "", {"HTTPS_PROXY": "http://env-https:1", "no_proxy": "chatgpt.com"}, "https", "chatgpt.com", None),
    (None, "auth.openai.com", {"HTTPS_PROXY": "http://env-https:1", "NO_PROXY": "*"}, "https", "h", ENV_HTTPS),
    (None, "*", {"HTTPS_PROXY": "socks5://env:1"}, "https", "chatgpt.com", None),
    (None, "", {"HTTPS_PROXY": "socks5://env:1", "NO_PROXY": "*"}, "https", "chatgpt.com", None),
]


@pytest.mark.parametrize("option, no_proxy, environ, scheme, host, expected", CHOICES)
def test_which_proxy_a_target_uses(
    option: str | None, no_proxy: str, environ: dict[str, str], scheme: str, host: str, expected: ProxyURL | None
) -> None:
    assert proxy_config(option, no_proxy, environ).for_target(scheme, host) == expected


def test_nothing_configured_is_direct() -> None:
    assert proxy_config(None, "", {}) == DIRECT


@pytest.mark.parametrize(
    "environ, name",
    [({"HTTPS_PROXY": "socks5://127.0.0.1:1080"}, "HTTPS_PROXY"), ({"all_proxy": "socks5h://h:1"}, "all_proxy")],
)
def test_a_socks_proxy_in_the_environment_is_an_error_naming_the_variable(environ: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=f"{name} is a SOCKS proxy"):
        proxy_config(None, "", environ)


DESCRIBED = [
    (None, "", {}, "upstream connections are direct (no codex_proxy, no proxy in the environment)"),
    (OPTION, "", {}, "upstream connections go through the proxy http://***@opt-proxy:3128 (from codex_proxy)"),
    (
        OPTION,
        "localhost, .corp",
        {},
        "upstream connections go through the proxy http://***@opt-proxy:3128 (from codex_proxy); "
        "direct for localhost, .corp",
    ),
    (
        None,
        "",
        {"https_proxy": "http://env:8080"},
        "upstream connections go through the proxy http://env:8080 (from https_proxy in the environment)",
    ),
    (
        OPTION,
        "chatgpt.com",
        {},
        "upstream connections to chatgpt.com are direct: it is in the no-proxy list (chatgpt.com)",
    ),
]


@pytest.mark.parametrize("option, no_proxy, environ, line", DESCRIBED, ids=[d[3][:60] for d in DESCRIBED])
def test_the_start_up_line(option: str | None, no_proxy: str, environ: dict[str, str], line: str) -> None:
    assert proxy_config(option, no_proxy, environ).describe("https", "chatgpt.com") == line
