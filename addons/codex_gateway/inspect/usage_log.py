"""The request log: `gateway_home/usage.sqlite3`, one row per finished gateway flow, kept across restarts.

- Writing never touches the event loop: `UsageLog.submit` puts the row on a bounded queue (a full queue drops the
  row and counts it, with a warning) and a writer thread stores the queued rows in batches, one short transaction
  each (`BEGIN IMMEDIATE`, so several gateway processes sharing one `gateway_home` take turns; the busy timeout
  waits for the other's commit instead of failing).
- A lock held past the busy timeout loses nothing: the batch stays pending, in order, and is tried again every
  `busy_retry_s` (pending rows beyond the queue's size are dropped and counted like a full queue's); only what
  is still pending at shutdown is lost.
- WAL journal: readers (reports, the status page, another process) never block the writer, nor it them. A
  read-only directory (read-only media, a backup, another user's copy) is read with `immutable=1`, since SQLite
  cannot create the WAL index (`-shm`) there.
- Schema version in `PRAGMA user_version`; `MIGRATIONS[i]` takes version i to i + 1, applied in one transaction
  at open. A database written by a newer gateway is used as it is (rows are inserted by column name).
- A corrupt or unwritable database never takes the gateway down: one clear error is logged (saying what is wrong:
  a corrupt file, or which file or directory is not writable, and why), the rows that could not be stored are
  counted as lost, the state says why, and the writer tries to open it again every minute. Corruption the
  gateway's own reads find (status, page) counts too: the writer's open connection may not notice it.
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
    "explain",
    "is_corrupt",
]

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5_000  # another process's transaction is a few ms; this only ends a stuck one
BUSY_RETRY_S = 1.0  # how soon rows that met a lock held past the busy timeout are tried again
DAY_S = 86_400.0
_CORRUPT = "Move the file away to start a new log."
_UNWRITABLE = "Make it writable, or set gateway_home to a writable directory."
_IN_THE_WAY = "Move it away, or set gateway_home to another directory."

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


def connect(path: Path, *, write: bool = True, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with the busy timeout; the writer's also
    switches the file to WAL (a property of the file, kept by every later connection)."""
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=busy_timeout_ms / 1000, isolation_level=None)
    else:
        conn = _read_only(path, busy_timeout_ms)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
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


