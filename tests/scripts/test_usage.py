"""`scripts/usage.py` run as users run it (`.venv/bin/python scripts/usage.py …` from the repo root)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from codex_gateway.inspect.usage_log import DB_NAME
from codex_gateway.inspect.usage_log import connect
from codex_gateway.inspect.usage_log import insert_rows
from codex_gateway.inspect.usage_log import migrate
from codex_gateway.inspect.usage_row import RequestRow

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/usage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    now = time.time()
    rows = [
        RequestRow(now - 40 * 86400, "chat.completions", "curl", model="gpt-5.4", input_tokens=99999),
        RequestRow(now - 120, "chat.completions", "OpenClaw", model="gpt-5.4", input_tokens=100, ttft_ms=300.0),
        RequestRow(now - 60, "chat.completions", "OpenClaw", model="gpt-5.4", input_tokens=50, ttft_ms=100.0),
        RequestRow(now - 30, "responses", "Codex CLI", model="gpt-5.4-mini", failure="upstream_status", status=429),
    ]
    with closing(connect(tmp_path / DB_NAME)) as conn:
        migrate(conn)
        insert_rows(conn, rows, pid=1)
    return tmp_path


def test_table_by_model_over_the_last_week(home: Path) -> None:
    done = run("--gateway-home", str(home))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()[2:]  # after the line naming the log and the time range, and a blank one
    assert lines[2].split() == ["gpt-5.4", "2", "0", "150", "0", "0", "0", "150", "100ms", "300ms"]
    assert lines[3].split()[:3] == ["gpt-5.4-mini", "1", "1"] and lines[-1].split()[:4] == ["total", "3", "1", "150"]


def test_json_by_client(home: Path) -> None:
    done = run("--gateway-home", str(home), "--since", "60d", "--by", "client", "--json")
    doc = orjson.loads(done.stdout)
    assert {g["key"]: g["requests"] for g in doc["groups"]} == {"Codex CLI": 1, "OpenClaw": 2, "curl": 1}


def test_csv_from_the_environment_home(home: Path) -> None:
    done = run("--by", "total", "--csv", env={"CODEX_GATEWAY_HOME": str(home)})
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0][:3] == ["total", "requests", "failures"] and rows[1][:3] == ["total", "3", "1"]


def test_until_ends_the_range(home: Path) -> None:
    doc = orjson.loads(run("--db", str(home / DB_NAME), "--since", "60d", "--until", "1d", "--json").stdout)
    assert [g["input_tokens"] for g in doc["groups"]] == [99999]


def test_no_log_is_exit_2(tmp_path: Path) -> None:
    done = run("--gateway-home", str(tmp_path))
    assert done.returncode == 2 and "no request log at" in done.stderr


def test_a_bad_time_is_exit_1(home: Path) -> None:
    done = run("--gateway-home", str(home), "--since", "last tuesday")
    assert done.returncode == 1 and "not a time" in done.stderr
