"""upstream.gate: the check before a proxied flow, against a real loopback proxy (scripts/fakes/connect_proxy.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from codex_gateway.errors import GatewayError
from codex_gateway.upstream.gate import ProxyGate
from codex_gateway.upstream.proxy import ProxyConfig
from codex_gateway.upstream.proxy import ProxyURL

from scripts.fakes.connect_proxy import FakeConnectProxy
from scripts.gateway_process import free_port

TARGET = ("chatgpt.com", 443)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def proxy() -> AsyncIterator[FakeConnectProxy]:
    fake = await FakeConnectProxy(tunnel=False).start()
    yield fake
    await fake.stop()


def gate_for(url: ProxyURL, clock: Clock | None = None) -> ProxyGate:
    return ProxyGate(ProxyConfig(https=url, http=url, source="codex_proxy"), timeout=5, clock=clock or Clock())


def at(fake: FakeConnectProxy, user: str = "", password: str = "") -> ProxyURL:
    return ProxyURL("http", "127.0.0.1", fake.port, user, password)


async def test_a_first_check_sends_a_connect_with_the_credentials(proxy: FakeConnectProxy) -> None:
    await gate_for(at(proxy, "alice", "s3cret")).check(at(proxy, "alice", "s3cret"), *TARGET)
    assert [(s.target, s.headers["proxy-authorization"]) for s in proxy.seen] == [
        ("chatgpt.com:443", "Basic YWxpY2U6czNjcmV0")
    ]


async def test_within_the_ttl_only_a_connection_is_opened(proxy: FakeConnectProxy) -> None:
    gate = gate_for(at(proxy))
    for _ in range(3):
        await gate.check(at(proxy), *TARGET)
    assert (proxy.connections, len(proxy.connects)) == (3, 1)


async def test_after_the_ttl_the_tunnel_is_checked_again(proxy: FakeConnectProxy) -> None:
    clock = Clock()
    gate = gate_for(at(proxy), clock)
    await gate.check(at(proxy), *TARGET)
    clock.now += gate.tunnel_ttl
    await gate.check(at(proxy), *TARGET)
    assert len(proxy.connects) == 2


async def test_after_a_failed_flow_the_tunnel_is_checked_again(proxy: FakeConnectProxy) -> None:
    gate = gate_for(at(proxy))
    await gate.check(at(proxy), *TARGET)
    gate.failed(at(proxy), *TARGET)
    await gate.check(at(proxy), *TARGET)
    assert len(proxy.connects) == 2


async def test_concurrent_first_checks_share_one_connect(proxy: FakeConnectProxy) -> None:
    gate = gate_for(at(proxy))
    await asyncio.gather(*(gate.check(at(proxy), *TARGET) for _ in range(5)))
    assert len(proxy.connects) == 1


async def test_a_stopped_proxy_is_a_502_naming_it() -> None:
    url = ProxyURL("http", "127.0.0.1", free_port(), "alice", "s3cret")
    with pytest.raises(GatewayError) as caught:
        await gate_for(url).check(url, *TARGET)
    e = caught.value
    assert (e.status, e.code, e.type) == (502, "upstream_proxy_error", "server_error")
    assert f"the upstream proxy 127.0.0.1:{url.port} is unreachable" in e.message
    assert "s3cret" not in e.message and "alice" not in e.message


async def test_a_stopped_proxy_is_found_even_within_the_ttl(proxy: FakeConnectProxy) -> None:
    gate = gate_for(at(proxy))
    await gate.check(at(proxy), *TARGET)
    await proxy.stop()
    with pytest.raises(GatewayError, match="unreachable"):
        await gate.check(at(proxy), *TARGET)


@pytest.mark.parametrize("status", ["407 Proxy Authentication Required", "403 Forbidden", "502 Bad Gateway"])
async def test_a_refused_connect_is_a_502_naming_the_proxy_and_its_answer(proxy: FakeConnectProxy, status: str) -> None:
    proxy.connect_status = status
    with pytest.raises(GatewayError) as caught:
        await gate_for(at(proxy)).check(at(proxy), *TARGET)
    assert caught.value.status == 502
    assert f"the upstream proxy 127.0.0.1:{proxy.port} refused CONNECT chatgpt.com:443 (HTTP {status})" in str(
        caught.value.message
    )


def test_failure_message_names_the_proxy_without_credentials() -> None:
    url = ProxyURL("http", "proxy", 3128, "alice", "s3cret")
    assert gate_for(url).failure_message(url, "refused: http://alice:s3cret@proxy:3128 s3cret") == (
        "via the upstream proxy proxy:3128: refused: http://***@proxy:3128 ***"
    )
