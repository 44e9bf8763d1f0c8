"""Percentiles, goals and the markdown table of the benchmark (`python -m scripts.bench`)."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

# Table columns, in order. "buffered" is a reference, not a baseline: a plain mitmdump that reads the whole request
# before forwarding it, as the gateway must; the goals stay ratios to the streaming "passthrough".
MODES = ("direct", "passthrough", "buffered", "gateway")
# With `--compare ADDONS_DIR`: the gateway started from another checkout's addons/, a fifth column after "gateway".
COMPARE = "compare"
# The modes that are the addon (they speak /v1/chat/completions), in column order.
GATEWAYS = ("gateway", COMPARE)
# Measured only in phase 1 (small requests): streams, bursts and start-up would add run time, not insight.
REFERENCE_MODES = ("buffered",)
# The modes of every phase: the goals' baseline, the gateway, and the backend alone.
CORE_MODES = tuple(m for m in MODES if m not in REFERENCE_MODES)
MODE_TITLES = {
    "direct": "direct",
    "passthrough": "pass-through",
    "buffered": "buffered pass-through",
    "gateway": "gateway",
    COMPARE: "compared gateway",
}


def run_modes(compare: bool) -> tuple[str, ...]:
    """The columns of one run: the default four, and the compared gateway when there is one."""
    return (*MODES, COMPARE) if compare else MODES


def core_modes(modes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(m for m in modes if m not in REFERENCE_MODES)


# The ratio columns: each gateway over the pass-through, and (with a compared gateway) the two side by side.
OVER_PASSTHROUGH = {"gateway": "gateway ÷ pass-through", COMPARE: "compared ÷ pass-through"}
BEFORE_AFTER = "gateway ÷ compared"


def ratio_columns(modes: tuple[str, ...]) -> list[str]:
    columns = [OVER_PASSTHROUGH[m] for m in GATEWAYS if m in modes]
    return columns + [BEFORE_AFTER] if COMPARE in modes else columns


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Dist:
    """Samples of one figure in one mode."""

    values: list[float] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    def at(self, p: float) -> float:
        return pct(self.values, p)

    @property
    def p50(self) -> float:
        return self.at(50)

    @property
    def p90(self) -> float:
        return self.at(90)

    def cell(self, digits: int = 1, scale: float = 1.0) -> str:
        if not self.values:
            return "—"
        return f"{fmt(self.p50 * scale, digits)} / {fmt(self.p90 * scale, digits)}"


def fmt(value: float, digits: int = 1) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.{digits}f}"


@dataclass
class Goal:
    """A ratio goal: `value op limit` (value is `mode` vs pass-through unless stated)."""

    name: str
    value: float
    op: str  # "<=" or ">="
    limit: float
    unit: str = "x"
    mode: str = "gateway"

    @property
    def met(self) -> bool:
        if math.isnan(self.value):
            return False
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    @property
    def result(self) -> str:
        return "PASS" if self.met else "MISS"

    @property
    def text(self) -> str:
        digits = 2 if self.unit == "x" else 1
        return f"{fmt(self.value, digits)}{self.unit} (goal {self.op} {self.limit:g}{self.unit})"


@dataclass
class Row:
    fig: str
    label: str
    n: str
    cells: dict[str, str]
    ratios: dict[str, str] = field(default_factory=dict)  # by ratio column (see ratio_columns)
    goal: Goal | None = None


def ratio(a: float, b: float) -> float:
    if math.isnan(a) or math.isnan(b) or b == 0:
        return math.nan
    return a / b


def render_table(rows: list[Row], modes: tuple[str, ...] = MODES) -> str:
    ratios = ratio_columns(modes)
    head = ["#", "figure (p50 / p90)", "n per mode", *(MODE_TITLES[m] for m in modes), *ratios, "goal", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        goal = f"{row.goal.op} {row.goal.limit:g}{row.goal.unit}" if row.goal else "—"
        result = f"**{row.goal.result}**" if row.goal else "—"
        cells = [row.fig, row.label, row.n, *(row.cells.get(m, "—") for m in modes)]
        cells += [*(row.ratios.get(c, "—") for c in ratios), goal, result]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        from mitmproxy.version import VERSION as mitmproxy_version
    except ImportError:  # pragma: no cover - the venv always has it
        mitmproxy_version = "unknown"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "mitmproxy": mitmproxy_version,
        "kernel": platform.release(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine makes every figure noisier)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine_line(info: dict[str, Any]) -> str:
    return (
        f"{info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, mitmproxy {info['mitmproxy']}, "
        f"Linux {info['kernel']}"
    )
