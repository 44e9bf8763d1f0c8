"""A small asyncio HTTP proxy for unit tests (the e2e tests use a real mitmdump instead).

A CONNECT is answered with `connect_status` (200: the connection then becomes a tunnel to the target); an
absolute-form request is answered by the proxy itself with `200 proxied <method> <url>`. Every request head is
recorded (method, target, headers), and so is every accepted connection, including ones that send nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from dataclasses import field


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]


@dataclass
class FakeConnectProxy:
    connect_status: str = "200 Connection established"
    tunnel: bool = True  # False: a CONNECT is answered, then the connection closed (no target needed)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> FakeConnectProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def connects(self) -> list[Seen]:
        return [s for s in self.seen if s.method == "CONNECT"]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        self.seen.append(Seen(method, target, {k.lower(): v for k, v in headers.items()}))
        if method != "CONNECT":
            body = f"proxied {method} {target}".encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            writer.close()
            return
        writer.write(f"HTTP/1.1 {self.connect_status}\r\n\r\n".encode())
        await writer.drain()
        if not self.connect_status.startswith("200") or not self.tunnel:
            writer.close()
            return
        host, _, port = target.rpartition(":")
        try:
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()
