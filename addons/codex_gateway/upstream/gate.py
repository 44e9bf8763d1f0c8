"""Which proxy a flow to the backend goes through, and the check before it goes. No mitmproxy here.

Why a check: when mitmproxy cannot open a connection (the proxy is down, or refuses the CONNECT), it answers the
client with its own HTML 502 page after the `error` hook, and no hook can replace that answer. So before a
proxied flow leaves, the gateway opens a TCP connection to the proxy (a stopped proxy is found at once) and,
when no tunnel to the target succeeded within `tunnel_ttl` seconds (or a flow's connection failed since), a
whole CONNECT; a failure becomes a 502 OpenAI envelope naming the proxy. What fails between the check and the
flow's own connection still gets mitmproxy's page; the flow's comment then names the proxy (`failure_message`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..errors import GatewayError
from .proxy import ProxyConfig
from .proxy import ProxyURL
from .tunnel import Connection
from .tunnel import PathError
from .tunnel import connect
from .tunnel import send_connect
from .tunnel import start_tls

__all__ = ["ProxyGate", "proxy_unavailable"]

PROXY_ERROR_CODE = "upstream_proxy_error"

Key = tuple[ProxyURL, str, int]


def proxy_unavailable(reason: str) -> GatewayError:
    return GatewayError(502, f"The gateway cannot reach the Codex backend: {reason}.", code=PROXY_ERROR_CODE)


class ProxyGate:
    def __init__(
        self,
        config: ProxyConfig,
        *,
        timeout: float = 10.0,
        tunnel_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.tunnel_ttl = tunnel_ttl
        self.clock = clock
        self._tunnel_ok: dict[Key, float] = {}  # when a CONNECT to the target last succeeded
        self._locks: dict[Key, asyncio.Lock] = {}

    def proxy_for(self, scheme: str, host: str) -> ProxyURL | None:
        return self.config.for_target(scheme, host)

    async def check(self, proxy: ProxyURL, host: str, port: int) -> None:
        """Raises the 502 GatewayError when `proxy` cannot take a connection to `host:port` now."""
        key = (proxy, host, port)
        if self._fresh(key):
            await self._probe(proxy, None)
            return
        async with self._locks.setdefault(key, asyncio.Lock()):  # concurrent first requests share one CONNECT
            if self._fresh(key):
                return
            await self._probe(proxy, (host, port))
            self._tunnel_ok[key] = self.clock()

    def failed(self, proxy: ProxyURL, host: str, port: int) -> None:
        """A flow's connection through `proxy` failed: the next flow checks the whole tunnel again."""
        self._tunnel_ok.pop((proxy, host, port), None)

    def failure_message(self, proxy: ProxyURL, error: str) -> str:
        """A failed flow's error, naming the proxy it went through (mitmproxy's message names neither)."""
        return f"via the upstream proxy {proxy.address}: {proxy.mask(error)}"

    def _fresh(self, key: Key) -> bool:
        ok_at = self._tunnel_ok.get(key)
        return ok_at is not None and self.clock() - ok_at < self.tunnel_ttl

    async def _probe(self, proxy: ProxyURL, target: tuple[str, int] | None) -> None:
        conn: Connection | None = None
        try:
            conn = await connect(proxy.host, proxy.port, self.timeout, what="the upstream proxy")
            if target is not None:
                if proxy.scheme == "https":
                    await start_tls(conn, proxy.host, self.timeout)
                await send_connect(conn, proxy, *target, self.timeout)
        except PathError as e:
            raise proxy_unavailable(proxy.mask(str(e))) from None
        finally:
            if conn is not None:
                await conn.close()
