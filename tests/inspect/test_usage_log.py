"""usage_log: the SQLite request log, its schema versions, its writer thread, sharing and failure behaviour."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from contextlib import contextmanager
from pathlib import Path

import pytest
from codex_gateway.inspect.usage_log import DAY_S
from codex_gateway.inspect.usage_log import MIGRATIONS
from codex_gateway.inspect.usage_log import SCHEMA_VERSION
from codex_gateway.inspect.usage_log import UsageLog
from codex_gateway.inspect.usage_log import connect
from codex_gateway.inspect.usage_log import explain
from codex_gateway.inspect.usage_log import insert_rows
from codex_gateway.inspect.usage_log import migrate
from codex_gateway.inspect.usage_row import RequestRow

from tests.inspect.read_only import read_only_view

NOW = 1_800_000_000.0


def row(n: int = 0, *, client: str = "curl", finished_at: float = NOW, **kw: object) -> RequestRow:
    return RequestRow(finished_at=finished_at, endpoint="chat.completions", client=client, input_tokens=n, **kw)  # type: ignore[arg-type]


def count(path: Path, where: str = "1") -> int:
    with closing(sqlite3.connect(path)) as conn:
        return int(conn.execute(f"SELECT count(*) FROM requests WHERE {where}").fetchone()[0])


def started(path: Path, **kw: object) -> UsageLog:
    log = UsageLog(path, clock=lambda: NOW, **kw)  # type: ignore[arg-type]
    log.start()
    return log


# -- schema ---------------------------------------------------------------------------------------------------


def test_a_new_file_gets_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "u.sqlite3")) as conn:
        assert migrate(conn) == SCHEMA_VERSION
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "u.sqlite3")) as conn:
        migrate(conn)
        insert_rows(conn, [row(5)], pid=1)
        assert migrate(conn) == SCHEMA_VERSION
        assert conn.execute("SELECT input_tokens FROM requests").fetchall() == [(5,)]


def test_a_later_migration_applies_only_the_missing_steps(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "u.sqlite3")) as conn:
        migrate(conn)
        insert_rows(conn, [row(5)], pid=1)
        later = (*MIGRATIONS, "ALTER TABLE requests ADD COLUMN region TEXT NOT NULL DEFAULT 'eu'")
        assert migrate(conn, later) == SCHEMA_VERSION + 1
        assert conn.execute("SELECT input_tokens, region FROM requests").fetchall() == [(5, "eu")]


def test_a_failed_migration_leaves_the_old_version(tmp_path: Path) -> None:
    with closing(connect(tmp_path / "u.sqlite3")) as conn:
        migrate(conn)
        with pytest.raises(sqlite3.OperationalError):
            migrate(conn, (*MIGRATIONS, "ALTER TABLE requests ADD COLUMN x TEXT; ALTER TABLE nowhere ADD COLUMN y"))
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert "x" not in [c[1] for c in conn.execute("PRAGMA table_info(requests)")]


def test_a_newer_schema_is_written_by_column_name(tmp_path: Path) -> None:
    path = tmp_path / "u.sqlite3"
    with closing(connect(path)) as conn:
        migrate(conn, (*MIGRATIONS, "ALTER TABLE requests ADD COLUMN region TEXT"))
    log = started(path)
    log.submit(row(7))
    assert log.flush()
    log.close()
    assert (log.schema_version, log.error, count(path, "input_tokens = 7")) == (SCHEMA_VERSION + 1, None, 1)


# -- the writer -----------------------------------------------------------------------------------------------


def test_submitted_rows_are_written_in_one_batch(tmp_path: Path) -> None:
    path = tmp_path / "home" / "usage.sqlite3"
    log = started(path, linger_s=10.0)  # only the flush ends the wait: one transaction for all
    for n in range(50):
        log.submit(row(n))
    assert log.flush()
    assert (count(path), log.counters.written, log.state()["ok"]) == (50, 50, True)
    log.close()


def test_close_writes_what_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    log = started(path, linger_s=10.0)
    log.submit(row(1))
    log.close()
    assert count(path) == 1


def test_rows_keep_every_column(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    full = row(
        900,
        run="trace",
        model="gpt-5.4",
        model_served="gpt-5.4",
        stream=True,
        account="a@example.com",
        status=200,
        cached_tokens=512,
        output_tokens=120,
        reasoning_tokens=64,
        ttft_ms=250.0,
        total_ms=2500.0,
        tool_calls=2,
        dropped="temperature",
        retries=1,
        replayed=True,
        summary="s",
    )
    log = started(path, pid=4242)
    log.submit(full)
    log.close()
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        stored = dict(conn.execute("SELECT * FROM requests").fetchone())
    assert stored.pop("id") == 1 and stored.pop("gateway_pid") == 4242
    assert RequestRow(**{**stored, "stream": bool(stored["stream"]), "replayed": bool(stored["replayed"])}) == full


def test_a_full_queue_drops_rows_with_a_counted_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log = UsageLog(tmp_path / "usage.sqlite3", max_queue=2)  # not started: nothing drains the queue
    with caplog.at_level(logging.WARNING):
        for n in range(7):
            log.submit(row(n))
    assert log.counters.dropped == 5
    warnings = [r.getMessage() for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(warnings) == 3 and warnings[-1].endswith("4 rows dropped so far")  # at 1, 2, 4


def test_flush_without_a_writer_returns_at_once(tmp_path: Path) -> None:
    assert UsageLog(tmp_path / "usage.sqlite3").flush(timeout=0.1) is False


# -- pruning --------------------------------------------------------------------------------------------------


def _seed(path: Path, *finished: float) -> None:
    with closing(connect(path)) as conn:
        migrate(conn)
        insert_rows(conn, [row(i, finished_at=t) for i, t in enumerate(finished)], pid=1)


def test_old_rows_are_pruned_at_start(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _seed(path, NOW - 31 * DAY_S, NOW - 29 * DAY_S, NOW)
    log = started(path, keep_days=30)
    assert log.flush()
    log.close()
    assert (count(path), log.counters.pruned) == (2, 1)


def test_keep_days_zero_keeps_everything(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    _seed(path, NOW - 400 * DAY_S, NOW)
    log = started(path, keep_days=0)
    assert log.flush()
    log.close()
    assert count(path) == 2


def test_pruning_runs_again_a_day_later(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    now = [NOW]
    log = UsageLog(path, keep_days=1, clock=lambda: now[0])
    log.start()
    assert log.flush()
    _seed(path, NOW - 0.5 * DAY_S)  # recent at the start-up prune
    now[0] = NOW + 1.0 * DAY_S
    log.submit(row(1, finished_at=now[0]))
    assert log.flush()
    log.close()
    assert (count(path), log.counters.pruned) == (1, 1)


# -- failures: the gateway serves on ---------------------------------------------------------------------------


def test_a_corrupt_database_logs_one_error_and_counts_lost_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.sqlite3"
    path.write_bytes(b"this is not a database, just junk " * 200)
    with caplog.at_level(logging.ERROR):
        log = started(path, linger_s=0.0)
        for batch in range(3):
            log.submit(row(batch))
            assert log.flush()
        log.close()
    state = log.state()
    assert (state["ok"], state["rows_written"], state["rows_lost"]) == (False, 0, 3)
    assert "not a database" in state["error"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "The gateway serves on" in errors[0].getMessage()


@pytest.mark.parametrize("blocker", ["directory at the file's path", "file at the directory's path"])
def test_an_unwritable_database_counts_lost_rows(tmp_path: Path, blocker: str) -> None:
    if blocker.startswith("directory"):
        path = tmp_path / "usage.sqlite3"
        path.mkdir()
    else:
        (tmp_path / "home").write_text("a file where gateway_home should be")
        path = tmp_path / "home" / "usage.sqlite3"
    log = started(path)
    log.submit(row(1))
    assert log.flush()
    log.close()
    assert (log.counters.lost, log.state()["ok"]) == (1, False)


def test_the_writer_recovers_once_the_file_is_replaced(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "usage.sqlite3"
    path.write_bytes(b"junk" * 1000)
    now = [NOW]
    log = UsageLog(path, retry_s=60, linger_s=0.0, clock=lambda: now[0])
    log.start()
    log.submit(row(1))
    assert log.flush()
    path.unlink()  # the operator moves the broken file away
    log.submit(row(2))  # within the retry interval: still counted as lost
    assert log.flush()
    now[0] += 61
    with caplog.at_level(logging.WARNING):
        log.submit(row(3))
        assert log.flush()
    log.close()
    assert (log.counters.lost, log.counters.written, log.error) == (2, 1, None)
    assert count(path) == 1 and any("can be written again" in r.getMessage() for r in caplog.records)


# -- two gateway processes, one database -------------------------------------------------------------------------

ROWS_PER_PROCESS = 400


def _writer_process(path: str, client: str, barrier: object) -> None:
    log = UsageLog(Path(path), linger_s=0.0)
    log.start()
    barrier.wait()  # type: ignore[attr-defined]
    for n in range(ROWS_PER_PROCESS):
        log.submit(row(n, client=client, finished_at=NOW + n))
        log.flush(timeout=60)  # a transaction per row: the two writers contend for the lock all the time
    log.close(timeout=60)
    if log.counters.written != ROWS_PER_PROCESS:
        raise SystemExit(f"{client}: wrote {log.counters.written}, lost {log.counters.lost}: {log.error}")


def test_two_processes_writing_at_once_lose_no_row(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    spawn = multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    procs = [spawn.Process(target=_writer_process, args=(str(path), f"gw{i}", barrier)) for i in range(2)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    assert [proc.exitcode for proc in procs] == [0, 0]
    with closing(sqlite3.connect(path)) as conn:
        per_client = dict(conn.execute("SELECT client, count(DISTINCT input_tokens) FROM requests GROUP BY client"))
        pids = conn.execute("SELECT count(DISTINCT gateway_pid) FROM requests").fetchone()[0]
    assert (per_client, pids) == ({"gw0": ROWS_PER_PROCESS, "gw1": ROWS_PER_PROCESS}, 2)
    assert count(path) == 2 * ROWS_PER_PROCESS


# -- a lock held past the busy timeout: the rows wait ------------------------------------------------------------

BUSY_MS = 50  # the busy timeout of these tests: the other connection's lock outlasts it many times over


def locked_log(path: Path, **kw: object) -> UsageLog:
    """A log (not started) with a short busy timeout, on an existing file, so another connection can lock it."""
    _seed(path)
    return UsageLog(path, linger_s=0.0, busy_timeout_ms=BUSY_MS, busy_retry_s=0.05, clock=lambda: NOW, **kw)  # type: ignore[arg-type]


@contextmanager
def exclusive_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection (another process's, say) holding the database's write lock until the block ends."""
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")
        yield other
        other.execute("ROLLBACK")


