"""upstream_request: the one place that writes mitmproxy's private request fields. These tests fail when a mitmproxy
release changes what it relies on: the fields' names and types, and that writing them equals the public setters."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from codex_gateway.http.headers import upstream_fields
from codex_gateway.http.headers import upstream_target
from codex_gateway.http.upstream_request import REQUEST_FIELDS
from codex_gateway.http.upstream_request import rewrite_in_place
from mitmproxy import http
from mitmproxy.test import tutils

from tests.http.test_headers import settings

BODY = b'{"model":"gpt-5.4","stream":true}'
SESSION = [("session_id", "s-1")]


def client_request(version: bytes, authority: bytes) -> http.Request:
    headers = http.Headers([(b"Host", b"gateway.local:8080"), (b"content-type", b"application/json")])
    return tutils.treq(
        method=b"POST",
        path=b"/v1/chat/completions",
        content=b'{"model":"gpt-5.4","messages":[]}',
        http_version=version,
        authority=authority,
        headers=headers,
    )


def test_the_fields_written_are_mitmproxys_request_fields_with_their_types() -> None:
    data = client_request(b"HTTP/2.0", b"gateway.local:8080").data
    assert set(REQUEST_FIELDS) <= set(vars(data)), "mitmproxy renamed a field of http.RequestData"
    assert {name: type(getattr(data, name)) for name in REQUEST_FIELDS} == REQUEST_FIELDS


@pytest.mark.parametrize("version, authority", [(b"HTTP/1.1", b""), (b"HTTP/2.0", b"gateway.local:8080")])
@pytest.mark.parametrize("upstream", ["http://127.0.0.1:9/backend-api/codex", "https://chatgpt.com/backend-api/codex/"])
def test_rewrite_in_place_is_what_the_public_setters_make(version: bytes, authority: bytes, upstream: str) -> None:
    target = upstream_target(settings(upstream))
    fields = upstream_fields(target, None, SESSION, len(BODY))
    request = client_request(version, authority)
    reference = request.copy()
    rewrite_in_place(request, target, "/responses", fields, BODY)

    up = urlsplit(upstream)
    reference.method = "POST"
    reference.scheme = up.scheme
    reference.host = up.hostname or ""
    reference.port = up.port or (443 if up.scheme == "https" else 80)
    reference.path = up.path.rstrip("/") + "/responses"
    reference.headers = http.Headers([field for field in fields if field[0] != b"content-length"])
    reference.content = BODY
    assert request.get_state() == reference.get_state()
    assert request.authority == ("" if not authority else up.netloc)
    assert request.headers["content-length"] == str(len(BODY)) and request.headers["Host"] == up.netloc
