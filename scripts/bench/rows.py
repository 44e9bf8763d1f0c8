"""The table of the benchmark: one row per figure, ratios against the pass-through, and the goals.

Every goal is a ratio to the streaming pass-through. The buffered pass-through (phase 1 only) gets a column and
one informational ratio, the gateway's added latency over its own, with no goal: it shows how much of the gap to
the streaming pass-through is the cost of reading the whole request before forwarding it. A compared gateway
(`--compare`) gets a column, its own ratios to the pass-through and its own goal verdicts, and the column
"gateway ÷ compared" sets the two gateways side by side.
"""

from __future__ import annotations

from collections.abc import Callable

from .phases import FRAMING_EVENTS
from .phases import Params
from .phases import Results
from .report import BEFORE_AFTER
from .report import COMPARE
from .report import GATEWAYS
from .report import OVER_PASSTHROUGH
from .report import Dist
from .report import Goal
from .report import Row
from .report import core_modes
from .report import fmt
from .report import ratio

BASE = "passthrough"
Value = Callable[[str], float]  # one figure of a mode
Pair = Callable[[str, str], str]  # (mode, over mode) → the ratio's cell


def p50(d: dict[str, Dist]) -> Value:
    return lambda m: d[m].p50


def added_ms(d: dict[str, Dist], q: int = 50) -> Value:
    """Mode − direct at the q-th percentile, in ms."""
    return lambda m: (d[m].at(q) - d["direct"].at(q)) * 1000.0


def times(value: Value) -> Pair:
    return lambda a, b: f"{fmt(ratio(value(a), value(b)), 2)}x"


def goals_of(r: Results, p: Params, mode: str) -> dict[str, Goal]:
    """The goals, for the gateway or the compared gateway: ratios to the pass-through, and one absolute ceiling."""

    def over(value: Value) -> float:
        return ratio(value(mode), value(BASE))

    burst = f"time to first token in a {p.burst_streams}-stream burst"
    return {
        "latency": Goal("added latency, small request, concurrency 1", over(added_ms(r.latency)), "<=", 1.3, "x", mode),
        "rps": Goal(f"req/s at concurrency {p.concurrency}", over(p50(r.rps)), ">=", 0.8, "x", mode),
        "ttft": Goal("added time to first token", over(p50(r.ttft_added)), "<=", 1.25, "x", mode),
        "eps": Goal("stream events per second", over(p50(r.events_per_s)), ">=", 0.8, "x", mode),
        "burst": Goal(burst, over(p50(r.burst_ttft)), "<=", 1.5, "x", mode),
        "rss": Goal("peak memory of the gateway process", r.peak_rss_mib[mode].p50, "<=", 100.0, " MiB", mode),
    }


class Table:
    """The rows of one run; its modes decide the columns and which ratios each row gets."""

    def __init__(self, r: Results, p: Params) -> None:
        self.r, self.p = r, p
        self.modes = tuple(r.latency)
        self.gateways = [m for m in GATEWAYS if m in self.modes]
        self.proxies = tuple(m for m in self.modes if m != "direct")
        self.core_proxies = tuple(m for m in core_modes(self.modes) if m != "direct")
        self.goals = {g: goals_of(r, p, g) for g in self.gateways}
        self.rows: list[Row] = []

    def add(
        self, fig: str, label: str, n: str, cells: dict[str, str], pair: Pair | None = None, goal: str = ""
    ) -> None:
        """One row; `pair` formats its ratios (none without), `goal` names the gateway's goal it carries."""
        ratios: dict[str, str] = {}
        if pair is not None:
            ratios = {OVER_PASSTHROUGH[g]: pair(g, BASE) for g in self.gateways}
            if COMPARE in self.modes:
                ratios[BEFORE_AFTER] = pair("gateway", COMPARE)
        self.rows.append(Row(fig, label, n, cells, ratios, self.goals["gateway"][goal] if goal else None))

    def cells(
        self, d: dict[str, Dist], digits: int = 1, scale: float = 1.0, modes: tuple[str, ...] = ()
    ) -> dict[str, str]:
        return {m: d[m].cell(digits, scale) for m in modes or self.modes}

    def added_cells(self, d: dict[str, Dist]) -> dict[str, str]:
        p50_ms, p90_ms = added_ms(d), added_ms(d, 90)
        return {m: f"{fmt(p50_ms(m), 2)} / {fmt(p90_ms(m), 2)}" for m in self.proxies}


