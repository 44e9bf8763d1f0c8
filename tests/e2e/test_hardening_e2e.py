"""Security defaults and bad input at the HTTP level, through a real gateway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import refused_start

CHAT = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def strict_gateway(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    extra = [
        "--set",
        "gateway_body_limit=2k",
        "--set",
        "gateway_cors_origins=https://app.example",
        "--set",
        "codex_idle_timeout=1",
    ]
    with GatewayProcess(backend.port, login_home[0], tmp_path_factory.mktemp("strict"), extra=extra) as gw:
        yield gw


def test_oversized_body_is_413(strict_gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 4096}]}
    r = httpx.post(strict_gateway.base_url + "/v1/chat/completions", json=big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert backend.requests == []


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", None])
def test_curl_style_json_is_accepted(
    gateway: GatewayProcess, backend: FakeCodexBackend, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=httpx.Request("POST", "/", json=CHAT).content,
        headers=headers,
    )
    assert r.status_code == 200, r.text


def test_other_content_types_are_415(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    r = httpx.post(gateway.base_url + "/v1/chat/completions", content=b"<xml/>", headers={"content-type": "text/xml"})
    assert r.status_code == 415
    assert backend.requests == []


def test_invalid_utf8_is_a_400_envelope(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        content=b'{"model": "\xff\xfe"}',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert backend.requests == []


def test_cors_is_off_by_default(gateway: GatewayProcess) -> None:
    r = httpx.get(gateway.base_url + "/v1/models", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = httpx.options(gateway.base_url + "/v1/chat/completions", headers={"origin": "https://evil.example"})
    assert pre.status_code == 405 and "access-control-allow-origin" not in pre.headers


def test_cors_for_listed_origins(strict_gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    origin = {"origin": "https://app.example"}
    pre = httpx.options(
        strict_gateway.base_url + "/v1/chat/completions",
        headers={**origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type"},
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == "https://app.example"
    r = httpx.post(strict_gateway.base_url + "/v1/chat/completions", json=CHAT, headers=origin)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
    other = httpx.post(
        strict_gateway.base_url + "/v1/chat/completions", json=CHAT, headers={"origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in other.headers


def test_stalled_upstream_cuts_the_client_stream(strict_gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    release = threading.Event()
    backend.enqueue(SSEScript(ev.text(["a", "b"]), hold_after=4, release=release))
    try:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(strict_gateway.base_url + "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=30)
    finally:
        release.set()


def test_public_listener_without_key_is_refused(tmp_path: Path) -> None:
    assert "gateway_api_key" in refused_start("reverse:http://127.0.0.1:9@0.0.0.0:0", tmp_path)
