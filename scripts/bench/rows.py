"""The table of scripts/bench.py: one row per figure, ratios against the pass-through, and the goals.

Every goal is a ratio to the streaming pass-through. The buffered pass-through (phase 1 only) gets a column and
one informational ratio, the gateway's added latency over its own, with no goal: it shows how much of the gap to
the streaming pass-through is the cost of reading the whole request before forwarding it.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_phases import FRAMING_EVENTS  # noqa: E402
from bench_phases import Params  # noqa: E402
from bench_phases import Results  # noqa: E402
from bench_report import CORE_MODES  # noqa: E402
from bench_report import MODES  # noqa: E402
from bench_report import Dist  # noqa: E402
from bench_report import Goal  # noqa: E402
from bench_report import Row  # noqa: E402
from bench_report import fmt  # noqa: E402
from bench_report import ratio  # noqa: E402


def ms_cells(d: dict[str, Dist], digits: int = 1) -> dict[str, str]:
    return {m: d[m].cell(digits, 1000.0) for m in MODES}


PROXIES = tuple(m for m in MODES if m != "direct")
CORE_PROXIES = tuple(m for m in CORE_MODES if m != "direct")


def latency_rows(r: Results) -> tuple[list[Row], Goal]:
    lat = r.latency
    added = {m: (lat[m].p50 - lat["direct"].p50) * 1000.0 for m in MODES}
    added90 = {m: (lat[m].p90 - lat["direct"].p90) * 1000.0 for m in MODES}
    g = Goal("added latency, small request, concurrency 1", ratio(added["gateway"], added["passthrough"]), "<=", 1.3)
    n = str(lat["gateway"].n)
    rows = [
        Row("1", "small non-streamed request, concurrency 1 (ms)", n, ms_cells(lat, 2)),
        Row(
            "1",
            "added latency, mode − direct (ms)",
            n,
            {m: f"{fmt(added[m], 2)} / {fmt(added90[m], 2)}" for m in PROXIES},
            f"{fmt(g.value, 2)}x",
            g,
        ),
        # Informational, no goal: the buffered pass-through reads the whole request first, as the gateway must.
        Row(
            "1",
            "added latency p50, gateway ÷ buffered pass-through (reference, no goal)",
            n,
            {},
            f"{fmt(ratio(added['gateway'], added['buffered']), 2)}x (÷ buffered)",
        ),
    ]
    # Informational, no goal: the same requests in back-to-back blocks per mode (warm caches).
    warm = r.latency_back_to_back
    warm_added = {m: (warm[m].p50 - warm["direct"].p50) * 1000.0 for m in MODES}
    warm90 = {m: (warm[m].p90 - warm["direct"].p90) * 1000.0 for m in MODES}
    rows.append(
        Row(
            "1",
            "added latency, back-to-back blocks per mode (reference, no goal; ms)",
            str(warm["gateway"].n),
            {m: f"{fmt(warm_added[m], 2)} / {fmt(warm90[m], 2)}" for m in PROXIES},
            f"{fmt(ratio(warm_added['gateway'], warm_added['passthrough']), 2)}x",
        )
    )
    return rows, g


def build_rows(r: Results, p: Params) -> tuple[list[Row], list[Goal]]:
    rows, g = latency_rows(r)
    goals = [g]
    g = Goal(f"req/s at concurrency {p.concurrency}", ratio(r.rps["gateway"].p50, r.rps["passthrough"].p50), ">=", 0.8)
    goals.append(g)
    rows.append(
        Row(
            "1",
            f"req/s at concurrency {p.concurrency} (per round of {p.rps_requests})",
            f"{r.rps['gateway'].n} rounds",
            {m: r.rps[m].cell(0) for m in MODES},
            f"{fmt(g.value, 2)}x",
            g,
        )
    )

    rows.append(
        Row("2", "time to first content byte, delta every 50-100 ms (ms)", str(r.ttft["gateway"].n), ms_cells(r.ttft))
    )
    ta = r.ttft_added
    g = Goal("added time to first token", ratio(ta["gateway"].p50, ta["passthrough"].p50), "<=", 1.25)
    goals.append(g)
    rows.append(
        Row(
            "2",
            "added time to first content byte, paired per sample (ms)",
            str(ta["gateway"].n),
            {m: ta[m].cell(2, 1000.0) for m in CORE_PROXIES},
            f"{fmt(g.value, 2)}x",
            g,
        )
    )

    eps = r.events_per_s
    g = Goal("stream events per second", ratio(eps["gateway"].p50, eps["passthrough"].p50), ">=", 0.8)
    goals.append(g)
    rows.append(
        Row(
            "3",
            f"long stream, {p.long_deltas:,} deltas + {FRAMING_EVENTS} framing events: events/s",
            f"{eps['gateway'].n} runs",
            {m: eps[m].cell(0) for m in MODES},
            f"{fmt(g.value, 2)}x",
            g,
        )
    )
    cpu = r.cpu_ms_per_1k
    rows.append(
        Row(
            "3",
            "proxy process CPU per 1,000 events (ms)",
            f"{cpu['gateway'].n} runs",
            {m: cpu[m].cell(1) for m in CORE_PROXIES},
            f"{fmt(ratio(cpu['gateway'].p50, cpu['passthrough'].p50), 2)}x",
        )
    )

    bt = r.burst_ttft
    g = Goal(
        f"time to first token in a {p.burst_streams}-stream burst",
        ratio(bt["gateway"].p50, bt["passthrough"].p50),
        "<=",
        1.5,
    )
    goals.append(g)
    rows.append(
        Row(
            "4",
            f"{p.burst_streams} concurrent streams: time to first content byte (ms)",
            f"{bt['gateway'].n} streams",
            ms_cells(bt),
            f"{fmt(g.value, 2)}x (p90 {fmt(ratio(bt['gateway'].p90, bt['passthrough'].p90), 2)}x)",
            g,
        )
    )
    bw = r.burst_wall
    rows.append(
        Row(
            "4",
            f"{p.burst_streams} concurrent streams ({p.burst_deltas} deltas each): wall time (s)",
            f"{bw['gateway'].n} bursts",
            {m: bw[m].cell(2) for m in MODES},
            f"{fmt(ratio(bw['gateway'].p50, bw['passthrough'].p50), 2)}x",
        )
    )
    rows.append(
        Row(
            "4",
            "RSS of the proxy process right after start-up, VmRSS (MiB)",
            "1",
            {m: fmt(r.start_rss_mib[m].p50, 1) for m in PROXIES},
            f"{fmt(ratio(r.start_rss_mib['gateway'].p50, r.start_rss_mib['passthrough'].p50), 2)}x",
        )
    )
    rss = r.peak_rss_mib
    g = Goal("peak memory of the gateway process", rss["gateway"].p50, "<=", 100.0, " MiB")
    goals.append(g)
    rows.append(
        Row(
            "4",
            "peak RSS of the proxy process over the whole run, VmHWM (MiB)",
            "1",
            {m: fmt(rss[m].p50, 1) for m in CORE_PROXIES},
            f"{fmt(ratio(rss['gateway'].p50, rss['passthrough'].p50), 2)}x",
            g,
        )
    )

    su = r.startup
    rows.append(
        Row(
            "5",
            "start-up until the first answer (ms; gateway: `/v1/models`, pass-through: proxied `/models`)",
            str(su["gateway"].n),
            {m: su[m].cell(0, 1000.0) for m in CORE_PROXIES},
            f"{fmt(ratio(su['gateway'].p50, su['passthrough'].p50), 2)}x",
        )
    )
    return rows, goals
