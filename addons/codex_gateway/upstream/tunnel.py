"""Asyncio building blocks for checking the path to the backend: resolve, connect, CONNECT through an HTTP
proxy, TLS. Used by the check before a proxied flow (`gate`) and by `doctor`. No mitmproxy here.

Every failure is a `PathError` whose message names the hop as `host:port`; proxy credentials only ever travel
in the CONNECT's `Proxy-Authorization` header and never appear in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
from dataclasses import dataclass

import httpx

from .proxy import ProxyURL

__all__ = ["PathError", "Connection", "resolve", "connect", "send_connect", "start_tls", "hostport", "tls_context"]

_HEAD_LIMIT = 64 * 1024


class PathError(Exception):
    """A step on the way to the backend failed; `str()` says which hop and why, without credentials."""


@dataclass
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            async with asyncio.timeout(1):
                await self.writer.wait_closed()


def hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def tls_context() -> ssl.SSLContext:
    """The trust the side requests use (httpx's: certifi, or `SSL_CERT_FILE`/`SSL_CERT_DIR`)."""
    return httpx.create_ssl_context()


async def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses `host` resolves to (in the resolver's order), or PathError."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except TimeoutError:
        raise PathError(f"resolving {host} timed out after {timeout:g} s") from None
    except OSError as e:
        raise PathError(f"cannot resolve {host} ({_reason(e)})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def connect(host: str, port: int, timeout: float, *, what: str = "") -> Connection:
    """A TCP connection to `host:port`; `what` names the hop in messages (e.g. "the upstream proxy")."""
    name = f"{what} {hostport(host, port)}".strip()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port, limit=_HEAD_LIMIT)
    except TimeoutError:
        raise PathError(f"{name} is unreachable (no connection within {timeout:g} s)") from None
    except OSError as e:
        raise PathError(f"{name} is unreachable ({_reason(e)})") from None
    return Connection(reader, writer)


async def send_connect(conn: Connection, proxy: ProxyURL, host: str, port: int, timeout: float) -> str:
    """Asks the proxy for a tunnel to `host:port`; returns its status line, or raises PathError when refused."""
    target = hostport(host, port)
    lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
    if (auth := proxy.authorization()) is not None:
        lines.append(f"Proxy-Authorization: {auth}")
    conn.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    try:
        async with asyncio.timeout(timeout):
            await conn.writer.drain()
            head = await conn.reader.readuntil(b"\r\n\r\n")
    except TimeoutError:
        raise PathError(
            f"the upstream proxy {proxy.address} did not answer CONNECT {target} within {timeout:g} s"
        ) from None
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        raise PathError(f"the upstream proxy {proxy.address} closed the connection on CONNECT {target}") from None
    status_line = head.split(b"\r\n", 1)[0].decode("latin-1").strip()
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise PathError(f"the upstream proxy {proxy.address} answered CONNECT {target} with {status_line[:80]!r}")
    if not 200 <= int(parts[1]) < 300:
        reason = proxy.mask(" ".join(parts[1:])[:120])
        raise PathError(f"the upstream proxy {proxy.address} refused CONNECT {target} (HTTP {reason})")
    return status_line


async def start_tls(conn: Connection, server_name: str, timeout: float, context: ssl.SSLContext | None = None) -> str:
    """Upgrades `conn` to TLS, verifying `server_name`'s certificate; returns the TLS version."""
    try:
        async with asyncio.timeout(timeout):
            await conn.writer.start_tls(context or tls_context(), server_hostname=server_name)
    except TimeoutError:
        raise PathError(f"the TLS handshake with {server_name} timed out after {timeout:g} s") from None
    except ssl.SSLCertVerificationError as e:
        raise PathError(f"the certificate of {server_name} is not trusted ({e.verify_message})") from None
    except (ssl.SSLError, OSError) as e:
        raise PathError(f"the TLS handshake with {server_name} failed ({_reason(e)})") from None
    ssl_object = conn.writer.get_extra_info("ssl_object")
    return str(ssl_object.version()) if ssl_object is not None else "TLS"


def _reason(e: OSError) -> str:
    if isinstance(e, socket.gaierror):
        return f"name resolution: {e.strerror}"
    if e.errno:  # asyncio's "Connect call failed (...)" says less than "Connection refused"
        return os.strerror(e.errno)
    return str(e) or type(e).__name__
