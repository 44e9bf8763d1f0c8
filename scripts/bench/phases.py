"""What the benchmark measures: the requests, the five phases, and the run that starts and stops the processes.

Modes are interleaved (direct, pass-through, gateway, direct, ...: small requests one by one, streams round by
round) so that drift on a shared machine hits them all alike; a compared gateway (`--compare`) takes its turn like
the others. Phase 1 also measures the buffered pass-through (a reference, see report.MODES) the same way; phases
2-4 only the core modes. Each figure keeps every sample; rows.py turns them into the table.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx

from ..gateway_process import write_codex_home
from .backend import bench_text
from .backend import expected_content
from .procs import BACKEND_HEADERS
from .procs import Backend
from .procs import Proxy
from .procs import cpu_seconds
from .procs import status_kib
from .report import COMPARE
from .report import GATEWAYS
from .report import MODES
from .report import REFERENCE_MODES
from .report import Dist
from .report import core_modes
from .report import run_modes

MODEL = "gpt-5.4"
FRAMING_EVENTS = 8  # lifecycle and done events around the deltas of one answer
# What the first content byte looks like: a chat delta through a gateway, a Codex text delta anywhere else.
CHAT_CONTENT = re.compile(rb'"content":"[^"]')
CODEX_CONTENT = re.compile(rb"output_text\.delta")


class BenchError(RuntimeError):
    pass


def sized(full: int, *, quick: int) -> Any:
    """A parameter's value in a full run and with `--quick` (the smoke test's tiny run)."""
    return field(default=full, metadata={"quick": quick})


@dataclass
class Params:
    latency_samples: int = sized(300, quick=10)
    rps_requests: int = sized(400, quick=40)
    rps_rounds: int = sized(5, quick=1)
    concurrency: int = sized(8, quick=8)
    ttft_samples: int = sized(60, quick=3)
    ttft_deltas: int = sized(1, quick=1)
    long_deltas: int = sized(5000, quick=500)
    long_runs: int = sized(15, quick=1)  # a shared 2-core VM: single runs of one mode vary twofold, the p50 needs many
    burst_streams: int = sized(32, quick=8)
    burst_deltas: int = sized(20, quick=3)
    burst_rounds: int = sized(3, quick=1)
    startup_samples: int = sized(5, quick=1)
    warmup: int = sized(20, quick=3)

    @classmethod
    def quick(cls) -> Params:
        return cls(**{f.name: f.metadata["quick"] for f in fields(cls)})


def delay_schedule(i: int) -> float:
    """Sample i's upstream inter-delta delay, spread over 50..100 ms and the same in every mode."""
    return 50.0 + (i * 37) % 51


# ---------------------------------------------------------------------------------------------- requests


@dataclass
class Target:
    mode: str
    base_url: str
    proxy: Proxy | None

    def request(self, deltas: int, delay_ms: float, *, stream: bool) -> tuple[str, dict[str, str], bytes]:
        text = bench_text(deltas, delay_ms)
        if self.mode in GATEWAYS:
            chat = {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]}
            return (
                self.base_url + "/v1/chat/completions",
                {"content-type": "application/json"},
                json.dumps(chat).encode(),
            )
        body = {
            "model": MODEL,
            "instructions": "You are a helpful assistant.",
            "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}],
            "store": False,
            "stream": True,
            "include": [],
            "prompt_cache_key": "5b0f4f36-0000-4000-8000-000000000000",
        }
        headers = {**BACKEND_HEADERS, "accept": "text/event-stream", "content-type": "application/json"}
        return self.base_url + "/backend-api/codex/responses", headers, json.dumps(body).encode()

    def check(self, status: int, body: bytes, *, stream: bool, deltas: int) -> None:
        if status != 200:
            raise BenchError(f"{self.mode}: HTTP {status}: {body[:300]!r}")
        if self.mode not in GATEWAYS:
            ok = b"response.completed" in body[-2000:]
        elif stream:
            ok = body.endswith(b"data: [DONE]\n\n") and body.count(b'"content":"') >= deltas
        else:
            ok = json.loads(body)["choices"][0]["message"]["content"] == expected_content(deltas)
        if not ok:
            raise BenchError(f"{self.mode}: unexpected answer: {body[:300]!r} … {body[-300:]!r}")


