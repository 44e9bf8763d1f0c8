"""usage_report: summaries, series and formats over the request log, and time ranges as people type them."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from codex_gateway.inspect import usage_report
from codex_gateway.inspect.usage_log import connect
from codex_gateway.inspect.usage_log import insert_rows
from codex_gateway.inspect.usage_log import migrate
from codex_gateway.inspect.usage_report import Summary
from codex_gateway.inspect.usage_report import parse_when
from codex_gateway.inspect.usage_report import percentile
from codex_gateway.inspect.usage_row import RequestRow

from tests.inspect.read_only import read_only_view

NOON = datetime(2026, 11, 10, 12, 0).timestamp()  # local time, as the reports group days
DAY = 86400.0


def req(at: float, **kw: object) -> RequestRow:
    fields: dict[str, object] = {"endpoint": "chat.completions", "client": "OpenClaw", "model": "gpt-5.4"}
    return RequestRow(finished_at=at, **{**fields, **kw})  # type: ignore[arg-type]


ROWS = [
    req(NOON - DAY, input_tokens=100, output_tokens=10, ttft_ms=300.0, account="a@x", run="r1", tool_calls=2),
    req(NOON - DAY + 1, input_tokens=200, cached_tokens=50, output_tokens=20, ttft_ms=100.0, account="a@x", run="r1"),
    req(NOON, model="gpt-5.4-mini", input_tokens=5, output_tokens=1, reasoning_tokens=1, account="b@x", client="curl"),
    req(NOON + 1, failure="upstream_status", status=429, upstream_status=429, account="b@x", run="r2"),
    req(NOON + 2, input_tokens=1000, output_tokens=100, ttft_ms=200.0, account="a@x", run="r2"),
]


def _log_of(path: Path, rows: list[RequestRow]) -> Iterator[sqlite3.Connection]:
    """A request log holding `rows`, opened for reading as the reports open it."""
    with closing(connect(path)) as writer:
        migrate(writer)
        insert_rows(writer, rows, pid=1)
    with closing(usage_report.open_log(path)) as reader:
        yield reader


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    yield from _log_of(tmp_path / "usage.sqlite3", ROWS)


# -- time ranges ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, end, expected",
    [
        ("7d", False, NOON - 7 * DAY),
        ("12h", False, NOON - 12 * 3600),
        ("30m", False, NOON - 1800),
        ("2w", False, NOON - 14 * DAY),
        ("1.5d", False, NOON - 1.5 * DAY),
        ("2026-11-01", False, datetime(2026, 11, 1).timestamp()),
        ("2026-11-01", True, datetime(2026, 11, 2).timestamp()),
        ("2026-11-01T08:30", False, datetime(2026, 11, 1, 8, 30).timestamp()),
    ],
)
def test_parse_when(text: str, end: bool, expected: float) -> None:
    assert parse_when(text, NOON, end=end) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "7 days", "-3d", "2026-13-01", "7y"])
def test_parse_when_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a time"):
        parse_when(text, NOON)


@pytest.mark.parametrize(
    "values, p, expected",
    [([], 0.5, None), ([1.0], 0.9, 1.0), ([1.0, 2.0], 0.5, 1.0), ([1.0, 2.0, 3.0, 4.0], 0.9, 4.0)]
    + [([float(v) for v in range(1, 11)], 0.9, 9.0)],
)
def test_percentile_is_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert percentile(values, p) == expected


def test_open_log_without_a_file_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no request log at"):
        usage_report.open_log(tmp_path / "none.sqlite3")


# -- summaries ------------------------------------------------------------------------------------------------


def test_summarize_by_model(conn: sqlite3.Connection) -> None:
    by_model = {s.key: s for s in usage_report.summarize(conn, 0, NOON + DAY, "model")}
    assert by_model["gpt-5.4"] == Summary("gpt-5.4", 4, 1, 1300, 50, 130, 0, 200.0, 300.0)
    assert by_model["gpt-5.4-mini"] == Summary("gpt-5.4-mini", 1, 0, 5, 0, 1, 1, None, None)


@pytest.mark.parametrize(
    "by, expected",
    [
        ("day", {"2026-11-09": 2, "2026-11-10": 3}),
        ("account", {"a@x": 3, "b@x": 2}),
        ("client", {"OpenClaw": 4, "curl": 1}),
        ("run", {"r1": 2, "r2": 2, "-": 1}),
        ("total", {"total": 5}),
    ],
)
def test_summarize_groups(conn: sqlite3.Connection, by: str, expected: dict[str, int]) -> None:
    assert {s.key: s.requests for s in usage_report.summarize(conn, 0, NOON + DAY, by)} == expected


def test_summarize_keeps_to_the_time_range(conn: sqlite3.Connection) -> None:
    (only,) = usage_report.summarize(conn, NOON, NOON + 2, "total")  # the end is exclusive
    assert (only.requests, only.failures, only.input_tokens) == (2, 1, 5)


def test_runs_in_order_of_their_first_request(conn: sqlite3.Connection) -> None:
    runs = usage_report.runs(conn, 0, NOON + DAY)
    assert [(r["run"], r["requests"], r["tool_calls"]) for r in runs] == [("r1", 2, 2), ("-", 1, 0), ("r2", 2, 0)]


def test_daily_series_cover_every_day(conn: sqlite3.Connection) -> None:
    tokens = usage_report.daily_tokens(conn, 3, NOON)
    failures = usage_report.daily_failures(conn, 3, NOON)
    assert tokens == {
        "2026-11-08": {},
        "2026-11-09": {"gpt-5.4": 330},
        "2026-11-10": {"gpt-5.4": 1100, "gpt-5.4-mini": 6},
    }
    assert failures == {"2026-11-08": (0, 0), "2026-11-09": (2, 0), "2026-11-10": (3, 1)}


def test_recent_rows_newest_first(conn: sqlite3.Connection) -> None:
    assert [r["finished_at"] for r in usage_report.recent(conn, 2)] == [NOON + 2, NOON + 1]


def test_totals(conn: sqlite3.Connection) -> None:
    totals = usage_report.totals(conn)
    assert (totals["rows"], totals["first"], totals["last"], totals["input_tokens"]) == (5, NOON - DAY, NOON + 2, 1305)


# -- formats --------------------------------------------------------------------------------------------------

SUMMARIES = [Summary("gpt-5.4", 4, 1, 1300, 50, 130, 0, 200.0, 300.0), Summary("gpt-5.4-mini", 1, 0, 5, 0, 1, 1)]


def test_table_has_a_total_row() -> None:
    lines = usage_report.format_table(SUMMARIES, "model").splitlines()
    assert lines[0].split() == "model requests failed input cached output reasoning total ttft p50 ttft p90".split()
    assert lines[2].split() == ["gpt-5.4", "4", "1", "1,300", "50", "130", "0", "1,430", "200ms", "300ms"]
    assert lines[-1].split()[:8] == ["total", "5", "1", "1,305", "50", "131", "1", "1,436"]


def test_empty_table_says_so() -> None:
    assert usage_report.format_table([], "day") == "no requests in this time range"


def test_json_holds_every_figure() -> None:
    doc = orjson.loads(usage_report.format_json(SUMMARIES, "model", NOON - DAY, NOON))
    assert doc["by"] == "model" and doc["since"].startswith("2026-11-09T12:00:00")
    assert doc["groups"][0] == {
        "key": "gpt-5.4",
        "requests": 4,
        "failures": 1,
        "input_tokens": 1300,
        "cached_tokens": 50,
        "output_tokens": 130,
        "reasoning_tokens": 0,
        "ttft_p50_ms": 200.0,
        "ttft_p90_ms": 300.0,
        "total_tokens": 1430,
    }


def test_csv_has_a_header_and_one_line_per_group() -> None:
    rows = list(csv.reader(io.StringIO(usage_report.format_csv(SUMMARIES, "model"))))
    assert rows[0][0] == "model" and rows[0][-1] == "total_tokens"
    assert rows[2] == ["gpt-5.4-mini", "1", "0", "5", "0", "1", "1", "", "", "6"]


def test_overall_takes_percentiles_over_every_group(conn: sqlite3.Connection) -> None:
    total = usage_report.overall(conn, 0, NOON + DAY)
    assert (total.requests, total.ttft_p50_ms, total.ttft_p90_ms) == (5, 200.0, 300.0)
    line = usage_report.format_table(usage_report.summarize(conn, 0, NOON + DAY, "model"), "model", total)
    assert line.splitlines()[-1].split()[-2:] == ["200ms", "300ms"]


def test_overall_of_an_empty_range() -> None:
    with closing(sqlite3.connect(":memory:")) as memory:
        migrate(memory)
        assert usage_report.overall(memory, 0, 1) == Summary("total")


def test_read_log_closes_and_answers(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    with closing(connect(path)) as writer:
        migrate(writer)
        insert_rows(writer, ROWS, pid=1)
    assert usage_report.read_log(path, lambda conn: usage_report.totals(conn)["rows"]) == len(ROWS)


@pytest.mark.parametrize("content, message", [(None, "no request log at"), (b"junk" * 500, "not a database")])
def test_read_log_says_why_it_cannot(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "usage.sqlite3"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(usage_report.LogUnreadable, match=message):
        usage_report.read_log(path, usage_report.totals)


def test_read_log_reads_a_log_in_a_read_only_directory(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with closing(connect(home / "usage.sqlite3")) as writer:  # a WAL file: reading it needs its -shm index
        migrate(writer)
        insert_rows(writer, ROWS, pid=1)
    with read_only_view(home) as view:
        assert usage_report.read_log(view / "usage.sqlite3", lambda conn: usage_report.totals(conn)["rows"]) == 5


@pytest.mark.parametrize("corrupt, content", [(True, b"junk" * 500), (False, None)])
def test_read_log_says_whether_the_file_is_corrupt(tmp_path: Path, corrupt: bool, content: bytes | None) -> None:
    path = tmp_path / "usage.sqlite3"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(usage_report.LogUnreadable) as raised:
        usage_report.read_log(path, usage_report.totals)
    assert raised.value.corrupt is corrupt


# -- the model that served ------------------------------------------------------------------------------------

SERVED = [
    req(NOON, model="gpt-5.4-high", model_served="gpt-5.4", input_tokens=10),  # an alias the gateway resolved
    req(NOON + 1, model="gpt-5.4", model_served="gpt-5.4", input_tokens=20),
    req(NOON + 2, model="no-such-model", status=404, failure="local", input_tokens=0),  # nothing served it
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    yield from _log_of(tmp_path / "served.sqlite3", SERVED)


def test_by_model_groups_by_the_model_that_served(served: sqlite3.Connection) -> None:
    groups = {s.key: (s.requests, s.input_tokens) for s in usage_report.summarize(served, 0, NOON + DAY, "model")}
    assert groups == {"gpt-5.4": (2, 30), "no-such-model": (1, 0)}


def test_daily_tokens_are_by_the_model_that_served(served: sqlite3.Connection) -> None:
    assert usage_report.daily_tokens(served, 1, NOON) == {"2026-11-10": {"gpt-5.4": 30}}


@pytest.mark.parametrize("since, until, ok", [(NOON, NOON + 1, True), (NOON, NOON, False), (NOON + DAY, NOON, False)])
def test_check_range(since: float, until: float, ok: bool) -> None:
    if ok:
        usage_report.check_range(since, until)
    else:
        with pytest.raises(ValueError, match="its end must be after its start"):
            usage_report.check_range(since, until)
