"""`codex-gateway usage`: the report from the request log, through the installed command's dispatch."""

from __future__ import annotations

import time
from contextlib import closing
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from codex_gateway.cli import main
from codex_gateway.inspect.usage_log import DB_NAME
from codex_gateway.inspect.usage_log import connect
from codex_gateway.inspect.usage_log import insert_rows
from codex_gateway.inspect.usage_log import migrate
from codex_gateway.inspect.usage_row import RequestRow

from tests.inspect.read_only import read_only_view


def test_usage_is_a_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with closing(connect(tmp_path / DB_NAME)) as conn:
        migrate(conn)
        insert_rows(conn, [RequestRow(time.time(), "responses", "Codex CLI", model="gpt-5.4", input_tokens=9)], pid=1)
    assert main(["usage", "--gateway-home", str(tmp_path), "--by", "client", "--json"]) == 0
    (group,) = orjson.loads(capsys.readouterr().out)["groups"]
    assert (group["key"], group["requests"], group["input_tokens"]) == ("Codex CLI", 1, 9)


def test_usage_without_a_log_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage", "--gateway-home", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codex-gateway usage: error: cannot read the request log: no request log at")
    assert err.count("\n") == 1


def test_the_table_says_which_log_and_time_range_it_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mid_november = datetime(2026, 11, 15, 12).timestamp()
    with closing(connect(tmp_path / DB_NAME)) as conn:
        migrate(conn)
        insert_rows(conn, [RequestRow(mid_november, "responses", "Codex CLI", model="gpt-5.4", input_tokens=9)], pid=1)
    assert main(["usage", "--gateway-home", str(tmp_path), "--since", "2026-11-01", "--until", "2026-11-30"]) == 0
    first, blank, header, _, row = capsys.readouterr().out.splitlines()
    assert first.startswith(f"{tmp_path / DB_NAME}: requests finished 2026-11-01 00:00 ")
    assert " to 2026-12-01 00:00 " in first and first.endswith(", by model")  # --until's day included
    assert (blank, header.split()[:2], row.split()[:2]) == ("", ["model", "requests"], ["gpt-5.4", "1"])


@pytest.mark.parametrize(
    "since, until", [("2026-12-08", "2026-12-01"), ("2026-12-01T08:00", "2026-12-01T08:00")], ids=["swapped", "empty"]
)
def test_a_range_that_ends_before_it_starts_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], since: str, until: str
) -> None:
    assert main(["usage", "--gateway-home", str(tmp_path), "--since", since, "--until", until]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codex-gateway usage: error: the time range starts at ") and err.count("\n") == 1


def test_usage_reads_a_log_in_a_read_only_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with closing(connect(home / DB_NAME)) as conn:
        migrate(conn)
        insert_rows(conn, [RequestRow(time.time(), "responses", "Codex CLI", model="gpt-5.4", input_tokens=9)], pid=1)
    with read_only_view(home) as view:
        assert main(["usage", "--gateway-home", str(view), "--json"]) == 0
    captured = capsys.readouterr()
    (group,) = orjson.loads(captured.out)["groups"]
    assert (group["key"], group["input_tokens"], captured.err) == ("gpt-5.4", 9, "")
