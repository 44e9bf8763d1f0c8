"""The mitmproxy side of the upstream proxy, called from the gateway's hooks.

- `route`: before a flow leaves, the proxy it goes through is checked (`ProxyGate.check`) and set as the flow's
  `server_conn.via`; mitmproxy then opens the connection through it, with a CONNECT (reverse mode always tunnels,
  also to an http:// backend), as its own `upstream` mode does.
- `authorize_connect`: the proxy's credentials go into that CONNECT's `Proxy-Authorization` header (the
  `http_connect_upstream` hook, as mitmproxy's `upstream_auth` addon does), never into the flow's request, which
  is shown and saved.
- `name_failure`: a flow whose connection through the proxy failed gets an error naming the proxy.
- `doctor_command`: `codex.doctor` runs `run_doctor` in the background and logs its report.
"""

from __future__ import annotations

import logging

from mitmproxy import connection
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from ..accounts.upstream_access import UpstreamAccess
from ..settings import Settings
from .doctor import run_doctor
from .gate import ProxyGate
from .proxy import ProxyURL

__all__ = ["route", "set_via", "authorize_connect", "name_failure", "doctor_command"]

logger = logging.getLogger(__name__)


async def route(
    flow: http.HTTPFlow, gate: ProxyGate, scheme: str, host: str, port: int, *, check: bool = True
) -> ProxyURL | None:
    """Routes `flow` (about to go to `host:port`) through its proxy, or directly; raises the 502 GatewayError
    when the proxy cannot take it now. `check=False` while server-replaying: no connection will be made."""
    proxy = gate.proxy_for(scheme, host)
    if proxy is not None and check:
        await gate.check(proxy, host, port)
    set_via(flow, proxy)
    return proxy


def set_via(flow: http.HTTPFlow, proxy: ProxyURL | None) -> None:
    via = None if proxy is None else (proxy.scheme, (proxy.host, proxy.port))
    server = flow.server_conn
    if server.via == via:
        return
    if server.timestamp_start is not None:
        # An opened connection cannot change its route (mitmproxy refuses): a new one is made for this flow.
        flow.server_conn = connection.Server(address=server.address)
    flow.server_conn.via = via  # type: ignore[assignment]  # ServerSpec's scheme is a Literal


def authorize_connect(flow: http.HTTPFlow, gate: ProxyGate) -> None:
    """`http_connect_upstream`: `flow` is mitmproxy's CONNECT to a proxy (its `server_conn` is the proxy)."""
    proxy = _proxy_at(gate, flow.server_conn.address)
    if proxy is not None and (auth := proxy.authorization()) is not None:
        flow.request.headers["Proxy-Authorization"] = auth


def name_failure(flow: http.HTTPFlow, gate: ProxyGate) -> None:
    """For the `error` hook: when `flow`'s connection through a proxy was never made, its error (saved, shown, and
    summarised into the comment) names the proxy, and the next flow re-checks the whole tunnel."""
    via = flow.server_conn.via
    if via is None or flow.error is None or flow.response is not None or flow.server_conn.timestamp_start:
        return
    proxy = _proxy_at(gate, via[1])
    if proxy is None:
        return
    gate.failed(proxy, flow.request.host, flow.request.port)
    flow.error.msg = gate.failure_message(proxy, flow.error.msg)


def _proxy_at(gate: ProxyGate, address: tuple[str, int] | None) -> ProxyURL | None:
    return next((p for p in gate.config.proxies() if (p.host, p.port) == address), None)


def doctor_command(settings: Settings | None, access: UpstreamAccess | None) -> str:
    """Starts the check; its report goes to the event log (mitmweb's Event Log, mitmdump's output)."""
    if settings is None or access is None:
        return "codex.doctor: the gateway is not configured yet"

    async def run() -> None:
        report = await run_doctor(settings, access=access)
        logger.log(logging.INFO if report.ok else logging.WARNING, report.format())

    asyncio_utils.create_task(run(), name="codex.doctor", keep_ref=True)
    return f"codex.doctor: checking the path to {settings.upstream_url('')}; the report follows in the event log"
