"""`codex.usage` and `codex.runs` with --since/--until: answered from the request log, flows in view or not."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from codex_gateway.inspect import commands
from codex_gateway.inspect.usage_log import connect
from codex_gateway.inspect.usage_log import insert_rows
from codex_gateway.inspect.usage_log import migrate
from codex_gateway.inspect.usage_row import RequestRow
from mitmproxy.addons.view import View
from mitmproxy.test import taddons

NOW = datetime(2026, 11, 10, 12, 0).timestamp()
DAY = 86400.0


class _Loader:
    """Stands in for the gateway addon: calls `commands.load` from its own `load`."""

    def load(self, loader: Any) -> None:
        commands.load(loader)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "usage.sqlite3"
    now = time.time()  # the commands measure --since from the real clock
    rows = [
        RequestRow(now - 10 * DAY, "chat.completions", "OpenClaw", run="old", model="gpt-5.4", input_tokens=7),
        RequestRow(now - 60, "chat.completions", "OpenClaw", run="r1", model="gpt-5.4", input_tokens=100, tool_calls=2),
        RequestRow(now - 30, "chat.completions", "curl", model="gpt-5.4-mini", input_tokens=5, failure="local"),
    ]
    with closing(connect(path)) as conn:
        migrate(conn)
        insert_rows(conn, rows, pid=1)
    commands.use_database(path)
    yield path
    commands.use_database(None)


@pytest.mark.parametrize(
    "options, expected",
    [
        ((), None),
        (("--since", "7d"), (NOW - 7 * DAY, NOW + 1, "model")),
        (("--since=7d",), (NOW - 7 * DAY, NOW + 1, "model")),
        (("since=1h", "by=day"), (NOW - 3600, NOW + 1, "day")),
        (("--until", "2026-11-09"), (0.0, datetime(2026, 11, 10).timestamp(), "model")),
        (("--since", "2026-11-01", "--by", "account"), (datetime(2026, 11, 1).timestamp(), NOW + 1, "account")),
    ],
)
def test_parse_range(options: tuple[str, ...], expected: tuple[float, float, str] | None) -> None:
    assert commands.parse_range(options, NOW) == expected


@pytest.mark.parametrize(
    "options, message",
    [(("--since",), "needs a value"), (("--from", "7d"), "unknown option"), (("--since", "7d", "--by", "x"), "--by")],
)
def test_parse_range_rejects(options: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        commands.parse_range(options, NOW)


def test_usage_since_reads_the_log_without_any_flow(database: Path) -> None:
    table = commands.usage([], "--since", "1d").splitlines()
    assert [line.split()[:3] for line in table[2:]] == [
        ["gpt-5.4", "1", "0"],
        ["gpt-5.4-mini", "1", "1"],
        ["total", "2", "1"],
    ]


def test_usage_by_day_over_everything(database: Path) -> None:
    table = commands.usage([], "--since", "30d", "--by", "day")
    assert table.splitlines()[0].startswith("day") and "total" in table.splitlines()[-1]


def test_runs_since_reads_the_log(database: Path) -> None:
    lines = commands.runs([], "--since", "1d").splitlines()
    assert [line.split()[:3] for line in lines[2:]] == [["r1", "OpenClaw", "1"], ["-", "curl", "1"]]


def test_without_since_the_flows_in_view_answer(database: Path) -> None:
    assert commands.usage([]) == "no gateway chat flows selected"


def test_a_bad_option_is_answered_not_raised(database: Path) -> None:
    assert "not a time" in commands.usage([], "--since", "soon")


def test_log_off_says_so() -> None:
    commands.use_database(None)
    assert commands.usage([], "--since", "1d") == "the request log is off (gateway_usage_log=false)"


def test_missing_log_file_says_where(tmp_path: Path) -> None:
    commands.use_database(tmp_path / "none.sqlite3")
    try:
        assert "no request log at" in commands.runs([], "--since", "1d")
    finally:
        commands.use_database(None)


def test_the_command_manager_passes_the_options(database: Path) -> None:
    with taddons.context(View(), _Loader()) as tctx:  # the view resolves `@all`
        out = tctx.master.commands.call_strings("codex.usage", ["@all", "--since", "1d", "--by", "client"])
    assert [line.split()[:2] for line in out.splitlines()[2:]] == [["OpenClaw", "1"], ["curl", "1"], ["total", "2"]]


def test_runs_are_shown_by_their_whole_trace_id(database: Path) -> None:
    """Trace ids may share their first half (some tracers start them with a timestamp)."""
    first, second = "0af7651916cd43dd" + "8448eb211c80319c", "0af7651916cd43dd" + "0000000000000001"
    with closing(connect(database)) as conn:
        rows = [RequestRow(time.time() - 5, "chat.completions", "OpenClaw", run=run) for run in (first, second)]
        insert_rows(conn, rows, pid=1)
    shown = {line.split()[0] for line in commands.runs([], "--since", "1d").splitlines()[2:]}
    assert {first, second} <= shown


def test_an_inverted_range_is_answered_not_raised(database: Path) -> None:
    assert "its end must be after its start" in commands.usage([], "--since", "2026-12-08", "--until", "2026-12-01")
