"""The benchmark's one entry point: `python -m scripts.bench [options]`, or `… profile` / `… backend [options]`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from types import FrameType
from typing import Any

from . import backend
from . import profiling
from .phases import Params
from .phases import Results
from .phases import run
from .procs import stop_all
from .report import MODE_TITLES
from .report import REFERENCE_MODES
from .report import Goal
from .report import load_average
from .report import machine_info
from .report import machine_line
from .report import render_table
from .rows import build_rows

# Subcommands, each with its own options: the profiler, and the fake upstream the run starts as a subprocess.
SUBCOMMANDS: dict[str, Callable[[list[str]], int]] = {"profile": profiling.main, "backend": backend.main}


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, Params]:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.bench",
        description="Benchmark: the gateway against its floor, in one run on one machine.",
        epilog="Subcommands: `profile` (cProfile / py-spy of the hot path; `profile --help`), `backend` (the fake "
        "upstream alone). The package docstring, scripts/bench/__init__.py, says what each figure means.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny parameters (smoke test; well under a minute)")
    parser.add_argument("--json", type=Path, help="also write the samples and results to this file")
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="ADDONS_DIR",
        help="also measure the gateway of another checkout's addons/ directory, side by side in the same run",
    )
    parser.add_argument("--max-seconds", type=float, help="abort the run after this long (default 900, quick 55)")
    parser.add_argument("--mitm-quiet", action="store_true", help="run every mitmdump with -q (no flow log lines)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a gateway goal is missed (default: 0)")
    parser.add_argument("--workdir", type=Path, help="keep mitmdump logs here (default: a temporary directory)")
    defaults = Params()
    for name, value in asdict(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, help=f"default {value}")
    args = parser.parse_args(argv)
    if args.compare is not None:
        args.compare = args.compare.resolve()
        if not (args.compare / "gateway.py").is_file():
            parser.error(f"--compare wants an addons/ directory holding gateway.py; {args.compare} has none")
    params = Params.quick() if args.quick else defaults
    for name in asdict(defaults):
        if getattr(args, name) is not None:
            setattr(params, name, max(1, getattr(args, name)))
    return args, params


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise TimeoutError("the benchmark ran past --max-seconds")


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def verdict(g: Goal) -> str:
    """One goal's line; the compared gateway's are marked, so each gateway's verdicts read apart."""
    mark = "" if g.mode == "gateway" else f"[{MODE_TITLES[g.mode]}] "
    return f"{g.result} {mark}{g.name}: {g.text}"


def json_doc(
    args: argparse.Namespace, p: Params, info: dict[str, Any], elapsed: float, r: Results, goals: list[Goal]
) -> dict[str, Any]:
    return {
        "machine": info,
        "params": asdict(p),
        "elapsed_s": elapsed,
        "modes": list(r.latency),
        "compare": str(args.compare) if args.compare else None,
        "reference_modes": list(REFERENCE_MODES),  # their samples are empty outside phase 1
        "samples": {name: {m: d.values for m, d in getattr(r, name).items()} for name in Results.__dataclass_fields__},
        "goals": [
            {"name": g.name, "mode": g.mode, "value": g.value, "op": g.op, "limit": g.limit, "result": g.result}
            for g in goals
        ],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    args, p = parse_args(argv)
    max_seconds = args.max_seconds or (55.0 if args.quick else 900.0)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.setitimer(signal.ITIMER_REAL, max_seconds)
    info = machine_info()
    info["load_before"] = load_average()
    log(f"machine: {machine_line(info)}; load average {info['load_before']}")
    if args.compare:
        log(f"compared gateway: {args.compare}/gateway.py")
    t0 = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="codex-bench-") as tmp:
            workdir = args.workdir or Path(tmp)
            results = run(p, workdir, quiet_mitm=args.mitm_quiet, log=log, compare=args.compare)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        stop_all()
    elapsed = time.perf_counter() - t0
    info["load_after"] = load_average()
    rows, goals = build_rows(results, p)
    print(f"Machine: {machine_line(info)}.")
    print(f"Load average before/after: {info['load_before']} / {info['load_after']}; the run took {elapsed:.0f} s.\n")
    print(render_table(rows, tuple(results.latency)))
    print()
    for g in goals:
        print(verdict(g))
    if args.json:
        args.json.write_text(json.dumps(json_doc(args, p, info, elapsed, results, goals), indent=2, allow_nan=True))
    return 1 if args.strict and not all(g.met for g in goals if g.mode == "gateway") else 0
