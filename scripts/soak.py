"""Soak test (not in CI): a real gateway in front of the fake Codex backend under mixed traffic for a while.

    .venv/bin/python scripts/soak.py --minutes 1
    .venv/bin/python scripts/soak.py --minutes 30 --concurrency 16 --sample-s 30 --json soak.json
    .venv/bin/python scripts/soak.py --minutes 10 --max-growth-mib 20     # exit 1 if VmRSS grows more

Traffic (each worker loops over a weighted random choice): streamed and non-streamed text, tool calls, slow
streams, response.failed after partial output, upstream 429 and 500, an upstream cut mid-stream, clients that
disconnect mid-stream, bad requests, /v1/models. The fake answers by the scenario named in the request's last
user message, so any mix of concurrent requests gets the right answers. Every answer is checked against what
that scenario must give the client; anything else counts as an unexpected result (first examples printed).

Reported: the gateway's VmRSS over time (first sample, after the first tenth of the run, peak, last), requests
and unexpected results per scenario, the requests the fake saw, and the gateway's log lines that look like
errors. Exit status 1 if there was an unexpected result, the gateway died, or `--max-growth-mib` was exceeded.
Everything is on 127.0.0.1; the processes are stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "addons"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import httpx  # noqa: E402
import orjson  # noqa: E402

from scripts.fakes import codex_events as ev  # noqa: E402
from scripts.fakes.codex_backend import ErrorScript  # noqa: E402
from scripts.fakes.codex_backend import FakeCodexBackend  # noqa: E402
from scripts.fakes.codex_backend import RecordedRequest  # noqa: E402
from scripts.fakes.codex_backend import Script  # noqa: E402
from scripts.fakes.codex_backend import SSEScript  # noqa: E402
from scripts.gateway_process import GatewayProcess  # noqa: E402
from scripts.gateway_process import write_codex_home  # noqa: E402

DELTAS = ["The", " quick", " brown", " fox", " jumps", "."]
TEXT = "".join(DELTAS)


class Unexpected(Exception):
    """The client did not get what the scenario must give it."""


# -- what the fake answers ------------------------------------------------------------------------------------


def fake_answer(rec: RecordedRequest) -> Script:
    """Answers by the scenario in the last user message (`soak:<scenario>:<id>`)."""
    body = rec.json if isinstance(rec.json, dict) else {}
    users = [it for it in body.get("input", ()) if isinstance(it, dict) and it.get("role") == "user"]
    text = users[-1]["content"][0]["text"] if users else ""
    scenario = text.split(":")[1] if text.startswith("soak:") else "text"
    rid = f"resp_{uuid.uuid4().hex}"
    if scenario == "tools":
        return SSEScript(ev.tool_calls([("read", '{"path":"README.md"}', "call_soak")], response_id=rid))
    if scenario == "slow":
        return SSEScript(ev.text(DELTAS, response_id=rid), delay_s=0.02)
    if scenario == "failed":
        return SSEScript(ev.failed("server_is_overloaded", "Try again later.", after=ev.text(["Par"]), response_id=rid))
    if scenario == "http429":
        return ErrorScript(429, {"error": {"type": "rate_limit_exceeded", "message": "Slow down."}})
    if scenario == "http500":
        return ErrorScript(500, {"detail": "Internal server error"})
    if scenario == "cut":
        return SSEScript(ev.text(DELTAS, response_id=rid), cut_after=5)
    if scenario == "disconnect":
        return SSEScript(ev.text(DELTAS * 10, response_id=rid), delay_s=0.02)
    return SSEScript(ev.text(DELTAS, response_id=rid))


# -- what the client must see ----------------------------------------------------------------------------------


def chat(scenario: str, *, stream: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "gpt-5.4",
        "messages": [{"role": "user", "content": f"soak:{scenario}:{uuid.uuid4().hex}"}],
        "stream": stream,
    }
    if scenario == "tools":
        body["tools"] = [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]
    return body


def sse_events(raw: bytes) -> list[Any]:
    out: list[Any] = []
    for frame in raw.split(b"\n\n"):
        if frame.startswith(b"data: "):
            payload = frame[6:]
            out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def content_of(events: list[Any]) -> str:
    return "".join(
        (c.get("choices") or [{}])[0].get("delta", {}).get("content") or "" for c in events if isinstance(c, dict)
    )


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise Unexpected(what)


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> tuple[int, bytes, bool]:
    """Status, body and whether the body was cut (incomplete chunked)."""
    async with client.stream("POST", "/v1/chat/completions", json=body) as r:
        data = b""
        try:
            async for piece in r.aiter_raw():
                data += piece
        except httpx.RemoteProtocolError:
            return r.status_code, data, True
        return r.status_code, data, False


async def streamed_text(client: httpx.AsyncClient, scenario: str) -> None:
    status, data, cut = await post(client, chat(scenario, stream=True))
    events = sse_events(data)
    expect(status == 200 and not cut, f"status {status}, cut {cut}")
    expect(events[-1:] == ["[DONE]"] and content_of(events) == TEXT, f"stream {data[-200:]!r}")


async def buffered_text(client: httpx.AsyncClient, scenario: str) -> None:
    status, data, _ = await post(client, chat(scenario, stream=False))
    expect(status == 200, f"status {status}: {data[:200]!r}")
    expect(orjson.loads(data)["choices"][0]["message"]["content"] == TEXT, f"body {data[:200]!r}")


async def tools(client: httpx.AsyncClient, scenario: str) -> None:
    status, data, _ = await post(client, chat(scenario, stream=True))
    events = sse_events(data)
    finish = [c["choices"][0]["finish_reason"] for c in events if isinstance(c, dict) and c.get("choices")]
    expect(status == 200 and events[-1:] == ["[DONE]"] and finish[-1] == "tool_calls", f"stream {data[-200:]!r}")


async def failed(client: httpx.AsyncClient, scenario: str) -> None:
    status, data, _ = await post(client, chat(scenario, stream=True))
    events = sse_events(data)
    expect(status == 200 and "[DONE]" not in events, f"status {status}, {data[-200:]!r}")
    expect(isinstance(events[-1], dict) and events[-1].get("error", {}).get("code") == "server_is_overloaded", "error")
    status, data, _ = await post(client, chat(scenario, stream=False))
    expect(status == 503 and orjson.loads(data)["error"]["code"] == "server_is_overloaded", f"status {status}")


async def http_error(client: httpx.AsyncClient, scenario: str) -> None:
    want = 429 if scenario == "http429" else 500
    status, data, _ = await post(client, chat(scenario, stream=random.random() < 0.5))
    expect(status == want and set(orjson.loads(data)["error"]) == {"message", "type", "param", "code"}, f"{status}")


async def cut(client: httpx.AsyncClient, scenario: str) -> None:
    status, data, was_cut = await post(client, chat(scenario, stream=True))
    expect(status == 200 and was_cut and b"[DONE]" not in data, f"status {status}, cut {was_cut}")
    status, data, _ = await post(client, chat(scenario, stream=False))
    expect(status == 502, f"non-streamed cut answered {status}")


async def disconnect(client: httpx.AsyncClient, scenario: str) -> None:
    async with client.stream("POST", "/v1/chat/completions", json=chat(scenario, stream=True)) as r:
        expect(r.status_code == 200, f"status {r.status_code}")
        async for line in r.aiter_lines():
            if '"content":"The"' in line:
                break  # leave mid-stream: the connection is closed by the context manager


async def bad_request(client: httpx.AsyncClient, scenario: str) -> None:
    body = random.choice([b"{", b"[]", orjson.dumps({"model": "gpt-5.4", "messages": [{"role": "robot"}]})])
    r = await client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    expect(r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}, f"{r.status_code}")


async def models(client: httpx.AsyncClient, scenario: str) -> None:
    r = await client.get("/v1/models")
    expect(r.status_code == 200 and r.json()["object"] == "list", f"status {r.status_code}")


Scenario = Callable[[httpx.AsyncClient, str], Awaitable[None]]
SCENARIOS: dict[str, tuple[int, Scenario]] = {  # name → (weight, check)
    "text": (30, streamed_text),
    "buffered": (15, buffered_text),
    "tools": (10, tools),
    "slow": (5, streamed_text),
    "failed": (5, failed),
    "http429": (5, http_error),
    "http500": (5, http_error),
    "cut": (5, cut),
    "disconnect": (5, disconnect),
    "bad": (10, bad_request),
    "models": (5, models),
}


# -- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Stats:
    done: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    samples: list[dict[str, float]] = field(default_factory=list)
    upstream: Counter[int] = field(default_factory=Counter)  # statuses of the requests the fake saw

    def drain(self, backend: FakeCodexBackend) -> None:
        """Counts and forgets the fake's records (it keeps every request otherwise: memory of a long soak)."""
        with backend._cond:  # the fake's own lock around `requests`
            records, backend.requests[:] = list(backend.requests), []
        self.upstream.update(r.status for r in records)