def latency_rows(t: Table) -> None:
    r = t.r
    n = str(r.latency["gateway"].n)
    t.add("1", "small non-streamed request, concurrency 1 (ms)", n, t.cells(r.latency, 2, 1000.0))
    t.add("1", "added latency, mode − direct (ms)", n, t.added_cells(r.latency), times(added_ms(r.latency)), "latency")
    # Informational, no goal: the buffered pass-through reads the whole request first, as the gateway must.
    over_buffered = times(added_ms(r.latency))
    t.rows.append(
        Row(
            "1",
            "added latency p50, gateway ÷ buffered pass-through (reference, no goal)",
            n,
            {},
            {OVER_PASSTHROUGH[g]: over_buffered(g, "buffered") + " (÷ buffered)" for g in t.gateways},
        )
    )
    # Informational, no goal: the same requests in back-to-back blocks per mode (warm caches).
    warm = r.latency_back_to_back
    label = "added latency, back-to-back blocks per mode (reference, no goal; ms)"
    t.add("1", label, str(warm["gateway"].n), t.added_cells(warm), times(added_ms(warm)))
    rounds = f"{r.rps['gateway'].n} rounds"
    label = f"req/s at concurrency {t.p.concurrency} (per round of {t.p.rps_requests})"
    t.add("1", label, rounds, t.cells(r.rps, 0), times(p50(r.rps)), "rps")


def stream_rows(t: Table) -> None:
    r, p = t.r, t.p
    label = "time to first content byte, delta every 50-100 ms (ms)"
    t.add("2", label, str(r.ttft["gateway"].n), t.cells(r.ttft, 1, 1000.0))
    ta = r.ttft_added
    label = "added time to first content byte, paired per sample (ms)"
    t.add("2", label, str(ta["gateway"].n), t.cells(ta, 2, 1000.0, t.core_proxies), times(p50(ta)), "ttft")
    eps, runs = r.events_per_s, f"{r.events_per_s['gateway'].n} runs"
    label = f"long stream, {p.long_deltas:,} deltas + {FRAMING_EVENTS} framing events: events/s"
    t.add("3", label, runs, t.cells(eps, 0), times(p50(eps)), "eps")
    cpu = r.cpu_ms_per_1k
    t.add("3", "proxy process CPU per 1,000 events (ms)", runs, t.cells(cpu, 1, 1.0, t.core_proxies), times(p50(cpu)))


def burst_rows(t: Table) -> None:
    r, p = t.r, t.p
    bt = r.burst_ttft

    def with_p90(a: str, b: str) -> str:
        return f"{times(p50(bt))(a, b)} (p90 {fmt(ratio(bt[a].p90, bt[b].p90), 2)}x)"

    label = f"{p.burst_streams} concurrent streams: time to first content byte (ms)"
    t.add("4", label, f"{bt['gateway'].n} streams", t.cells(bt, 1, 1000.0), with_p90, "burst")
    bw = r.burst_wall
    label = f"{p.burst_streams} concurrent streams ({p.burst_deltas} deltas each): wall time (s)"
    t.add("4", label, f"{bw['gateway'].n} bursts", t.cells(bw, 2), times(p50(bw)))


def process_rows(t: Table) -> None:
    r = t.r
    start = r.start_rss_mib
    label = "RSS of the proxy process right after start-up, VmRSS (MiB)"
    t.add("4", label, "1", {m: fmt(start[m].p50, 1) for m in t.proxies}, times(p50(start)))
    rss = r.peak_rss_mib
    label = "peak RSS of the proxy process over the whole run, VmHWM (MiB)"
    t.add("4", label, "1", {m: fmt(rss[m].p50, 1) for m in t.core_proxies}, times(p50(rss)), "rss")
    su = r.startup
    label = "start-up until the first answer (ms; gateway: `/v1/models`, pass-through: proxied `/models`)"
    t.add("5", label, str(su["gateway"].n), t.cells(su, 0, 1000.0, t.core_proxies), times(p50(su)))


def build_rows(r: Results, p: Params) -> tuple[list[Row], list[Goal]]:
    """The table's rows, and the goals: the gateway's, then the compared gateway's (if any)."""
    t = Table(r, p)
    for section in (latency_rows, stream_rows, burst_rows, process_rows):
        section(t)
    return t.rows, [g for mode in t.gateways for g in t.goals[mode].values()]
