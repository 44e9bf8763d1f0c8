"""The upstream proxy in the addon's hooks (taddons/tflow), against a loopback proxy (scripts/fakes/connect_proxy)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from codex_gateway.addon import CodexGateway
from codex_gateway.upstream import flows
from codex_gateway.upstream.gate import ProxyGate
from codex_gateway.upstream.proxy import ProxyConfig
from codex_gateway.upstream.proxy import ProxyURL
from mitmproxy import connection
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.proxy import mode_specs
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

from scripts.fakes.connect_proxy import FakeConnectProxy
from scripts.gateway_process import free_port
from scripts.gateway_process import write_codex_home

CHAT = orjson.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]})
UPSTREAM = "https://chatgpt.com/backend-api/codex"


@pytest.fixture
async def proxy() -> AsyncIterator[FakeConnectProxy]:
    fake = await FakeConnectProxy(tunnel=False).start()
    yield fake
    await fake.stop()


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[CodexGateway, taddons.context]]:
    write_codex_home(tmp_path)
    gw = CodexGateway()
    with taddons.context(gw) as tctx:
        tctx.configure(gw, codex_home=str(tmp_path), gateway_home=str(tmp_path / "gw"), codex_upstream=UPSTREAM)
        yield gw, tctx


def chat_flow() -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(method=b"POST", path=b"/v1/chat/completions", content=CHAT))
    f.client_conn.proxy_mode = mode_specs.ProxyMode.parse("reverse:http://x")
    f.server_conn = connection.Server(address=("x", 80))  # lazy: not connected yet
    return f


def use_proxy(gateway: tuple[CodexGateway, taddons.context], url: str) -> None:
    gw, tctx = gateway
    tctx.configure(gw, codex_proxy=url)


# -- options --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["socks5://127.0.0.1:1080", "127.0.0.1:3128", "http://u:pw@host:notaport"])
def test_an_unusable_proxy_is_an_options_error(gateway: tuple[CodexGateway, taddons.context], url: str) -> None:
    with pytest.raises(exceptions.OptionsError, match="codex_proxy") as caught:
        use_proxy(gateway, url)
    assert "pw" not in str(caught.value)


def test_the_route_is_logged_once_with_the_credentials_masked(
    gateway: tuple[CodexGateway, taddons.context], caplog: pytest.LogCaptureFixture
) -> None:
    gw, tctx = gateway
    with caplog.at_level(logging.INFO, logger="codex_gateway.addon"):
        use_proxy(gateway, "http://alice:s3cret@127.0.0.1:3128")
        tctx.configure(gw, codex_idle_timeout=30)  # another option: no second line
    lines = [r.getMessage() for r in caplog.records if "upstream connections" in r.getMessage()]
    assert lines == [
        "codex-gateway: upstream connections go through the proxy http://***@127.0.0.1:3128 (from codex_proxy)"
    ]


def test_a_new_proxy_gets_a_new_side_request_client(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    before = gw.access
    use_proxy(gateway, "http://127.0.0.1:3128")
    assert gw.access is not before and gw.access is not None and gw.access.pool.http is gw.access.client()


# -- request ----------------------------------------------------------------------------------------------------


async def test_a_flow_goes_via_the_proxy(
    gateway: tuple[CodexGateway, taddons.context], proxy: FakeConnectProxy
) -> None:
    gw, _ = gateway
    use_proxy(gateway, f"http://alice:s3cret@127.0.0.1:{proxy.port}")
    f = chat_flow()
    await gw.request(f)
    assert f.response is None
    assert f.server_conn.via == ("http", ("127.0.0.1", proxy.port))
    assert [s.target for s in proxy.connects] == ["chatgpt.com:443"]


async def test_credentials_never_enter_the_flow(
    gateway: tuple[CodexGateway, taddons.context], proxy: FakeConnectProxy
) -> None:
    gw, _ = gateway
    use_proxy(gateway, f"http://alice:s3cret@127.0.0.1:{proxy.port}")
    f = chat_flow()
    await gw.request(f)
    state = repr(f.get_state())
    assert "s3cret" not in state and "YWxpY2U6czNjcmV0" not in state


async def test_a_no_proxy_upstream_goes_direct(
    gateway: tuple[CodexGateway, taddons.context], proxy: FakeConnectProxy
) -> None:
    gw, tctx = gateway
    tctx.configure(gw, codex_proxy=f"http://127.0.0.1:{proxy.port}", codex_no_proxy="chatgpt.com")
    f = chat_flow()
    await gw.request(f)
    assert (f.response, f.server_conn.via, proxy.connections) == (None, None, 0)


async def test_a_stopped_proxy_is_a_502_envelope_naming_it(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    port = free_port()
    use_proxy(gateway, f"http://alice:s3cret@127.0.0.1:{port}")
    f = chat_flow()
    await gw.request(f)
    assert f.response is not None and f.response.status_code == 502
    assert f.response.headers["content-type"] == "application/json"
    error = orjson.loads(f.response.content)["error"]
    assert (error["type"], error["code"]) == ("server_error", "upstream_proxy_error")
    assert f"the upstream proxy 127.0.0.1:{port} is unreachable" in error["message"]
    assert f.comment and f"127.0.0.1:{port}" in f.comment
    assert "s3cret" not in repr(f.get_state())


async def test_a_refused_connect_is_a_502_envelope(
    gateway: tuple[CodexGateway, taddons.context], proxy: FakeConnectProxy
) -> None:
    gw, _ = gateway
    proxy.connect_status = "407 Proxy Authentication Required"
    use_proxy(gateway, f"http://127.0.0.1:{proxy.port}")
    f = chat_flow()
    await gw.request(f)
    assert f.response is not None and f.response.status_code == 502
    assert "refused CONNECT chatgpt.com:443 (HTTP 407" in orjson.loads(f.response.content)["error"]["message"]


async def test_a_replayed_upstream_request_goes_via_the_proxy(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    use_proxy(gateway, "http://alice:s3cret@proxy:3128")
    f = tflow.tflow(req=tutils.treq(method=b"POST", host="chatgpt.com", port=443, path=b"/backend-api/codex/responses"))
    f.request.scheme = "https"
    f.client_conn.proxy_mode = mode_specs.ProxyMode.parse("reverse:http://x")
    f.is_replay = "request"  # `replay.client` of a saved flow: no check, only the route
    await gw.request(f)
    assert f.server_conn.via == ("http", ("proxy", 3128))


# -- set_via, CONNECT, error ---------------------------------------------------------------------------------------


def test_set_via_replaces_an_opened_connection() -> None:
    f = tflow.tflow()  # its server_conn has been opened
    opened = f.server_conn
    flows.set_via(f, ProxyURL("http", "proxy", 3128))
    assert f.server_conn is not opened and f.server_conn.via == ("http", ("proxy", 3128))
    assert f.server_conn.address == opened.address


def test_set_via_keeps_a_connection_on_the_same_route() -> None:
    f = tflow.tflow()
    f.server_conn.via = ("http", ("proxy", 3128))
    opened = f.server_conn
    flows.set_via(f, ProxyURL("http", "proxy", 3128))
    assert f.server_conn is opened


def connect_flow(address: tuple[str, int]) -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(method=b"CONNECT", path=b"", authority=b"chatgpt.com:443"))
    f.server_conn = connection.Server(address=address)
    return f


@pytest.mark.parametrize(
    "address, expected", [(("proxy", 3128), "Basic YWxpY2U6czNjcmV0"), (("elsewhere", 3128), None)]
)
def test_the_connect_to_the_proxy_carries_its_credentials(address: tuple[str, int], expected: str | None) -> None:
    url = ProxyURL("http", "proxy", 3128, "alice", "s3cret")
    f = connect_flow(address)
    flows.authorize_connect(f, ProxyGate(ProxyConfig(https=url, http=url)))
    assert f.request.headers.get("Proxy-Authorization") == expected


def test_the_hook_authorizes_the_connect(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    use_proxy(gateway, "http://alice:s3cret@proxy:3128")
    f = connect_flow(("proxy", 3128))
    gw.http_connect_upstream(f)
    assert f.request.headers["Proxy-Authorization"] == "Basic YWxpY2U6czNjcmV0"


async def test_a_flow_that_failed_at_the_proxy_names_it_in_its_comment(
    gateway: tuple[CodexGateway, taddons.context], proxy: FakeConnectProxy
) -> None:
    gw, _ = gateway
    use_proxy(gateway, f"http://alice:s3cret@127.0.0.1:{proxy.port}")
    f = chat_flow()
    await gw.request(f)
    f.error = tflow.terr("Upstream proxy 127.0.0.1 refused HTTP CONNECT request: 502 Bad Gateway")
    gw.error(f)
    assert f.comment and f"via the upstream proxy 127.0.0.1:{proxy.port}" in f.comment


async def test_after_a_failed_flow_the_next_one_checks_the_tunnel_again(
    gateway: tuple[CodexGateway, taddons.context], proxy: FakeConnectProxy
) -> None:
    gw, _ = gateway
    use_proxy(gateway, f"http://127.0.0.1:{proxy.port}")
    first = chat_flow()
    await gw.request(first)
    first.error = tflow.terr("connection refused")
    gw.error(first)
    await gw.request(chat_flow())
    assert len(proxy.connects) == 2


def test_a_failure_after_the_connection_was_made_is_not_the_proxy_s() -> None:
    url = ProxyURL("http", "proxy", 3128)
    f = tflow.tflow(err=True)
    f.server_conn.via = ("http", ("proxy", 3128))
    flows.name_failure(f, ProxyGate(ProxyConfig(https=url, http=url)))
    assert f.error is not None and f.error.msg == "error"


# -- codex.doctor ---------------------------------------------------------------------------------------------------


async def test_the_doctor_command_reports_in_the_log(
    gateway: tuple[CodexGateway, taddons.context], caplog: pytest.LogCaptureFixture
) -> None:
    gw, tctx = gateway
    port = free_port()
    use_proxy(gateway, f"http://alice:s3cret@127.0.0.1:{port}")
    with caplog.at_level(logging.INFO, logger="codex_gateway.upstream.flows"):
        answer = tctx.command(gw.doctor)
        await next(t for t in asyncio.all_tasks() if t.get_name().startswith("codex.doctor"))  # run as a task
    assert answer.startswith("codex.doctor: checking the path to https://chatgpt.com/backend-api/codex")
    report = caplog.records[0].getMessage()
    assert caplog.records[0].levelno == logging.WARNING
    assert f"verdict: FAILED at TCP: the upstream proxy 127.0.0.1:{port} is unreachable" in report
    assert "s3cret" not in report
