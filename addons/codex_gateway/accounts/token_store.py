"""Account files (Codex `auth.json` layout): atomic writing, file locks, and `TokenStore`, the file-backed login.

The refresh algorithm (exactly once across tasks and processes) is `LoginStore`'s (login_store.py); here a file
and an `fcntl.flock` on a sibling `.lock` file are where the login lives and how gateways sharing it wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import tempfile
import time
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from .auth_file import AuthRecord
from .auth_file import parse_auth_doc
from .login_store import LoginStore

__all__ = ["TokenStore", "atomic_write_json", "file_lock", "sync_file_lock"]

logger = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 60.0


def atomic_write_json(path: Path, doc: Any, *, durable: bool = True) -> None:
    """Temp file in the same directory (created 0600 by mkstemp) + fsync + rename: readers see old or new.

    `durable=False` skips the fsyncs, for caches like state.json whose loss after a power cut is harmless.
    """
    target = path.resolve() if path.is_symlink() else path  # keep a user's symlink, replace what it points to
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


@contextlib.asynccontextmanager
async def file_lock(path: Path, timeout: float = LOCK_TIMEOUT_S) -> AsyncIterator[None]:
    """An exclusive flock that waits without blocking the event loop (and stays cancellable)."""
    with _lock_file(path) as fd:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} stayed locked for {timeout:.0f} s") from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield


@contextlib.contextmanager
def sync_file_lock(path: Path) -> Iterator[None]:
    """A blocking flock, for sections that last microseconds (state.json read-merge-write)."""
    with _lock_file(path) as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def _lock_file(path: Path) -> Iterator[int]:
    """The open lock file (created 0600 if missing) for the caller to flock; unlocked and closed on the way out,
    whether the caller got the lock or not (unlocking a lock not held is a no-op)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        yield fd
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class TokenStore(LoginStore):
    """One account file (Codex `auth.json` layout), refreshed under an `flock` on its sibling `.lock` file.

    The Codex CLI does not take our lock but writes atomically, and `refresh_token_reused` is answered by
    re-reading the file."""

    def __init__(
        self,
        path: Path,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(issuer, clock=clock, http=http)
        self.path = path
        self.where = str(path)
        self.lock_path = path.with_name(path.name + ".lock")
        self._stamp: tuple[int, int, int] | None = None
        self._record: AuthRecord | None = None
        self._unsaved_stamp: tuple[int, int, int] | None = None

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    def load(self, hint: Any = None) -> AuthRecord | None:
        """The file's login (cached until the file changes); None when missing or unusable (see `problem`).

        `hint`: the file's (inode, mtime_ns, size) when the caller stat'ed it just now, which saves a second stat.
        """
        stamp: tuple[int, int, int] | None = hint
        if stamp is None:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._record, self.problem = None, None, None
                return None
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._unsaved is not None:
            if stamp == self._unsaved_stamp:
                return self._unsaved  # the file still holds the tokens our refresh replaced
            self._unsaved = None  # someone else wrote the file since: theirs are newer
        if stamp != self._stamp:
            self._record = self._read()
            self._stamp = stamp
        return self._record

    async def reread(self) -> AuthRecord | None:
        self._stamp = None
        return self.load()

    def _read(self) -> AuthRecord | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self.problem = None
            return None
        try:
            record = parse_auth_doc(orjson.loads(raw))
        except orjson.JSONDecodeError:
            self.problem = f"{self.path} is not valid JSON"
            return None
        except ValueError as exc:
            self.problem = f"{self.path} {exc}"
            return None
        self.problem = None
        return record

    async def _write(self, doc: dict[str, Any]) -> None:
        atomic_write_json(self.path, doc)
        self._stamp = None

    def _kept_unsaved(self) -> None:
        try:
            st = self.path.stat()
            self._unsaved_stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            self._unsaved_stamp = None

    def _shared_lock(self) -> contextlib.AbstractAsyncContextManager[None]:
        return file_lock(self.lock_path)
