"""Structure of the benchmark's table and the pass-through proxies' arguments, without running anything.

The buffered pass-through is a phase-1 reference: it gets a column, "—" where it was not measured, and one
informational ratio with no goal; the goals stay ratios to the streaming pass-through.
"""

from __future__ import annotations

from pathlib import Path

from scripts.bench.phases import Params
from scripts.bench.phases import Results
from scripts.bench.procs import Proxy
from scripts.bench.report import COMPARE
from scripts.bench.report import CORE_MODES
from scripts.bench.report import render_table
from scripts.bench.report import run_modes
from scripts.bench.rows import build_rows

# Milliseconds per small request, per mode: added latency is 2.0 (pass-through), 2.5 (buffered), 3.0 (gateway).
LATENCY_MS = {"direct": 1.0, "passthrough": 3.0, "buffered": 3.5, "gateway": 4.0}


def fake_results() -> Results:
    r = Results.empty()
    for mode, ms in LATENCY_MS.items():
        r.latency[mode].values = [ms / 1000.0] * 4
        r.latency_back_to_back[mode].values = [ms / 2000.0] * 4  # half: warm caches
        r.rps[mode].values = [100.0]
    for name in Results.__dataclass_fields__:
        if name not in ("latency", "latency_back_to_back", "rps", "start_rss_mib"):
            for mode in CORE_MODES:
                getattr(r, name)[mode].values = [1.0]
    for mode in ("passthrough", "buffered", "gateway"):
        r.start_rss_mib[mode].values = [70.0]
    return r


def table_rows() -> tuple[list[str], dict[str, list[str]]]:
    rows, _ = build_rows(fake_results(), Params())
    lines = render_table(rows).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    body = {line.split(" | ")[1]: [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    return head, body


def test_table_has_a_buffered_column_between_pass_through_and_gateway() -> None:
    head, _ = table_rows()
    assert head[3:7] == ["direct", "pass-through", "buffered pass-through", "gateway"]


def test_buffered_cells_only_where_measured() -> None:
    head, body = table_rows()
    col = head.index("buffered pass-through")
    measured = {label.split(" (")[0] for label, cells in body.items() if cells[col] != "—"}
    assert measured == {
        "small non-streamed request, concurrency 1",
        "added latency, mode − direct",
        "added latency, back-to-back blocks per mode",
        "req/s at concurrency 8",
        "RSS of the proxy process right after start-up, VmRSS",
    }


def test_goals_stay_ratios_to_the_streaming_pass_through() -> None:
    _, goals = build_rows(fake_results(), Params())
    added = next(g for g in goals if g.name.startswith("added latency"))
    assert added.value == 1.5  # 3.0 / 2.0, not 3.0 / 2.5
    assert len(goals) == 6


def test_gateway_over_buffered_is_informational() -> None:
    head, body = table_rows()
    (row,) = [cells for label, cells in body.items() if "gateway ÷ buffered pass-through" in label]
    assert row[head.index("gateway ÷ pass-through")] == "1.20x (÷ buffered)"
    assert row[head.index("goal")] == "—" and row[head.index("result")] == "—"


def without_streaming(proxy: Proxy) -> list[str]:
    """The proxy's arguments minus `--set stream_large_bodies=1`, with its own port and confdir masked."""
    args = list(proxy.args)
    if "stream_large_bodies=1" in args:
        i = args.index("stream_large_bodies=1")
        del args[i - 1 : i + 1]
    return ["<mode>" if a.startswith("reverse:") else "<confdir>" if a.startswith("confdir=") else a for a in args]


def test_buffered_proxy_is_the_pass_through_without_streaming(tmp_path: Path) -> None:
    streaming = Proxy("passthrough", 1, tmp_path / "home", tmp_path / "passthrough", quiet=True)
    buffered = Proxy("buffered", 1, tmp_path / "home", tmp_path / "buffered", quiet=True)
    assert "stream_large_bodies=1" in streaming.args
    assert "stream_large_bodies=1" not in buffered.args
    assert "connection_strategy=lazy" in buffered.args and "<confdir>" in without_streaming(buffered)
    assert without_streaming(streaming) == without_streaming(buffered)


def test_back_to_back_latency_is_informational() -> None:
    head, body = table_rows()
    (row,) = [cells for label, cells in body.items() if label.startswith("added latency, back-to-back")]
    assert row[head.index("gateway ÷ pass-through")] == "1.50x"  # 1.5 / 1.0 ms
    assert row[head.index("goal")] == "—"


# -- a compared gateway (`--compare ADDONS_DIR`): a fifth mode ---------------------------------------------------

COMPARED_MS = 5.0  # added latency 4.0 ms: the gateway (3.0) is 0.75x of it


def compared_results() -> Results:
    r = Results.empty(run_modes(compare=True))
    plain = fake_results()
    for name in Results.__dataclass_fields__:
        for mode, dist in getattr(plain, name).items():
            getattr(r, name)[mode].values = list(dist.values)
        getattr(r, name)[COMPARE].values = list(getattr(plain, name)["gateway"].values)
    r.latency[COMPARE].values = [COMPARED_MS / 1000.0] * 4
    return r


def compared_table() -> tuple[list[str], dict[str, list[str]]]:
    rows, _ = build_rows(compared_results(), Params())
    lines = render_table(rows, run_modes(compare=True)).splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    body = {line.split(" | ")[1]: [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    return head, body


def test_the_default_run_has_no_compared_gateway() -> None:
    assert run_modes(compare=False) == ("direct", "passthrough", "buffered", "gateway")


def test_a_compared_gateway_is_a_column_after_the_gateway_with_its_own_ratios() -> None:
    head, _ = compared_table()
    assert head[3:8] == ["direct", "pass-through", "buffered pass-through", "gateway", "compared gateway"]
    assert head[8:11] == ["gateway ÷ pass-through", "compared ÷ pass-through", "gateway ÷ compared"]


def test_gateway_over_compared_sets_the_two_side_by_side() -> None:
    head, body = compared_table()
    row = body["added latency, mode − direct (ms)"]
    assert row[head.index("compared ÷ pass-through")] == "2.00x"  # 4.0 / 2.0 ms
    assert row[head.index("gateway ÷ compared")] == "0.75x"  # 3.0 / 4.0 ms


def test_the_compared_gateway_gets_its_own_goal_verdicts_after_the_gateways() -> None:
    _, goals = build_rows(compared_results(), Params())
    assert [g.mode for g in goals] == ["gateway"] * 6 + [COMPARE] * 6
    added = next(g for g in goals if g.mode == COMPARE and g.name.startswith("added latency"))
    assert added.value == 2.0 and added.result == "MISS"


def test_the_compared_gateway_runs_the_other_checkouts_addon(tmp_path: Path) -> None:
    other = tmp_path / "before" / "addons"
    proxy = Proxy(COMPARE, 1, tmp_path / "home", tmp_path / "compare", quiet=True, addons=other)
    assert proxy.args[proxy.args.index("-s") + 1] == str(other / "gateway.py")
