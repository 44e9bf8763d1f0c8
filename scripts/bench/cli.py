"""Benchmark: the gateway against its floor, in one run on one machine.

Four ways to the same fake Codex backend (scripts/bench_backend.py, a subprocess):

- direct: the fake's `/backend-api/codex/responses`, no proxy;
- pass-through: a plain `mitmdump --mode reverse:… --set stream_large_bodies=1 --set connection_strategy=lazy`,
  no addon, same path and a valid Codex body. The goals' baseline: the floor of the engine;
- buffered pass-through: the same `mitmdump` without `stream_large_bodies` (mitmproxy's defaults: request and
  response read whole before forwarding). A reference, not a baseline, measured in phase 1 only. The streaming
  pass-through forwards the request body before its request hooks run, so mitmproxy's own request work overlaps
  the backend's; a translating gateway must read the whole request first and pays that work on the critical path,
  as this mode does;
- gateway: `mitmdump -s addons/gateway.py` started with the arguments of tests/gateway_process.py, called as
  `/v1/chat/completions`.

Figures (p50 / p90 and sample counts): 1) small non-streamed request latency at concurrency 1 and req/s at
concurrency 8 (keep-alive httpx clients); 2) time to first content byte when upstream sends a delta every
50-100 ms; 3) one long stream (one event per upstream write): events/s and proxy CPU per 1,000 events, 15 runs;
4) a burst of concurrent streams: time to first content byte, wall time, peak RSS (VmHWM); 5) start-up until the
first answer. Modes are interleaved (small requests one by one) so drift hits them all alike. Goals are ratios
against the streaming pass-through in the same run; "added" means mode − direct. One informational ratio, no goal: the
gateway's added latency over the buffered pass-through's.

    .venv/bin/python scripts/bench.py            # full run (70-90 s on 2 cores)
    .venv/bin/python scripts/bench.py --quick    # tiny parameters, for the smoke test
    .venv/bin/python scripts/bench.py --json out.json

Everything is on 127.0.0.1, bounded in count and time (`--max-seconds`), and every subprocess is stopped on exit.
Helpers: bench_backend.py (the upstream), bench_procs.py (processes, /proc), bench_phases.py (requests and phases),
bench_rows.py and bench_report.py (table and goals), bench_profile.py (cProfile / py-spy of the hot path).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_phases import Params  # noqa: E402
from bench_phases import Results  # noqa: E402
from bench_phases import run  # noqa: E402
from bench_procs import stop_all  # noqa: E402
from bench_report import REFERENCE_MODES  # noqa: E402
from bench_report import load_average  # noqa: E402
from bench_report import machine_info  # noqa: E402
from bench_report import machine_line  # noqa: E402
from bench_report import render_table  # noqa: E402
from bench_rows import build_rows  # noqa: E402


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Params]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny parameters (smoke test; well under a minute)")
    parser.add_argument("--json", type=Path, help="also write the samples and results to this file")
    parser.add_argument("--max-seconds", type=float, help="abort the run after this long (default 900, quick 55)")
    parser.add_argument("--mitm-quiet", action="store_true", help="run both mitmdumps with -q (no flow log lines)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a goal is missed (default: always 0)")
    parser.add_argument("--workdir", type=Path, help="keep mitmdump logs here (default: a temporary directory)")
    defaults = Params()
    for name, value in asdict(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, help=f"default {value}")
    args = parser.parse_args(argv)
    params = Params.quick() if args.quick else defaults
    for name in asdict(defaults):
        if getattr(args, name) is not None:
            setattr(params, name, max(1, getattr(args, name)))
    return args, params


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("the benchmark ran past --max-seconds")


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args, p = parse_args(argv)
    max_seconds = args.max_seconds or (55.0 if args.quick else 900.0)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.setitimer(signal.ITIMER_REAL, max_seconds)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    info = machine_info()
    info["load_before"] = load_average()
    log(f"machine: {machine_line(info)}; load average {info['load_before']}")
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="codex-bench-") as tmp:
            workdir = args.workdir or Path(tmp)
            results = run(p, workdir, quiet_mitm=args.mitm_quiet, log=log)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        stop_all()
    elapsed = time.perf_counter() - t0
    info["load_after"] = load_average()
    rows, goals = build_rows(results, p)
    print(f"Machine: {machine_line(info)}.")
    print(f"Load average before/after: {info['load_before']} / {info['load_after']}; the run took {elapsed:.0f} s.\n")
    print(render_table(rows))
    print()
    for g in goals:
        print(f"{g.result} {g.name}: {g.text}")
    if args.json:
        doc = {
            "machine": info,
            "params": asdict(p),
            "elapsed_s": elapsed,
            "reference_modes": list(REFERENCE_MODES),  # their samples are empty outside phase 1
            "samples": {
                name: {m: d.values for m, d in getattr(results, name).items()} for name in Results.__dataclass_fields__
            },
            "goals": [
                {"name": g.name, "value": g.value, "op": g.op, "limit": g.limit, "result": g.result} for g in goals
            ],
        }
        args.json.write_text(json.dumps(doc, indent=2, allow_nan=True))
    return 1 if args.strict and not all(g.met for g in goals) else 0


if __name__ == "__main__":
    sys.exit(main())
