"""upstream.client: side requests follow the ProxyConfig (a loopback proxy and origin: scripts/fakes/connect_proxy)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from codex_gateway.accounts.oauth import OAuthError
from codex_gateway.accounts.oauth import refresh_tokens
from codex_gateway.upstream.client import upstream_client
from codex_gateway.upstream.proxy import NoProxy
from codex_gateway.upstream.proxy import ProxyConfig
from codex_gateway.upstream.proxy import ProxyURL
from codex_gateway.upstream.proxy import parse_no_proxy

from scripts.fakes.connect_proxy import FakeConnectProxy
from scripts.gateway_process import free_port

TIMEOUT = httpx.Timeout(5.0)


@pytest.fixture
async def proxy() -> AsyncIterator[FakeConnectProxy]:
    fake = await FakeConnectProxy(tunnel=False).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def origin() -> AsyncIterator[FakeConnectProxy]:
    """A plain server: it answers origin-form requests itself, as the fake proxy answers every non-CONNECT."""
    fake = await FakeConnectProxy().start()
    yield fake
    await fake.stop()


def config(proxy: FakeConnectProxy, no_proxy: NoProxy | None = None) -> ProxyConfig:
    url = ProxyURL("http", "127.0.0.1", proxy.port, "alice", "s3cret")
    return ProxyConfig(https=url, http=url, no_proxy=no_proxy or NoProxy(), source="codex_proxy")


async def test_an_http_request_goes_to_the_proxy_in_absolute_form_with_its_credentials(
    proxy: FakeConnectProxy,
) -> None:
    async with upstream_client(config(proxy), TIMEOUT) as client:
        answer = await client.get("http://backend.test/models?x=1")
    assert answer.text == "proxied GET http://backend.test/models?x=1"
    assert proxy.seen[0].headers["proxy-authorization"] == "Basic YWxpY2U6czNjcmV0"


async def test_an_https_request_is_tunnelled_with_a_connect(proxy: FakeConnectProxy) -> None:
    async with upstream_client(config(proxy), TIMEOUT) as client:
        with pytest.raises(httpx.TransportError):  # the fake closes the tunnel after its 200
            await client.get("https://backend.test/models")
    assert [(s.method, s.target) for s in proxy.seen] == [("CONNECT", "backend.test:443")]
    assert proxy.seen[0].headers["proxy-authorization"] == "Basic YWxpY2U6czNjcmV0"


async def test_a_no_proxy_host_goes_direct(proxy: FakeConnectProxy, origin: FakeConnectProxy) -> None:
    async with upstream_client(config(proxy, parse_no_proxy("127.0.0.1")), TIMEOUT) as client:
        answer = await client.get(f"http://127.0.0.1:{origin.port}/models")
    assert (answer.text, proxy.seen) == ("proxied GET /models", [])


async def test_a_failure_through_the_proxy_names_it_without_credentials() -> None:
    port = free_port()
    url = ProxyURL("http", "127.0.0.1", port, "alice", "s3cret")
    async with upstream_client(ProxyConfig(https=url, http=url), TIMEOUT) as client:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get("http://backend.test/models")
    message = str(caught.value)
    assert message.startswith(f"via the upstream proxy 127.0.0.1:{port}: ")
    assert "s3cret" not in message and "alice" not in message


async def test_a_refused_connect_keeps_its_httpx_type(proxy: FakeConnectProxy) -> None:
    proxy.connect_status = "407 Proxy Authentication Required"
    async with upstream_client(config(proxy), TIMEOUT) as client:
        with pytest.raises(httpx.ProxyError, match=f"via the upstream proxy 127.0.0.1:{proxy.port}: "):
            await client.get("https://backend.test/models")


async def test_direct_config_sends_directly(origin: FakeConnectProxy) -> None:
    async with upstream_client(ProxyConfig(), TIMEOUT) as client:
        answer = await client.get(f"http://127.0.0.1:{origin.port}/models")
    assert answer.text == "proxied GET /models"


async def test_oauth_without_a_client_follows_the_environment(
    proxy: FakeConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
    with pytest.raises(OAuthError):  # the fake proxy answers itself, with no token
        await refresh_tokens(None, "http://issuer.test", "rt_x")
    assert [(s.method, s.target) for s in proxy.seen] == [("POST", "http://issuer.test/oauth/token")]


async def test_the_ca_bundle_is_loaded_on_the_first_request_once_per_route(
    proxy: FakeConnectProxy, origin: FakeConnectProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each transport's SSL context holds the CA bundle (about 1 MiB resident): a client that sends nothing, as a
    gateway with fresh tokens and a cached model list, loads none."""
    loads: list[object] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        original(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    async with upstream_client(config(proxy, parse_no_proxy("127.0.0.1")), TIMEOUT) as client:
        assert loads == []
        for _ in range(2):
            await client.get(f"http://127.0.0.1:{origin.port}/models")  # direct
        assert len(loads) == 1
        for _ in range(2):
            await client.get("http://backend.test/models")  # through the proxy
        assert len(loads) == 2