def rss_kib(gateway: GatewayProcess) -> int:
    assert gateway.proc is not None
    status = Path(f"/proc/{gateway.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))


async def worker(base_url: str, deadline: float, stats: Stats, rng: random.Random) -> None:
    names = list(SCENARIOS)
    weights = [SCENARIOS[n][0] for n in names]
    async with httpx.AsyncClient(base_url=base_url, timeout=60, trust_env=False) as client:  # local gateway
        while time.monotonic() < deadline:
            name = rng.choices(names, weights)[0]
            try:
                await SCENARIOS[name][1](client, name)
            except (Unexpected, httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as e:
                stats.unexpected[name] += 1
                if len(stats.examples) < 10:
                    stats.examples.append(f"{name}: {type(e).__name__}: {e}")
            stats.done[name] += 1


async def sampler(
    gateway: GatewayProcess, backend: FakeCodexBackend, started: float, deadline: float, every: float, stats: Stats
) -> None:
    while True:
        stats.drain(backend)
        assert gateway.proc is not None
        if gateway.proc.poll() is not None:
            return
        sample = {
            "t": round(time.monotonic() - started, 1),
            "rss_kib": rss_kib(gateway),
            "requests": sum(stats.done.values()),
            "unexpected": sum(stats.unexpected.values()),
        }
        stats.samples.append(sample)
        print(
            f"  t={sample['t']:7.1f}s  VmRSS {sample['rss_kib'] / 1024:7.1f} MiB  "
            f"requests {sample['requests']:7d}  unexpected {sample['unexpected']}",
            flush=True,
        )
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(min(every, max(0.0, deadline - time.monotonic())))


async def soak(
    gateway: GatewayProcess, backend: FakeCodexBackend, minutes: float, concurrency: int, every: float, seed: int
) -> Stats:
    stats = Stats()
    started = time.monotonic()
    deadline = started + minutes * 60
    rng = random.Random(seed)
    workers = [worker(gateway.base_url, deadline, stats, random.Random(rng.random())) for _ in range(concurrency)]
    await asyncio.gather(*workers, sampler(gateway, backend, started, deadline, every, stats))
    return stats


def report(stats: Stats, backend: FakeCodexBackend, gateway: GatewayProcess, alive: bool) -> dict[str, Any]:
    rss = [int(s["rss_kib"]) for s in stats.samples]
    tenth = next((s for s in stats.samples if s["t"] >= stats.samples[-1]["t"] / 10), stats.samples[0])
    log = gateway.log()
    suspicious = [line for line in log.splitlines() if any(w in line for w in ("Traceback", "Error", "exception"))]
    print("\nscenario      requests  unexpected")
    for name in SCENARIOS:
        print(f"  {name:11s} {stats.done[name]:9d} {stats.unexpected[name]:11d}")
    print(f"  {'total':11s} {sum(stats.done.values()):9d} {sum(stats.unexpected.values()):11d}")
    stats.drain(backend)
    upstream = stats.upstream
    print(f"\nrequests the fake backend saw, by status: {dict(sorted(upstream.items()))}")
    print(
        f"gateway VmRSS: first {rss[0] / 1024:.1f} MiB, after the first tenth {tenth['rss_kib'] / 1024:.1f} MiB, "
        f"peak {max(rss) / 1024:.1f} MiB, last {rss[-1] / 1024:.1f} MiB "
        f"(growth after the first tenth: {(rss[-1] - tenth['rss_kib']) / 1024:+.1f} MiB)"
    )
    print(f"gateway log: {len(log.splitlines())} lines, {len(suspicious)} that look like errors; alive: {alive}")
    for line in suspicious[:5]:
        print(f"  {line[:200]}")
    for example in stats.examples:
        print(f"unexpected: {example[:300]}")
    return {
        "done": dict(stats.done),
        "unexpected": dict(stats.unexpected),
        "examples": stats.examples,
        "samples": stats.samples,
        "upstream_statuses": {str(k): v for k, v in upstream.items()},
        "rss_growth_after_first_tenth_kib": rss[-1] - tenth["rss_kib"],
        "log_error_lines": suspicious[:50],
        "alive": alive,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent client loops (default 8)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between RSS samples (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the traffic mix")
    parser.add_argument("--max-growth-mib", type=float, help="exit 1 if VmRSS grows more after the first tenth")
    parser.add_argument("--json", type=Path, help="also write samples and counts to this file")
    parser.add_argument("--workdir", type=Path, help="keep the gateway's log and state here (default: a temp dir)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="codex-soak-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        write_codex_home(work / "codex-home")
        with FakeCodexBackend() as backend:
            backend.default_script = fake_answer  # type: ignore[method-assign]
            gateway = GatewayProcess(backend.port, work / "codex-home", work / "gw", extra=["--set", "flow_detail=0"])
            with gateway:
                print(
                    f"soak: {args.minutes} min, {args.concurrency} clients, gateway {gateway.base_url}, "
                    f"fake backend 127.0.0.1:{backend.port}, log {gateway.log_path}",
                    flush=True,
                )
                stats = asyncio.run(soak(gateway, backend, args.minutes, args.concurrency, args.sample_s, args.seed))
                assert gateway.proc is not None
                alive = gateway.proc.poll() is None
                result = report(stats, backend, gateway, alive)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    failed = not alive or sum(stats.unexpected.values()) > 0
    if args.max_growth_mib is not None and result["rss_growth_after_first_tenth_kib"] > args.max_growth_mib * 1024:
        print(f"FAIL: VmRSS grew by more than {args.max_growth_mib} MiB")
        failed = True
    print("FAIL" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
