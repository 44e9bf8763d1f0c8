"""One account file (Codex `auth.json` layout): reading, atomic writing, and refreshing exactly once.

Refresh tokens rotate and a reused one is rejected for good (`refresh_token_reused`), so two refreshes racing on
the same file can log the user out. Three layers keep it to one:
- an asyncio lock per store: concurrent requests in one gateway wait for the first one's refresh;
- an `fcntl.flock` on a sibling `.lock` file: gateways sharing the file wait for each other;
- under both locks the file is re-read and the refresh is skipped when the tokens there are already fresh (or,
  after an upstream 401, no longer the rejected ones): whoever waited uses what the winner wrote. The Codex CLI
  does not take our lock but writes atomically, and `refresh_token_reused` is answered by re-reading the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
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

from ..errors import LOGIN_HINT
from ..errors import GatewayError
from .auth_file import AuthRecord
from .auth_file import Credentials
from .auth_file import format_iso
from .auth_file import parse_auth_doc
from .oauth import OAuthError
from .oauth import refresh_tokens

__all__ = ["TokenStore", "atomic_write_json", "file_lock", "sync_file_lock"]

logger = logging.getLogger(__name__)

PROACTIVE_MARGIN_S = 5 * 60  # refresh when the access token expires within 5 minutes
NO_EXP_MAX_AGE_S = 8 * 24 * 3600  # Codex's TOKEN_REFRESH_INTERVAL, for tokens without a readable `exp`
JUST_REFRESHED_S = 60  # a token this young is not refreshed again, even if its `exp` looks near (clock skew)
LOCK_TIMEOUT_S = 60.0
BACKOFF_S = (5, 10, 30, 60, 120)  # after transient failures: nobody calls the issuer before this elapsed


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


def _fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Credentials from one account file, refreshed proactively (near expiry) and reactively (after a 401)."""

    def __init__(
        self,
        path: Path,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self.issuer = issuer
        self.clock = clock
        self.http = http
        self.problem: str | None = None  # why the file holds no usable login (safe to show)
        self.last_error: str | None = None  # the last refresh failure (safe to show)
        self._lock = asyncio.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._record: AuthRecord | None = None
        self._dead_refresh: str | None = None  # fingerprint of a refresh token the issuer rejected for good
        self._retry_at = 0.0  # transient-failure backoff
        self._failures = 0
        self._reactive: tuple[str, float] | None = None  # (token obtained by a 401-refresh, when)
        self._unsaved: AuthRecord | None = None  # refreshed tokens we could not write yet (disk full, …)
        self._unsaved_stamp: tuple[int, int, int] | None = None
        self._fallback_warned: str | None = None
        self._tasks: set[asyncio.Task[Credentials]] = set()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    # -- reading ---------------------------------------------------------------------------------------------

    def load(self, stamp: tuple[int, int, int] | None = None) -> AuthRecord | None:
        """The file's login (cached until the file changes); None when missing or unusable (see `problem`).

        `stamp`: the file's (inode, mtime_ns, size) when the caller stat'ed it just now, which saves a second stat.
        """
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

    @property
    def login_required(self) -> bool:
        """True when the file still holds a refresh token the issuer rejected for good."""
        if self._dead_refresh is None:
            return False  # nothing was ever rejected: no need to look at the file (this runs on every request)
        record = self.load()
        return record is not None and self._dead_refresh == _fingerprint(record.refresh_token)

    def is_stale(self, record: AuthRecord) -> bool:
        now = self.clock()
        if record.expires_at is None:
            return record.last_refresh is not None and now - record.last_refresh > NO_EXP_MAX_AGE_S
        if record.last_refresh is not None and 0 <= now - record.last_refresh < JUST_REFRESHED_S:
            return record.expires_at <= now
        return record.expires_at - now < PROACTIVE_MARGIN_S

    # -- the two entry points -----------------------------------------------------------------------------

    async def fresh(self, stamp: tuple[int, int, int] | None = None) -> Credentials:
        """Credentials valid for at least a few minutes, refreshing first if needed (proactive refresh).

        `stamp` as for `load`: the file's stat taken just now by the caller, if any."""
        record = self.load(stamp)
        if record is None:
            raise self._no_login()
        if not self.is_stale(record):
            return record.credentials()
        try:
            return await self._refresh_if(self.is_stale)
        except GatewayError as e:
            current = self.load()
            usable = current is not None and (
                # The old token still works for a while: serve with it, the next request tries the refresh again.
                (current.expires_at is not None and current.expires_at > self.clock() + 10)
                # No expiry to go by (an opaque token, refreshed long ago) and only a transient refresh failure:
                # let the backend judge it; a 401 there leads to the reactive refresh.
                or (current.expires_at is None and e.status != 401)
            )
            if current is not None and usable:
                if self._fallback_warned != self.last_error:
                    self._fallback_warned = self.last_error
                    logger.warning("using the token of %s until it expires: %s", current.label, self.last_error)
                return current.credentials()
            raise

    async def after_unauthorized(self, rejected_access_token: str) -> Credentials:
        """After an upstream 401: refresh once, unless the file already holds other tokens (someone rotated)."""
        rejected = _fingerprint(rejected_access_token)
        return await self._refresh_if(lambda record: _fingerprint(record.access_token) == rejected, rejected=rejected)

    # -- the refresh under both locks ------------------------------------------------------------------------

    async def _refresh_if(self, needed: Callable[[AuthRecord], bool], rejected: str | None = None) -> Credentials:
        # The locked section runs as its own task, shielded: a caller cancelled mid-refresh (its client went
        # away) must neither release the locks early nor drop tokens the issuer has already rotated.
        task = asyncio.get_running_loop().create_task(self._locked(needed, rejected))
        self._tasks.add(task)  # a reference until done, so the task cannot be garbage-collected
        task.add_done_callback(self._task_done)
        return await asyncio.shield(task)

    def _task_done(self, task: asyncio.Task[Credentials]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: the caller that awaited it may be gone

    async def _locked(self, needed: Callable[[AuthRecord], bool], rejected: str | None) -> Credentials:
        async with self._lock:
            try:
                async with file_lock(self.lock_path):
                    return await self._refresh_locked(needed, rejected)
            except TimeoutError:
                raise self._transient("another process holds the refresh lock", 5) from None

    async def _refresh_locked(self, needed: Callable[[AuthRecord], bool], rejected: str | None) -> Credentials:
        self._stamp = None  # always re-read under the lock: another process may have rotated the tokens
        record = self.load()
        if record is None:
            raise self._no_login()
        if self._unsaved is not None:
            self._persist(self._unsaved.doc)
        if not needed(record):
            return record.credentials()
        if rejected is not None and self._reactive is not None:
            token, at = self._reactive
            if token == rejected and 0 <= self.clock() - at < JUST_REFRESHED_S:
                # The backend rejects the token our own 401-refresh just obtained: another refresh would not
                # help, and refreshing on every request would hammer the issuer.
                raise GatewayError(
                    401,
                    f"The Codex backend rejected the freshly refreshed ChatGPT login of {record.label}. {LOGIN_HINT}",
                    code="login_required",
                )
        if self._dead_refresh == _fingerprint(record.refresh_token):
            raise self._permanent(record, self.last_error or "the refresh token was rejected")
        now = self.clock()
        if now < self._retry_at:
            raise self._transient(self.last_error or "the token endpoint failed", self._retry_at - now)
        if not record.refresh_token:
            raise self._permanent(record, "the file holds no refresh token")
        logger.info("refreshing the ChatGPT token of %s", record.label)
        try:
            fields = await refresh_tokens(self.http, self.issuer, record.refresh_token)
        except OAuthError as exc:
            return self._refresh_failed(record, exc)
        doc = dict(record.doc)
        tokens = dict(doc.get("tokens") or {})
        tokens.update(fields)
        if not tokens.get("account_id") and record.account_id:
            tokens["account_id"] = record.account_id
        doc["tokens"] = tokens
        doc["last_refresh"] = format_iso(self.clock())
        doc.setdefault("OPENAI_API_KEY", None)  # the Codex CLI always serializes it
        self._failures, self._retry_at, self.last_error = 0, 0.0, None
        self._persist(doc)
        fresh = self.load()
        if fresh is None:
            raise self._no_login()
        if rejected is not None:
            self._reactive = (_fingerprint(fresh.access_token), self.clock())
        logger.info("refreshed the ChatGPT token of %s", fresh.label)
        return fresh.credentials()

    def _persist(self, doc: dict[str, Any]) -> None:
        """Writes refreshed tokens; if that fails they live on in memory (the old refresh token is dead now)."""
        try:
            atomic_write_json(self.path, doc)
        except OSError as exc:
            try:
                st = self.path.stat()
                self._unsaved_stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            except OSError:
                self._unsaved_stamp = None
            self._unsaved = parse_auth_doc(doc)
            logger.error("could not save the refreshed tokens to %s (%s); keeping them in memory", self.path, exc)
            return
        self._unsaved = None
        self._stamp = None

    def _refresh_failed(self, record: AuthRecord, exc: OAuthError) -> Credentials:
        self.last_error = exc.message
        if exc.code == "refresh_token_reused":
            # Someone else (the Codex CLI, another gateway) rotated the tokens: if they are in the file, use them.
            self._stamp = None
            again = self.load()
            if again is not None and again.refresh_token != record.refresh_token:
                logger.info("tokens of %s were rotated by another process; using them", again.label)
                self.last_error = None
                return again.credentials()
        if exc.permanent:
            self._dead_refresh = _fingerprint(record.refresh_token)
            logger.error("the ChatGPT login of %s is no longer valid: %s", record.label, exc.message)
            raise self._permanent(record, exc.message)
        self._failures += 1
        delay = max(exc.retry_after or 0, BACKOFF_S[min(self._failures, len(BACKOFF_S)) - 1])
        self._retry_at = self.clock() + delay
        logger.warning("refreshing the ChatGPT token of %s failed (%s); retry in %d s", record.label, exc, delay)
        raise self._transient(exc.message, delay)

    # -- errors -------------------------------------------------------------------------------------------

    def _no_login(self) -> GatewayError:
        where = self.problem or f"No ChatGPT login found at {self.path}"
        return GatewayError(401, f"{where}. {LOGIN_HINT}", code="no_login")

    def _permanent(self, record: AuthRecord, reason: str) -> GatewayError:
        return GatewayError(
            401,
            f"The ChatGPT login of {record.label} has expired or was revoked ({reason}). {LOGIN_HINT}",
            code="login_required",
        )

    def _transient(self, reason: str, retry_after: float) -> GatewayError:
        seconds = max(1, int(retry_after + 0.999))
        return GatewayError(
            503,
            f"Could not refresh the ChatGPT login ({reason}). Try again in {seconds} s.",
            code="token_refresh_failed",
            headers={"retry-after": str(seconds)},
        )