def _read_only(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """`mode=ro`, or `immutable=1` when SQLite cannot create the WAL index (`-shm`) that a WAL file's first read
    needs, because the directory is not writable (read-only media, a backup, another user's copy): every
    connection that has the file open keeps that index, so without one nothing is writing the file and reading it
    as it is on disk is exact (but for a `-wal` file left behind, which is said)."""
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1")  # the first read: opens (or creates) the WAL index
        return conn
    except sqlite3.OperationalError as e:
        conn.close()
        shm = path.with_name(path.name + "-shm")
        if _primary(e) != sqlite3.SQLITE_CANTOPEN or shm.exists() or os.access(path.parent, os.W_OK):
            raise
    wal = path.with_name(path.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:  # immutable reads the main file only
        logger.warning(
            "codex-gateway: %s is in a read-only directory without its WAL index (-shm): it is read without the "
            "rows still in %s (%d bytes)",
            path,
            wal,
            wal.stat().st_size,
        )
    return sqlite3.connect(
        f"{path.as_uri()}?mode=ro&immutable=1", uri=True, timeout=busy_timeout_ms / 1000, isolation_level=None
    )


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
    settled: bool = False  # set with `done`: no row waits for a locked database any more


@dataclass
class LogCounters:
    written: int = 0
    dropped: int = 0  # the queue was full (or so were the rows waiting for a locked database)
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
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        busy_retry_s: float = BUSY_RETRY_S,
        clock: Callable[[], float] = time.time,
        pid: int | None = None,
    ) -> None:
        self.path = path
        self.keep_days = keep_days
        self.linger_s = linger_s  # rows arriving within this time go into one transaction
        self.retry_s = retry_s
        self.busy_timeout_ms = busy_timeout_ms
        self.busy_retry_s = busy_retry_s
        self.clock = clock
        self.pid = pid if pid is not None else os.getpid()
        self.counters = LogCounters()
        self.schema_version: int | None = None
        self.error: str | None = None  # why the database cannot be written, while it cannot
        self._queue: queue.Queue[RequestRow | _Marker] = queue.Queue(max_queue)
        self._pending: list[RequestRow] = []  # taken off the queue, not yet stored (the database was locked)
        self._locked = False  # the last attempt met a lock held past the busy timeout
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._failed_at: float | None = None
        self._reopen = False  # a reader found the file corrupt: the writer's connection goes too
        self._pruned_at = float("-inf")
        # `dropped` and `error` change on the event loop or a reader's thread as well as on the writer's
        self._lock = threading.Lock()

    # -- the event loop's side (never blocks) -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="codex-gateway-usage-log", daemon=True)
            self._thread.start()

    def submit(self, row: RequestRow) -> None:
        try:
            self._queue.put_nowait(row)
        except queue.Full:
            self._count_dropped(1)

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
            "pending": len(self._pending),
        }

    # -- blocking calls (a worker thread, or shutdown) -----------------------------------------------------

    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until the writer has tried to store every row submitted before this call (not on the event
        loop). True when none of them waits any more (written, lost or dropped); False when rows still wait for
        a locked database, or on timeout."""
        marker = _Marker()
        return self._send(marker, timeout) and marker.settled

    def close(self, timeout: float = 5.0) -> None:
        """Writes what is queued or pending and ends the writer thread (the `done` hook: shutdown may wait a
        moment); what a locked database still refuses then is counted as lost."""
        if self._thread is None:
            return
        self._send(_Marker(stop=True), timeout)
        self._thread.join(timeout)
        self._thread = None

    def found_corrupt(self, error: str) -> None:
        """A read of the file (status, page) found it corrupt. The writer's open connection may go on writing
        from its cached pages, so the log is not ok from now on and the writer opens the file again (after
        `retry_s`, counting rows as lost until then), which finds the corruption or a new file. Any thread."""
        self._reopen = True
        self._fail(f"it is corrupt ({error})", _CORRUPT)

    def _send(self, marker: _Marker, timeout: float) -> bool:
        if self._thread is None or not self._thread.is_alive():
            return False
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._wake.set()
        return marker.done.wait(timeout)

    def _count_dropped(self, n: int) -> None:
        with self._lock:
            before = self.counters.dropped
            self.counters.dropped = dropped = before + n
        if dropped.bit_length() != before.bit_length():  # past 1, 2, 4, 8, …: counted without flooding the log
            logger.warning(
                "codex-gateway: the usage log's queue is full (%d rows waiting): %d rows dropped so far",
                self._queue.maxsize,
                dropped,
            )

    # -- the writer thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        self._open()
        stop = False
        while not stop:
            batch = self._next_batch()
            markers = [item for item in batch if isinstance(item, _Marker)]
            stop = any(marker.stop for marker in markers)
            self._hold([item for item in batch if isinstance(item, RequestRow)])
            self._store()
            if stop:
                self._give_up_pending()
            self._housekeeping()
            for marker in markers:
                marker.settled = not self._pending
                marker.done.set()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _next_batch(self) -> list[RequestRow | _Marker]:
        """What the queue holds after a linger; empty after a quiet while (sooner while rows wait for a lock)."""
        try:
            first = self._queue.get(timeout=self.busy_retry_s if self._pending else 3600)
        except queue.Empty:
            return []
        if isinstance(first, RequestRow):
            self._wake.wait(self.linger_s)  # let a batch gather (flush and close cut this short)
        self._wake.clear()
        return [first, *_drain(self._queue)]

    def _hold(self, rows: list[RequestRow]) -> None:
        """Appends to the rows to store, in order; the queue's size bounds them while a lock keeps them."""
        room = self._queue.maxsize - len(self._pending)
        self._pending.extend(rows[:room])
        if len(rows) > room:
            self._count_dropped(len(rows) - room)

    def _store(self) -> None:
        rows = self._pending
        if not rows:
            return
        conn = self._connection()
        if conn is None:
            if not self._locked:
                self._lose()
            return
        try:
            self.counters.written += insert_rows(conn, rows, self.pid)
        except sqlite3.OperationalError as e:
            if _is_busy(e):
                self._wait_for_lock()
                return
            self._lose()
            self._broken(e)
            return
        except (sqlite3.Error, OSError) as e:
            self._lose()
            self._broken(e)
            return
        self._pending = []
        if self._locked:
            self._locked = False
            logger.info("codex-gateway: %s is no longer locked; the rows that waited are written", self.path)

    def _lose(self) -> None:
        self.counters.lost += len(self._pending)
        self._pending = []

    def _wait_for_lock(self) -> None:
        """Another connection held the lock past the busy timeout: the database is fine, the rows wait."""
        if not self._locked:  # once per lock, not once per retry
            logger.warning(
                "codex-gateway: %s stayed locked for %d ms by another connection; the rows to log wait (%d so "
                "far) and are tried again every %g s",
                self.path,
                self.busy_timeout_ms,
                len(self._pending),
                self.busy_retry_s,
            )
        self._locked = True

    def _give_up_pending(self) -> None:
        if self._pending:
            logger.warning("codex-gateway: %s is still locked at shutdown: %d rows lost", self.path, len(self._pending))
            self._lose()

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
        except sqlite3.OperationalError as e:
            if not _is_busy(e):
                self._broken(e)
            return  # locked: pruned with tomorrow's rows
        except (sqlite3.Error, OSError) as e:
            self._broken(e)
            return
        self.counters.pruned += deleted
        if deleted:
            logger.info("codex-gateway: pruned %d request-log rows older than %d days", deleted, self.keep_days)

    def _connection(self) -> sqlite3.Connection | None:
        if self._reopen:
            self._reopen = False
            self._close_connection()
            self._failed_at = self.clock()
        if self._conn is None and (self._failed_at is None or self.clock() - self._failed_at >= self.retry_s):
            self._open()
        return self._conn

    def _open(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(self.path, busy_timeout_ms=self.busy_timeout_ms)
            self.schema_version = migrate(conn)
        except (sqlite3.Error, OSError) as e:
            if conn is not None:
                conn.close()
            if isinstance(e, sqlite3.OperationalError) and _is_busy(e):
                self._wait_for_lock()  # opened again at the next try (`_failed_at` stays unset)
            else:
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

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _broken(self, e: BaseException) -> None:
        self._close_connection()
        self._failed_at, self._locked = self.clock(), False  # no lock to wait for: what waits now is lost
        self._fail(*explain(self.path, e))

    def _fail(self, cause: str, advice: str) -> None:
        with self._lock:
            first, self.error = self.error is None, cause
        if first:  # one clear error per outage, not one per batch
            logger.error(
                "codex-gateway: the usage database %s cannot be written: %s. The gateway serves on; requests are "
                "not logged (counted as lost rows) until it can be written again (tried every %d s).%s",
                self.path,
                cause,
                self.retry_s,
                f" {advice}" if advice else "",
            )


# -- why a database cannot be used ----------------------------------------------------------------------------


def explain(path: Path, e: BaseException) -> tuple[str, str]:
    """(what is wrong, what to do about it) for the error that stopped the writer: a corrupt file is moved away,
    an unwritable one made writable (SQLite says "unable to open database file" for most of these)."""
    error = f"{type(e).__name__}: {e}"
    if is_corrupt(e):
        return f"it is corrupt ({error})", _CORRUPT
    blocked = _blocked(path)
    if blocked is not None:
        return f"{blocked[0]} ({error})", blocked[1]
    return error, ""


def is_corrupt(e: BaseException) -> bool:
    """SQLite says the file is not a database, or a malformed one."""
    return isinstance(e, sqlite3.DatabaseError) and _primary(e) in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)


