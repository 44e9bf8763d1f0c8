"""The request log: `gateway_home/usage.sqlite3`, one row per finished gateway flow, kept across restarts.

- Writing never touches the event loop: `UsageLog.submit` puts the row on a bounded queue (a full queue drops the
  row and counts it, with a warning) and a writer thread stores the queued rows in batches, one short transaction
  each (`BEGIN IMMEDIATE`, so several gateway processes sharing one `gateway_home` take turns; the busy timeout
  waits for the other's commit instead of failing).
- WAL journal: readers (reports, the status page, another process) never block the writer, nor it them.
- Schema version in `PRAGMA user_version`; `MIGRATIONS[i]` takes version i to i + 1, applied in one transaction
  at open. A database written by a newer gateway is used as it is (rows are inserted by column name).
- A corrupt or unwritable database never takes the gateway down: one clear error is logged, the rows that could
  not be stored are counted as lost, the state says why, and the writer tries to open it again every minute.
- Rows older than `keep_days` are pruned when the writer starts and once a day.
"""

from __future__ import annotations

import dataclasses
import logging
import operator
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .usage_row import DB_NAME
from .usage_row import RequestRow

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "MIGRATIONS",
    "COLUMNS",
    "UsageLog",
    "connect",
    "migrate",
    "insert_rows",
    "prune",
]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5_000  # another process's transaction is a few ms; this only ends a stuck one
DAY_S = 86_400.0

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the request log
    """
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        finished_at REAL NOT NULL,
        endpoint TEXT NOT NULL,
        client TEXT NOT NULL,
        run TEXT,
        model TEXT,
        model_served TEXT,
        stream INTEGER NOT NULL DEFAULT 0,
        account TEXT,
        status INTEGER,
        upstream_status INTEGER,
        failure TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        cached_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        reasoning_tokens INTEGER NOT NULL DEFAULT 0,
        ttft_ms REAL,
        total_ms REAL,
        tool_calls INTEGER NOT NULL DEFAULT 0,
        dropped TEXT NOT NULL DEFAULT '',
        retries INTEGER NOT NULL DEFAULT 0,
        replayed INTEGER NOT NULL DEFAULT 0,
        summary TEXT NOT NULL DEFAULT '',
        gateway_pid INTEGER
    );
    CREATE INDEX requests_finished_at ON requests (finished_at);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RequestRow))
_row_values = operator.attrgetter(*COLUMNS)  # a row's values in column order (astuple would deep-copy each)
_INSERT = f"INSERT INTO requests ({', '.join(COLUMNS)}, gateway_pid) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"


# -- the database, one function per operation (each a short transaction) ------------------------------------


def connect(path: Path, *, write: bool = True) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the busy timeout; the writer's also
    switches the file to WAL (a property of the file, kept by every later connection)."""
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    else:
        conn = sqlite3.connect(
            f"{path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # KiB (default 2 MiB): appends touch the last pages of one table and one index, and the gateway process
        # has a memory goal (measured: 3,000 rows grow it by 30 KiB with this cache, 480 KiB with 512 KiB)
        conn.execute("PRAGMA cache_size = -64")
        if write:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL: durable at checkpoints, consistent always
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, migrations: Sequence[str] = MIGRATIONS) -> int:
    """Brings the schema to `len(migrations)` in one transaction (two processes starting together: the second
    waits for the first and then finds nothing to do). Returns the version the file now has."""
    with _transaction(conn):
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for step in range(version, len(migrations)):
            for statement in _statements(migrations[step]):
                conn.execute(statement)
        if version < len(migrations):
            conn.execute(f"PRAGMA user_version = {len(migrations)}")
            version = len(migrations)
    return version


def insert_rows(conn: sqlite3.Connection, rows: Iterable[RequestRow], pid: int) -> int:
    values = [(*_row_values(row), pid) for row in rows]
    if values:
        with _transaction(conn):
            conn.executemany(_INSERT, values)
    return len(values)


