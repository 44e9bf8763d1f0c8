"""Smoke test of `python -m scripts.bench`: the benchmark runs end to end with tiny parameters, printing every figure.

It checks that the benchmark works, not that the goals are met: timings on a shared machine are too noisy for
a test to assert on them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BENCH = ["-m", "scripts.bench"]
TIMEOUT_S = 60.0

ROWS = [
    "small non-streamed request, concurrency 1",
    "added latency, mode − direct",
    "gateway ÷ buffered pass-through (reference, no goal)",
    "req/s at concurrency 8",
    "time to first content byte, delta every 50-100 ms",
    "added time to first content byte",
    "long stream, 500 deltas",
    "proxy process CPU per 1,000 events",
    "concurrent streams: time to first content byte",
    "concurrent streams (3 deltas each): wall time",
    "peak RSS of the proxy process",
    "start-up until the first answer",
]
GOALS = [
    "added latency, small request",
    "req/s at concurrency 8",
    "added time to first token",
    "stream events per second",
    "time to first token in a",
    "peak memory of the gateway process",
]


def test_bench_quick_prints_every_figure(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    # Own session, so a hung run is killed together with the mitmdumps and the fake backend it started.
    proc = subprocess.Popen(
        [sys.executable, *BENCH, "--quick", "--json", str(out_json), "--workdir", str(tmp_path / "work")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout_b, stderr_b = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise AssertionError(f"python -m scripts.bench --quick did not finish within {TIMEOUT_S:.0f} s") from None
    stdout, stderr = stdout_b.decode(), stderr_b.decode()
    assert proc.returncode == 0, f"exit {proc.returncode}\n{stdout}\n{stderr[-4000:]}"

    table = [line for line in stdout.splitlines() if line.startswith("| ")]
    assert table and "pass-through" in table[0] and "gateway" in table[0], stdout
    assert "| buffered pass-through |" in table[0], table[0]
    for label in ROWS:
        rows = [line for line in table if label in line]
        assert len(rows) == 1, f"no single row for {label!r} in:\n{stdout}"
        assert rows[0].rstrip().endswith("|") and "nan" not in rows[0].lower(), rows[0]
    for goal in GOALS:
        verdicts = [line for line in stdout.splitlines() if goal in line and line.startswith(("PASS ", "MISS "))]
        assert len(verdicts) == 1, f"no PASS/MISS line for {goal!r} in:\n{stdout}"

    doc = json.loads(out_json.read_text())
    assert doc["params"]["long_deltas"] == 500
    assert len(doc["samples"]["latency"]["gateway"]) == doc["params"]["latency_samples"]
    # The buffered pass-through is a phase-1 reference: its samples are there, and only there.
    assert len(doc["samples"]["latency"]["buffered"]) == doc["params"]["latency_samples"]
    assert len(doc["samples"]["rps"]["buffered"]) == doc["params"]["rps_rounds"]
    assert doc["samples"]["ttft"]["buffered"] == [] and doc["samples"]["events_per_s"]["buffered"] == []
    assert len(doc["goals"]) == len(GOALS)