def _blocked(path: Path) -> tuple[str, str] | None:
    """Which file or directory stops the writer, why, and the advice that fits; None when none does. Asked of the
    file system, since SQLite's error names neither (gateway_home not yet made: its nearest existing parent is the
    directory that has to be writable)."""
    if path.is_dir():
        return f"{path} is a directory", _IN_THE_WAY
    home = _nearest_existing(path.parent)
    if not home.is_dir():
        return f"{home} is not a directory", _IN_THE_WAY
    if not os.access(home, os.W_OK):
        return f"the directory {home} is not writable ({_reason(home)})", _UNWRITABLE
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and not os.access(file, os.W_OK):
            return f"the file {file} is not writable ({_reason(file)})", _UNWRITABLE
    return None


def _reason(path: Path) -> str:
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "read-only file system" if read_only else "permission denied"


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _primary(e: sqlite3.Error) -> int | None:
    code = getattr(e, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None  # extended codes (SQLITE_BUSY_SNAPSHOT, …) keep it low


def _is_busy(e: sqlite3.OperationalError) -> bool:
    return _primary(e) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(e)


def _drain(q: queue.Queue[RequestRow | _Marker]) -> list[RequestRow | _Marker]:
    items: list[RequestRow | _Marker] = []
    while True:
        try:
            items.append(q.get_nowait())
        except queue.Empty:
            return items
