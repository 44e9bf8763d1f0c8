"""Load: 64 concurrent streaming clients through one gateway, and the gateway's memory across rounds.

A dedicated fake backend and gateway (own codex home and gateway_home) keep the numbers free of other tests'
state. The fake echoes per request: its `default_script` builds the answer from the request's last user message,
so every client can check that its stream carries its own text, complete and in order, and nothing of another
client's. Each stream is held by the fake after its first delta until all 64 requests of the round have arrived
upstream, which proves they were in flight through the gateway at the same time.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import httpx
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import RecordedRequest
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import write_codex_home
from tests.conftest import check_chat_stream
from tests.conftest import parse_chat_sse

CLIENTS = 64
DELTAS = 8
MEASURED_ROUNDS = 3
MAX_GROWTH_KIB = 20 * 1024
PIECE = re.compile(rb"<([0-9a-f]{32}):(\d+)>")


@dataclass
class EchoBackend:
    """The fake's default answer: `<token:k>` for k in 0..DELTAS-1, where token is the last user message."""

    backend: FakeCodexBackend
    release: threading.Event = field(default_factory=threading.Event)
    arrived: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def new_round(self) -> None:
        with self.lock:
            self.release, self.arrived = threading.Event(), 0

    def script(self, rec: RecordedRequest) -> SSEScript:
        assert isinstance(rec.json, dict)
        last_user = next(it for it in reversed(rec.json["input"]) if it.get("role") == "user")
        token = last_user["content"][0]["text"]
        events = ev.text([f"<{token}:{k}>" for k in range(DELTAS)], response_id=f"resp_{token}")
        first_delta = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.delta")
        with self.lock:
            self.arrived += 1
            release = self.release
            if self.arrived == CLIENTS:
                release.set()  # the last request of the round is upstream: let every stream go on
        return SSEScript(events, hold_after=first_delta + 1, release=release)


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoBackend]:
    with FakeCodexBackend() as backend:
        echo = EchoBackend(backend)
        backend.default_script = echo.script  # type: ignore[method-assign]
        yield echo


@pytest.fixture(scope="module")
def load_gateway(echo: EchoBackend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    work = tmp_path_factory.mktemp("load")
    write_codex_home(work / "codex-home")
    with GatewayProcess(echo.backend.port, work / "codex-home", work / "gw") as gw:
        yield gw


def rss_kib(gateway: GatewayProcess) -> int:
    assert gateway.proc is not None
    status = Path(f"/proc/{gateway.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


async def one_stream(client: httpx.AsyncClient, token: str) -> bytes:
    body = {"model": "gpt-5.4", "messages": [{"role": "user", "content": token}], "stream": True}
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        return b"".join([piece async for piece in r.aiter_raw()])


async def one_round(gateway: GatewayProcess, echo: EchoBackend) -> None:
    """64 concurrent streams; each must be a complete, valid chat stream carrying exactly its own pieces."""
    echo.new_round()
    tokens = [uuid.uuid4().hex for _ in range(CLIENTS)]
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=gateway.base_url, timeout=60, limits=limits) as client:
        bodies = await asyncio.gather(*(one_stream(client, token) for token in tokens))
    assert echo.release.is_set() and echo.arrived == CLIENTS, "the streams were not all in flight together"
    for token, body in zip(tokens, bodies, strict=True):
        summary = check_chat_stream(parse_chat_sse(body), include_usage=False)
        assert (summary.ok, summary.finish_reason, summary.id) == (True, "stop", f"chatcmpl-{token}")
        assert PIECE.findall(body) == [(token.encode(), b"%d" % k) for k in range(DELTAS)], token
        assert summary.content == "".join(f"<{token}:{k}>" for k in range(DELTAS))


async def test_64_concurrent_streams_and_flat_memory(load_gateway: GatewayProcess, echo: EchoBackend) -> None:
    await one_round(load_gateway, echo)  # warm-up: imports, caches, connection pools, allocator arenas
    before = rss_kib(load_gateway)
    for _ in range(MEASURED_ROUNDS):
        await one_round(load_gateway, echo)
    growth = rss_kib(load_gateway) - before
    print(f"VmRSS {before} KiB after warm-up, +{growth} KiB after {MEASURED_ROUNDS} rounds")
    assert growth < MAX_GROWTH_KIB, f"VmRSS grew by {growth} KiB over {MEASURED_ROUNDS * CLIENTS} streams"