@pytest.mark.parametrize("lock_first", [False, True], ids=["locked while running", "locked at open"])
def test_a_lock_held_past_the_busy_timeout_loses_no_row(tmp_path: Path, lock_first: bool) -> None:
    path = tmp_path / "usage.sqlite3"
    log = locked_log(path)
    if not lock_first:
        log.start()
        assert log.flush()
    with exclusive_lock(path):
        log.start()
        for n in range(3):
            log.submit(row(n))
        assert log.flush() is False  # tried, and the lock outlasted the busy timeout: the rows wait
        assert log.flush() is False  # … and wait through another try
    assert log.flush()
    log.close()
    assert (count(path), log.counters.lost, log.counters.written) == (3, 0, 3)


def test_rows_waiting_for_a_lock_are_written_without_another_request(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    log = locked_log(path)
    log.start()
    with exclusive_lock(path):
        log.submit(row(1))
        assert log.flush() is False
    deadline = time.monotonic() + 10
    while log.state()["pending"] and time.monotonic() < deadline:  # the writer's own retry, nothing wakes it
        time.sleep(0.01)
    assert (log.state()["pending"], log.counters.written) == (0, 1)
    log.close()


def test_rows_waiting_for_a_lock_are_bounded_by_the_queue_size(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.sqlite3"
    log = locked_log(path, max_queue=2)
    log.start()
    with exclusive_lock(path), caplog.at_level(logging.WARNING):
        for n in range(2):
            log.submit(row(n))
        assert log.flush() is False  # two rows wait: as many as the queue holds
        log.submit(row(3))
        assert log.flush() is False
    assert log.flush()
    log.close()
    assert (count(path), log.counters.dropped, log.counters.lost) == (2, 1, 0)
    assert any("1 rows dropped so far" in r.getMessage() for r in caplog.records)


def test_close_counts_what_a_lock_still_refuses_as_lost(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    log = locked_log(path)
    log.start()
    with exclusive_lock(path):
        log.submit(row(1))
        log.submit(row(2))
        log.close()
    assert (log.counters.lost, log.counters.written, count(path)) == (2, 0, 0)


# -- what the one error says --------------------------------------------------------------------------------------


@pytest.mark.parametrize("exists", [True, False], ids=["a log in a read-only directory", "a new gateway_home there"])
def test_a_read_only_directory_is_named_with_advice_that_fits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, exists: bool
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    if exists:
        _seed(home / "usage.sqlite3")
    with read_only_view(home) as view, caplog.at_level(logging.ERROR):
        path = view / "usage.sqlite3" if exists else view / "gateway-home" / "usage.sqlite3"
        log = started(path)
        log.submit(row(1))
        assert log.flush()
        log.close()
    (error,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "not writable (read-only file system)" in error and "Make it writable" in error
    assert "Move the file away" not in error and log.counters.lost == 1


def _make(tmp_path: Path, situation: str) -> Path:
    path = tmp_path / "home" / "usage.sqlite3"
    if situation == "corrupt":
        path.parent.mkdir()
        path.write_bytes(b"junk" * 1000)
    elif situation == "directory at the file's path":
        path.mkdir(parents=True)
    else:
        path.parent.write_text("a file where gateway_home should be")
    return path


@pytest.mark.parametrize(
    "situation, cause, advice",
    [
        ("corrupt", "it is corrupt (DatabaseError: file is not a database)", "Move the file away"),
        ("directory at the file's path", "usage.sqlite3 is a directory (OperationalError", "Move it away"),
        ("file at the directory's path", "home is not a directory (FileExistsError", "Move it away"),
    ],
)
def test_explain_says_what_is_wrong_and_what_to_do(tmp_path: Path, situation: str, cause: str, advice: str) -> None:
    path = _make(tmp_path, situation)
    with pytest.raises((sqlite3.Error, OSError)) as raised:  # what the writer meets when it opens the file
        with closing(connect(path)) as conn:
            migrate(conn)
    got_cause, got_advice = explain(path, raised.value)
    assert cause in got_cause and got_advice.startswith(advice)


def test_explain_gives_no_advice_it_cannot_back(tmp_path: Path) -> None:
    error = sqlite3.OperationalError("disk I/O error")
    assert explain(tmp_path / "usage.sqlite3", error) == ("OperationalError: disk I/O error", "")


# -- corruption a read finds -----------------------------------------------------------------------------------------


def test_corruption_a_read_finds_stops_the_writer_with_one_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.sqlite3"
    log = started(path, linger_s=0.0)
    log.submit(row(1))
    assert log.flush()
    with caplog.at_level(logging.ERROR):
        for _ in range(2):  # the status page and /_gateway/status, say
            log.found_corrupt("DatabaseError: file is not a database")
        log.submit(row(2))
        assert log.flush()
    log.close()
    assert (log.state()["ok"], log.counters.lost, log.counters.written) == (False, 1, 1)
    (error,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert "it is corrupt" in error and "Move the file away" in error
