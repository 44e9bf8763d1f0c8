"""headers: what the client sees of upstream headers, redaction of saved requests, and the upstream header set."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from codex_gateway.accounts.auth_file import Credentials
from codex_gateway.accounts.quota import decode_fields
from codex_gateway.http.headers import REDACTED
from codex_gateway.http.headers import client_response_headers
from codex_gateway.http.headers import codex_fields
from codex_gateway.http.headers import header_map
from codex_gateway.http.headers import redact_request
from codex_gateway.http.headers import upstream_fields
from codex_gateway.http.headers import upstream_headers
from codex_gateway.http.headers import upstream_target
from codex_gateway.settings import Settings
from codex_gateway.settings import parse_settings
from mitmproxy import http

# -- client_response_headers ----------------------------------------------------------------------------------

KEPT = [
    ("x-request-id", "req_1"),
    ("X-Request-ID", "req_2"),
    ("retry-after", "30"),
    ("openai-model", "gpt-5"),
    ("x-codex-primary-used-percent", "12"),
    ("X-Codex-Plan-Type", "plus"),
]
DROPPED = [
    ("set-cookie", "__cf_bm=1; Secure"),
    ("alt-svc", 'h3=":443"'),
    ("cf-ray", "abc-AMS"),
    ("cf-cache-status", "DYNAMIC"),
    ("access-control-allow-origin", "*"),
    ("access-control-allow-credentials", "true"),
    ("content-length", "42"),
    ("transfer-encoding", "chunked"),
    ("content-encoding", "br"),
    ("content-type", "text/event-stream; charset=utf-8"),  # replaced by the answer's own
    ("server", "cloudflare"),
    ("strict-transport-security", "max-age=1"),
    ("x-codexfoo", "1"),
    ("openai-processing-ms", "5"),
]


@pytest.mark.parametrize("name, value", KEPT)
def test_allowed_headers_are_kept_as_sent(name: str, value: str) -> None:
    upstream = http.Headers([(name.encode(), value.encode())])
    assert client_response_headers(upstream, "application/json").fields == (
        (b"content-type", b"application/json"),
        (name.encode(), value.encode()),
    )


@pytest.mark.parametrize("name, value", DROPPED)
def test_other_headers_are_dropped(name: str, value: str) -> None:
    upstream = http.Headers([(name.encode(), value.encode())])
    assert client_response_headers(upstream, "application/json").fields == ((b"content-type", b"application/json"),)


def test_kept_headers_keep_their_order_and_repeats() -> None:
    upstream = http.Headers(
        [
            (b"set-cookie", b"a=1"),
            (b"x-codex-a", b"1"),
            (b"cf-ray", b"r"),
            (b"x-request-id", b"q"),
            (b"x-codex-a", b"2"),
        ]
    )
    assert client_response_headers(upstream, "text/event-stream").fields == (
        (b"content-type", b"text/event-stream"),
        (b"x-codex-a", b"1"),
        (b"x-request-id", b"q"),
        (b"x-codex-a", b"2"),
    )


@pytest.mark.parametrize("chunked", [False, True])
def test_chunked_flag(chunked: bool) -> None:
    headers = client_response_headers(http.Headers(content_length="9"), "text/event-stream", chunked=chunked)
    assert headers.get_all("transfer-encoding") == (["chunked"] if chunked else [])
    assert "content-length" not in headers


def test_no_upstream_headers() -> None:
    assert client_response_headers(None, "application/json").fields == ((b"content-type", b"application/json"),)


# -- redact_request -------------------------------------------------------------------------------------------

SECRETS = ["authorization", "Authorization", "chatgpt-account-id", "ChatGPT-Account-ID", "cookie", "x-api-key"]
SECRETS += ["proxy-authorization"]


@pytest.mark.parametrize("name", SECRETS)
def test_secret_values_are_redacted(name: str) -> None:
    headers = http.Headers([(b"accept", b"*/*"), (name.encode(), b"secret"), (b"user-agent", b"curl/8")])
    redact_request(headers)
    assert headers.fields == ((b"accept", b"*/*"), (name.encode(), REDACTED.encode()), (b"user-agent", b"curl/8"))


def test_every_repeat_of_a_secret_is_redacted() -> None:
    headers = http.Headers([(b"cookie", b"a=1"), (b"cookie", b"b=2")])
    redact_request(headers)
    assert headers.get_all("cookie") == [REDACTED, REDACTED]


def test_headers_without_secrets_are_left_alone() -> None:
    fields = ((b"accept", b"*/*"), (b"x-authorization-hint", b"keep"), (b"session_id", b"s1"))
    headers = http.Headers(fields)
    redact_request(headers)
    assert headers.fields == fields


# -- codex_fields -----------------------------------------------------------------------------------------------


def test_codex_fields_are_read_case_insensitively() -> None:
    headers = http.Headers(
        [
            (b"X-Codex-Primary-Used-Percent", b"12.5"),
            (b"x-codex-plan-type", b"plus"),
            (b"content-type", b"text/event-stream"),
            (b"x-codexlike", b"no"),
            (b"x-request-id", b"r"),
        ]
    )
    got = decode_fields(codex_fields(headers))
    assert got == {"x-codex-primary-used-percent": "12.5", "x-codex-plan-type": "plus"}


def test_no_codex_fields() -> None:
    assert codex_fields(http.Headers(content_type="application/json")) == ()


# -- upstream_headers -------------------------------------------------------------------------------------------


def settings(upstream: str = "https://chatgpt.com/backend-api/codex") -> Settings:
    return parse_settings(
        SimpleNamespace(
            codex_upstream=upstream,
            codex_home="/tmp/codex-home",
            codex_auth_issuer="https://auth.openai.com",
            gateway_home="/tmp/gateway-home",
            gateway_api_key="sk-gateway-key",
            codex_originator="codex_gateway",
            codex_user_agent="codex_gateway/test",
            gateway_body_limit="50m",
            gateway_cors_origins=[],
            gateway_allow_public=False,
            codex_image_model="gpt-5.4-mini",
            codex_idle_timeout=300,
            codex_claude_models="opus=gpt-5.4",
            codex_model_aliases="",
            codex_proxy=None,
            codex_no_proxy="",
            gateway_state="",
            gateway_state_prefix="codex-gateway",
            gateway_state_secret=None,
            gateway_usage_log=True,
            gateway_log_days=30,
        )
    )


CREDS = Credentials(access_token="at-123", account_id="acct-9", label="me@example.com")
SESSION = [("session_id", "s-1"), ("x-codex-turn-state", "t")]


def test_upstream_headers_with_credentials() -> None:
    assert upstream_headers(settings(), CREDS, SESSION) == [
        ("Host", "chatgpt.com"),
        ("Authorization", "Bearer at-123"),
        ("ChatGPT-Account-ID", "acct-9"),
        ("originator", "codex_gateway"),
        ("User-Agent", "codex_gateway/test"),
        ("session_id", "s-1"),
        ("x-codex-turn-state", "t"),
        ("Accept", "text/event-stream"),
        ("Content-Type", "application/json"),
        ("Accept-Encoding", "identity"),
    ]


def test_upstream_headers_without_credentials() -> None:
    assert upstream_headers(settings(), None, [("session_id", "s-1")]) == [
        ("Host", "chatgpt.com"),
        ("originator", "codex_gateway"),
        ("User-Agent", "codex_gateway/test"),
        ("session_id", "s-1"),
        ("Accept", "text/event-stream"),
        ("Content-Type", "application/json"),
        ("Accept-Encoding", "identity"),
    ]


def test_host_keeps_the_upstream_port() -> None:
    assert upstream_headers(settings("http://127.0.0.1:9100/codex"), None, [])[0] == ("Host", "127.0.0.1:9100")


def test_the_gateway_key_is_never_sent_upstream() -> None:
    sent = upstream_headers(settings(), CREDS, SESSION)
    assert all("sk-gateway-key" not in value for _, value in sent)
    assert [name for name, _ in sent].count("Authorization") == 1


# -- header_map, upstream_target, upstream_fields -----------------------------------------------------------------


def test_header_map_answers_what_headers_get_answers() -> None:
    headers = http.Headers(
        [
            (b"Content-Type", b"application/json"),
            (b"X-Dup", b"a"),
            (b"x-dup", b"b"),
            (b"User-Agent", "ü-agent".encode()),
            (b"X-Odd", b"\xff\xfe"),  # not UTF-8: decoded as mitmproxy decodes it
        ]
    )
    mapped = header_map(headers)
    for name in ("content-type", "x-dup", "user-agent", "x-odd", "missing"):
        assert mapped.get(name) == headers.get(name)
    assert set(mapped) == {"content-type", "x-dup", "user-agent", "x-odd"}


@pytest.mark.parametrize(
    "upstream", ["https://chatgpt.com/backend-api/codex/", "http://127.0.0.1:9100/c", "https://h:443"]
)
@pytest.mark.parametrize("creds", [CREDS, None])
def test_upstream_fields_with_a_length_end_in_the_content_length(upstream: str, creds: Credentials | None) -> None:
    target = upstream_target(settings(upstream))
    without = upstream_fields(target, creds, SESSION)
    assert upstream_fields(target, creds, SESSION, 42) == (*without, (b"content-length", b"42"))
    assert all(name.lower() != b"content-length" for name, _ in without)


def test_upstream_target_is_what_mitmproxy_s_setters_write() -> None:
    s = settings("https://chatgpt.com:443/backend-api/codex/")
    target = upstream_target(s)
    assert upstream_target(s) is target  # computed once per settings
    request = http.Request.make("POST", "http://x/v1/chat/completions")
    request.authority = "x"
    request.scheme, request.host, request.port = "https", "chatgpt.com", 443
    assert (target.scheme, target.host, target.port) == (b"https", "chatgpt.com", 443)
    assert target.authority == request.data.authority == b"chatgpt.com"
    assert target.path_prefix == "/backend-api/codex"
    other = upstream_target(settings("http://127.0.0.1:9100/c"))
    assert (other.authority, other.host_field) == (b"127.0.0.1:9100", (b"Host", b"127.0.0.1:9100"))


def test_redacting_twice_keeps_the_same_fields_object() -> None:
    headers = http.Headers([(b"Authorization", b"Bearer x"), (b"accept", b"*/*")])
    redact_request(headers)
    redacted = headers.fields
    redact_request(headers)
    assert headers.fields is redacted and headers.fields[0] == (b"Authorization", REDACTED.encode())