def new_client(connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(trust_env=False, timeout=httpx.Timeout(60.0), limits=limits)


async def small_request(client: httpx.AsyncClient, target: Target) -> float:
    url, headers, body = target.request(3, 0, stream=False)
    t0 = time.perf_counter()
    resp = await client.post(url, headers=headers, content=body)
    dt = time.perf_counter() - t0
    target.check(resp.status_code, resp.content, stream=False, deltas=3)
    return dt


@dataclass
class StreamResult:
    ttft: float
    total: float
    body: bytes


async def stream_request(client: httpx.AsyncClient, target: Target, deltas: int, delay_ms: float) -> StreamResult:
    url, headers, body = target.request(deltas, delay_ms, stream=True)
    mark = CHAT_CONTENT if target.mode in GATEWAYS else CODEX_CONTENT
    pieces: list[bytes] = []
    ttft = math.nan
    t0 = time.perf_counter()
    async with client.stream("POST", url, headers=headers, content=body) as resp:
        async for piece in resp.aiter_raw():
            if math.isnan(ttft):
                pieces.append(piece)
                if mark.search(b"".join(pieces[-2:])):
                    ttft = time.perf_counter() - t0
            else:
                pieces.append(piece)
        total = time.perf_counter() - t0
        status = resp.status_code
    data = b"".join(pieces)
    target.check(status, data, stream=True, deltas=deltas)
    return StreamResult(ttft, total, data)


# ---------------------------------------------------------------------------------------------- phases


ByMode = dict[str, Dist]  # the samples of one figure, by mode


@dataclass
class Results:
    """Every sample of the run, figure by figure, grouped by the phase that takes them."""

    # 1) small requests
    latency: ByMode
    latency_back_to_back: ByMode
    rps: ByMode
    # 2) time to first content byte
    ttft: ByMode
    ttft_added: ByMode
    # 3) one long stream
    events_per_s: ByMode
    cpu_ms_per_1k: ByMode
    # 4) bursts; the proxies' memory, at start-up and at the end of the run
    burst_ttft: ByMode
    burst_wall: ByMode
    start_rss_mib: ByMode
    peak_rss_mib: ByMode
    # 5) start-up
    startup: ByMode

    @classmethod
    def empty(cls, modes: tuple[str, ...] = MODES) -> Results:
        names = cls.__dataclass_fields__
        return cls(**{name: {m: Dist() for m in modes} for name in names})


Log = Callable[[str], None]


async def phase_latency(
    targets: dict[str, Target], clients: dict[str, httpx.AsyncClient], p: Params, r: Results
) -> None:
    """Each mode's small requests two ways. The goal's figure: one request per mode in turn, the order rotating,
    so that drift on a shared 2-core VM (its speed changes within seconds) hits all modes alike; each request then
    meets a process that sat idle for a few ms, as sporadic agent traffic does. For reference: blocks of
    back-to-back requests per mode (warm caches), five rounds."""
    modes = list(targets)
    for i in range(p.latency_samples):
        for mode in modes[i % len(modes) :] + modes[: i % len(modes)]:
            r.latency[mode].values.append(await small_request(clients[mode], targets[mode]))
    block = max(1, p.latency_samples // 5)
    for _ in range(5):
        for mode in modes:
            for _ in range(block):
                r.latency_back_to_back[mode].values.append(await small_request(clients[mode], targets[mode]))


async def phase_rps(targets: dict[str, Target], clients: dict[str, httpx.AsyncClient], p: Params, r: Results) -> None:
    """Rounds of `rps_requests` per mode; each round starts with another mode (as phase 1's samples rotate), so
    the VM's drift within a round does not always favour the same mode."""
    modes = list(targets)
    for i in range(p.rps_rounds):
        for mode in modes[i % len(modes) :] + modes[: i % len(modes)]:
            left = p.rps_requests

            async def worker(target: Target, client: httpx.AsyncClient) -> None:
                nonlocal left
                while left > 0:
                    left -= 1
                    await small_request(client, target)

            t0 = time.perf_counter()
            await asyncio.gather(*(worker(targets[mode], clients[mode]) for _ in range(p.concurrency)))
            r.rps[mode].values.append(p.rps_requests / (time.perf_counter() - t0))


async def phase_ttft(targets: dict[str, Target], clients: dict[str, httpx.AsyncClient], p: Params, r: Results) -> None:
    for i in range(p.ttft_samples):
        got: dict[str, float] = {}
        for mode in core_modes(tuple(targets)):
            res = await stream_request(clients[mode], targets[mode], p.ttft_deltas, delay_schedule(i))
            got[mode] = res.ttft
            r.ttft[mode].values.append(res.ttft)
        for mode in got:
            r.ttft_added[mode].values.append(got[mode] - got["direct"])


async def phase_long(targets: dict[str, Target], clients: dict[str, httpx.AsyncClient], p: Params, r: Results) -> None:
    events = p.long_deltas + FRAMING_EVENTS
    for _ in range(p.long_runs):
        for mode in core_modes(tuple(targets)):
            proxy = targets[mode].proxy
            cpu0 = cpu_seconds(proxy.pid) if proxy else math.nan
            res = await stream_request(clients[mode], targets[mode], p.long_deltas, 0)
            await asyncio.sleep(0.2)  # let the proxy finish the flow (response hook, flow log) before reading CPU
            cpu1 = cpu_seconds(proxy.pid) if proxy else math.nan
            r.events_per_s[mode].values.append(events / res.total)
            if proxy:
                r.cpu_ms_per_1k[mode].values.append((cpu1 - cpu0) * 1000.0 / events * 1000.0)


async def phase_burst(targets: dict[str, Target], p: Params, r: Results) -> None:
    for _ in range(p.burst_rounds):
        for mode in core_modes(tuple(targets)):
            # Fresh connections: the burst is `burst_streams` clients arriving at once.
            async with new_client(p.burst_streams) as client:
                t0 = time.perf_counter()
                results = await asyncio.gather(
                    *(
                        stream_request(client, targets[mode], p.burst_deltas, delay_schedule(j))
                        for j in range(p.burst_streams)
                    )
                )
                r.burst_wall[mode].values.append(time.perf_counter() - t0)
            r.burst_ttft[mode].values += [res.ttft for res in results]


async def run_phases(targets: dict[str, Target], p: Params, r: Results, log: Log) -> None:
    clients = {mode: new_client(max(p.concurrency, 8)) for mode in targets}
    core = core_modes(tuple(targets))
    try:
        for mode in targets:  # warm-up: connections, imports, caches
            for _ in range(p.warmup):
                await small_request(clients[mode], targets[mode])
            if mode in core:  # the reference modes never stream
                await stream_request(clients[mode], targets[mode], 20, 0)
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("1) small requests, concurrency 1", lambda: phase_latency(targets, clients, p, r)),
            (f"1) small requests, concurrency {p.concurrency}", lambda: phase_rps(targets, clients, p, r)),
            ("2) time to first content byte", lambda: phase_ttft(targets, clients, p, r)),
            (f"3) long stream, {p.long_deltas} deltas", lambda: phase_long(targets, clients, p, r)),
            (f"4) burst of {p.burst_streams} streams", lambda: phase_burst(targets, p, r)),
        ]
        for title, step in steps:
            t0 = time.perf_counter()
            await step()
            log(f"  {title}: {time.perf_counter() - t0:.1f} s")
    finally:
        for client in clients.values():
            await client.aclose()


@dataclass
class Proxies:
    """How this run makes its proxies: every one in front of the same backend, with the same login."""

    modes: tuple[str, ...]
    backend: Backend
    home: Path
    workdir: Path
    quiet: bool
    compare: Path | None  # the addons/ directory the compared gateway runs from

    def new(self, kind: str) -> Proxy:
        addons = self.compare if kind == COMPARE else None
        return Proxy(kind, self.backend.port, self.home, self.workdir / kind, quiet=self.quiet, addons=addons)


def start_proxies(proxies: dict[str, Proxy], r: Results, log: Log) -> None:
    for kind, proxy in proxies.items():
        seconds = proxy.start()
        if kind not in REFERENCE_MODES:  # a reference's start-up is not compared (one start, not `startup_samples`)
            r.startup[kind].values.append(seconds)
        r.start_rss_mib[kind].values.append(status_kib(proxy.pid, "VmRSS") / 1024.0)
        log(f"{kind} on 127.0.0.1:{proxy.port} (pid {proxy.pid})")


def sample_startup(p: Params, proxies: Proxies, r: Results) -> None:
    """The remaining start-up samples, interleaved, each proxy alone on the machine but for the backend."""
    for _ in range(p.startup_samples - 1):
        for kind in [m for m in core_modes(proxies.modes) if m != "direct"]:
            extra = proxies.new(kind)
            try:
                r.startup[kind].values.append(extra.start())
            finally:
                extra.stop()


def run(p: Params, workdir: Path, *, quiet_mitm: bool, log: Log, compare: Path | None = None) -> Results:
    modes = run_modes(compare is not None)
    r = Results.empty(modes)
    home = workdir / "codex-home"
    write_codex_home(home)
    backend = Backend().start()
    log(f"bench backend on 127.0.0.1:{backend.port}")
    make = Proxies(modes, backend, home, workdir, quiet_mitm, compare)
    proxies = {kind: make.new(kind) for kind in modes if kind != "direct"}
    try:
        start_proxies(proxies, r, log)
        targets = {"direct": Target("direct", backend.base_url, None)}
        targets |= {kind: Target(kind, proxy.base_url, proxy) for kind, proxy in proxies.items()}
        asyncio.run(run_phases(targets, p, r, log))
        for kind, proxy in proxies.items():
            if kind not in REFERENCE_MODES:  # a reference only served phase 1, so its peak would not compare
                r.peak_rss_mib[kind].values.append(status_kib(proxy.pid, "VmHWM") / 1024.0)
            proxy.stop()
        sample_startup(p, make, r)
        log(f"  5) start-up: {p.startup_samples} per proxy")
    finally:
        for proxy in proxies.values():  # every path, the reference proxy too (stop_all in cli.py backs this up)
            proxy.stop()
        backend.stop()
    return r
