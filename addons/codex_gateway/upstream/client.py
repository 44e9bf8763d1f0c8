"""The httpx client of every side request to the backend and the issuer (token refresh, retries, the model catalog,
login, device code), routed by the same `ProxyConfig` as the flows: httpx's own proxy transport for proxied hosts,
a direct one for the rest (`codex_no_proxy`).

Errors that happen on the way through a proxy are re-raised with the proxy named (as `host:port`) and any
credentials masked, keeping their httpx type so callers handle them as before.
"""

from __future__ import annotations

from typing import Any

import httpx

from .proxy import ProxyConfig
from .proxy import ProxyURL

__all__ = ["ProxyRouter", "upstream_client"]


class ProxyRouter(httpx.AsyncBaseTransport):
    """Sends each request through the proxy `config.for_target` names for its URL, or directly.

    Each transport is made on its first request: it holds an SSL context with the CA bundle loaded (about 1 MiB
    resident), and a gateway whose tokens stay fresh and whose model list is cached may never send one."""

    def __init__(self, config: ProxyConfig, **transport_options: Any) -> None:
        self.config = config
        self._options = transport_options
        self._transports: dict[ProxyURL | None, httpx.AsyncHTTPTransport] = {}  # None: direct

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self.config.for_target(request.url.scheme, request.url.host)
        transport = self._transport(proxy)
        if proxy is None:
            return await transport.handle_async_request(request)
        try:
            return await transport.handle_async_request(request)
        except httpx.TransportError as e:
            raise _named(e, proxy, request) from None

    def _transport(self, proxy: ProxyURL | None) -> httpx.AsyncHTTPTransport:
        transport = self._transports.get(proxy)
        if transport is None:
            via = None if proxy is None else httpx.Proxy(proxy.url())
            transport = self._transports[proxy] = httpx.AsyncHTTPTransport(proxy=via, **self._options)
        return transport

    async def aclose(self) -> None:
        for transport in self._transports.values():
            await transport.aclose()


def _named(e: httpx.TransportError, proxy: ProxyURL, request: httpx.Request) -> httpx.TransportError:
    message = f"via the upstream proxy {proxy.address}: {proxy.mask(str(e)) or type(e).__name__}"
    return type(e)(message, request=request)


def upstream_client(config: ProxyConfig, timeout: httpx.Timeout) -> httpx.AsyncClient:
    """An AsyncClient whose every request follows `config` (the environment's proxy settings are already in it)."""
    return httpx.AsyncClient(timeout=timeout, transport=ProxyRouter(config))