def prune(conn: sqlite3.Connection, before: float) -> int:
    """Deletes rows finished before `before` (unix seconds); returns how many."""
    with _transaction(conn):
        deleted = conn.execute("DELETE FROM requests WHERE finished_at < ?", (before,)).rowcount
    return int(deleted)


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """`BEGIN IMMEDIATE` takes the write lock up front: a second writer waits (busy timeout) at the start instead
    of failing halfway when it tries to upgrade a read lock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


# -- the writer ---------------------------------------------------------------------------------------------


@dataclass
class _Marker:
    """A flush (or, with `stop`, the end) request travelling through the queue behind the rows before it."""

    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    stop: bool = False


@dataclass
class LogCounters:
    written: int = 0
    dropped: int = 0  # the queue was full
    lost: int = 0  # the database could not store them
    pruned: int = 0


class UsageLog:
    """The request log of one gateway process: `submit` from the event loop, the rest happens on a thread."""

    def __init__(
        self,
        path: Path,
        *,
        keep_days: int = 30,
        max_queue: int = 10_000,
        linger_s: float = 0.5,
        retry_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        pid: int | None = None,
    ) -> None:
        self.path = path
        self.keep_days = keep_days
        self.linger_s = linger_s  # rows arriving within this time go into one transaction
        self.retry_s = retry_s
        self.clock = clock
        self.pid = pid if pid is not None else os.getpid()
        self.counters = LogCounters()
        self.schema_version: int | None = None
        self.error: str | None = None  # why the database cannot be written, while it cannot
        self._queue: queue.Queue[RequestRow | _Marker] = queue.Queue(max_queue)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._failed_at: float | None = None
        self._pruned_at = float("-inf")

    # -- the event loop's side (never blocks) -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="codex-gateway-usage-log", daemon=True)
            self._thread.start()

    def submit(self, row: RequestRow) -> None:
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self.counters.dropped += 1
            dropped = self.counters.dropped
            if dropped & (dropped - 1) == 0:  # 1, 2, 4, 8, …: counted without flooding the log
                logger.warning(
                    "codex-gateway: the usage log's queue is full (%d rows waiting): %d rows dropped so far",
                    self._queue.maxsize,
                    dropped,
                )

    def state(self) -> dict[str, Any]:
        """For `/_gateway/status` and `/metrics`."""
        c = self.counters
        return {
            "path": str(self.path),
            "ok": self.error is None and self.schema_version is not None,
            "error": self.error,
            "schema_version": self.schema_version,
            "keep_days": self.keep_days,
            "rows_written": c.written,
            "rows_dropped": c.dropped,
            "rows_lost": c.lost,
            "rows_pruned": c.pruned,
            "queued": self._queue.qsize(),
        }

    # -- blocking calls (a worker thread, or shutdown) -----------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until every row submitted before this call has been written (or lost). Not on the event loop."""
        return self._send(_Marker(), timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Writes what is queued and ends the writer thread (the `done` hook: shutdown may wait a moment)."""
        if self._thread is None:
            return
        self._send(_Marker(stop=True), timeout)
        self._thread.join(timeout)
        self._thread = None

    def _send(self, marker: _Marker, timeout: float) -> bool:
        if self._thread is None or not self._thread.is_alive():
            return False
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._wake.set()
        return marker.done.wait(timeout)

    # -- the writer thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        self._open()
        while True:
            try:
                first = self._queue.get(timeout=3600)
            except queue.Empty:
                self._housekeeping()
                continue
            if isinstance(first, RequestRow):
                self._wake.wait(self.linger_s)  # let a batch gather (flush and close cut this short)
            self._wake.clear()
            batch = [first, *_drain(self._queue)]
            self._write([item for item in batch if isinstance(item, RequestRow)])
            self._housekeeping()
            markers = [item for item in batch if isinstance(item, _Marker)]
            for marker in markers:
                marker.done.set()
            if any(marker.stop for marker in markers):
                break
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _write(self, rows: list[RequestRow]) -> None:
        if not rows:
            return
        conn = self._connection()
        if conn is None:
            self.counters.lost += len(rows)
            return
        try:
            self.counters.written += insert_rows(conn, rows, self.pid)
        except sqlite3.OperationalError as e:
            self.counters.lost += len(rows)
            if not _is_busy(e):
                self._broken(e)
                return
            # Another process held the lock past the busy timeout: this batch is lost, the database is fine.
            logger.warning(
                "codex-gateway: %s stayed locked for %d ms: %d rows lost", self.path, BUSY_TIMEOUT_MS, len(rows)
            )
        except (sqlite3.Error, OSError) as e:
            self.counters.lost += len(rows)
            self._broken(e)

    def _housekeeping(self) -> None:
        now = self.clock()
        if self.keep_days <= 0 or now - self._pruned_at < DAY_S:
            return
        conn = self._connection()
        if conn is None:
            return
        self._pruned_at = now
        try:
            deleted = prune(conn, now - self.keep_days * DAY_S)
        except (sqlite3.Error, OSError) as e:
            self._broken(e)
            return
        self.counters.pruned += deleted
        if deleted:
            logger.info("codex-gateway: pruned %d request-log rows older than %d days", deleted, self.keep_days)

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None and (self._failed_at is None or self.clock() - self._failed_at >= self.retry_s):
            self._open()
        return self._conn

    def _open(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(self.path)
            self.schema_version = migrate(conn)
        except (sqlite3.Error, OSError) as e:
            if conn is not None:
                conn.close()
            self._broken(e)
            return
        if self.schema_version > SCHEMA_VERSION:
            logger.info(
                "codex-gateway: %s has schema version %d (this gateway knows %d); writing the columns it knows",
                self.path,
                self.schema_version,
                SCHEMA_VERSION,
            )
        if self.error is not None:
            logger.warning("codex-gateway: the usage database %s can be written again", self.path)
        self._conn, self.error, self._failed_at = conn, None, None
        self._housekeeping()

    def _broken(self, e: BaseException) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._failed_at = self.clock()
        message = f"{type(e).__name__}: {e}"
        if self.error is None:  # one clear error per outage, not one per batch
            logger.error(
                "codex-gateway: the usage database %s cannot be written (%s). The gateway serves on; requests "
                "are not logged (counted as lost rows) until it can be written again (retried every %d s). "
                "Move the file away to start a new log.",
                self.path,
                message,
                self.retry_s,
            )
        self.error = message


def _is_busy(e: sqlite3.OperationalError) -> bool:
    return getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(e)


def _drain(q: queue.Queue[RequestRow | _Marker]) -> list[RequestRow | _Marker]:
    items: list[RequestRow | _Marker] = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items
