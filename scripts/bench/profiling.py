"""Profile the gateway's streaming hot path, two ways.

- ``cprofile`` (default): in-process, the stream callable alone. A recorded long answer from the bench backend
  (``n`` deltas, one event per upstream write) is fed to ``ChatSSETranslator`` one event per call, exactly as
  mitmproxy calls it once per network read, first timed without a profiler, then under cProfile.
- ``--py-spy PATH``: the real ``mitmdump -s addons/gateway.py`` process (or, with ``--kind passthrough``, the
  plain reverse proxy) under load (long streams, then small requests at concurrency 8), sampled by py-spy; prints
  where the process spends its time by function (self and inclusive) and how much of it is the addon's code.

    .venv/bin/python -m scripts.bench profile --deltas 20000
    .venv/bin/python -m scripts.bench profile --py-spy /path/to/py-spy --long-streams 3
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import io
import pstats
import re
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
from codex_gateway.chat.stream import ChatStream
from codex_gateway.chat.translator import ChatSSETranslator

from ..gateway_process import write_codex_home
from .backend import build_script
from .phases import Target
from .phases import small_request
from .phases import stream_request
from .procs import Backend
from .procs import Proxy
from .procs import stop_all
from .procs import stop_proc


def recorded_events(deltas: int) -> list[bytes]:
    return build_script(deltas, 0).encoded()


def translate_all(blobs: list[bytes]) -> int:
    translator = ChatSSETranslator(ChatStream(model="gpt-5.4"))
    written = 0
    for blob in blobs:
        for out in translator(blob):
            written += len(out)
    for out in translator(b""):
        written += len(out)
    return written


def cprofile_report(deltas: int, top: int) -> str:
    blobs = recorded_events(deltas)
    translate_all(blobs[:200])  # warm-up
    t0 = time.perf_counter()
    runs = 3
    for _ in range(runs):
        translate_all(blobs)
    per_event_us = (time.perf_counter() - t0) / (runs * len(blobs)) * 1e6
    prof = cProfile.Profile()
    prof.enable()
    translate_all(blobs)
    prof.disable()
    out = io.StringIO()
    out.write(
        f"ChatSSETranslator alone, {len(blobs):,} events fed one per call: {per_event_us:.1f} µs per event "
        f"({1e6 / per_event_us:,.0f} events/s) without a profiler\n"
    )
    for key in ("tottime", "cumulative"):
        out.write(f"\n--- cProfile, top {top} by {key} ---\n")
        stats = pstats.Stats(prof, stream=out)
        stats.sort_stats(key).print_stats(top)
    return re.sub(r"\n{3,}", "\n\n", out.getvalue())


# ---------------------------------------------------------------------------------------------- py-spy


def summarize_raw(raw: str, top: int) -> str:
    """py-spy ``--format raw`` (collapsed stacks) → top functions by self and inclusive samples, addon lines."""
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    addon_lines: collections.Counter[str] = collections.Counter()
    total = addon = 0
    for line in raw.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        frames = [_short(f) for f in stack.split(";")]
        funcs = [f for f, _ in frames]
        total += count
        self_counts[funcs[-1]] += count
        for name in set(funcs):
            incl_counts[name] += count
        inside = [f"{func}:{lineno}" for func, lineno in frames if "codex_gateway/" in func]
        if inside:
            addon += count
            addon_lines[inside[-1]] += count  # innermost addon line: its own time plus the callees it waits on
    if not total:
        return "py-spy recorded no samples"
    lines = [f"{total:,} samples; stacks inside addons/codex_gateway: {addon / total:.1%}", ""]
    addon_incl = collections.Counter({k: v for k, v in incl_counts.items() if "codex_gateway/" in k})
    sections = (
        ("functions by self", self_counts),
        ("functions by inclusive", incl_counts),
        ("addon functions by inclusive", addon_incl),
        ("addon lines (innermost addon frame)", addon_lines),
    )
    for title, counter in sections:
        lines.append(f"--- top {top} {title} samples ---")
        for name, count in counter.most_common(top):
            lines.append(f"{count / total:6.1%}  {name}")
        lines.append("")
    return "\n".join(lines)


def _short(frame: str) -> tuple[str, str]:
    """``func (/long/path/pkg/mod.py:123)`` → (``func (pkg/mod.py)``, ``123``)."""
    m = re.match(r"(.*) \((.*?):(\d+)\)$", frame)
    if not m:
        return frame, ""
    func, path, line = m.groups()
    parts = Path(path).parts
    for anchor in ("site-packages", "addons", "lib"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    return f"{func} ({'/'.join(parts[-3:])})", line


async def _load(target: Target, long_streams: int, deltas: int, small: int) -> None:
    async with httpx.AsyncClient(trust_env=False, timeout=60.0) as client:
        for _ in range(long_streams):
            await stream_request(client, target, deltas, 0)
        left = small

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await small_request(client, target)

        await asyncio.gather(*(worker() for _ in range(8)))


def py_spy_report(
    py_spy: str,
    deltas: int,
    long_streams: int,
    small: int,
    top: int,
    raw_out: Path | None = None,
    kind: str = "gateway",
) -> str:
    with tempfile.TemporaryDirectory(prefix="codex-prof-") as tmp:
        work = Path(tmp)
        home = work / "codex-home"
        write_codex_home(home)
        backend = Backend().start()
        gateway = Proxy(kind, backend.port, home, work / kind, quiet=False)
        rec: subprocess.Popen[bytes] | None = None
        try:
            gateway.start()
            out_path = work / "profile.txt"
            rec = subprocess.Popen(
                [py_spy, "record", "--pid", str(gateway.pid), "--rate", "1000", "--format", "raw", "--nonblocking"]
                + ["--output", str(out_path)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            time.sleep(1.0)  # let py-spy attach
            asyncio.run(_load(Target(kind, gateway.base_url, gateway), long_streams, deltas, small))
            rec.send_signal(signal.SIGINT)
            _, err = rec.communicate(timeout=30)
            if not out_path.exists():
                return f"py-spy wrote no profile: {err.decode(errors='replace')[-2000:]}"
            raw = out_path.read_text()
            if raw_out is not None:
                raw_out.write_text(raw)
            return summarize_raw(raw, top)
        finally:
            stop_proc(rec)
            gateway.stop()
            backend.stop()
            stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench profile", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--deltas", type=int, default=20000, help="deltas in the recorded long stream")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--py-spy", help="path to a py-spy binary: profile the real gateway process instead")
    parser.add_argument("--long-streams", type=int, default=5, help="py-spy: long streams to send")
    parser.add_argument("--small", type=int, default=1000, help="py-spy: small requests at concurrency 8")
    parser.add_argument("--raw-out", type=Path, help="py-spy: also keep the collapsed stacks in this file")
    parser.add_argument("--kind", choices=("gateway", "passthrough"), default="gateway", help="py-spy: which proxy")
    args = parser.parse_args(argv)
    if args.py_spy:
        print(py_spy_report(args.py_spy, args.deltas, args.long_streams, args.small, args.top, args.raw_out, args.kind))
    else:
        print(cprofile_report(args.deltas, args.top))
    return 0
