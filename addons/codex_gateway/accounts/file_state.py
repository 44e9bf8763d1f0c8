"""The file backend (the default): today's layout on one machine, any number of gateways sharing it by file locks.

Accounts are files: `$CODEX_HOME/auth.json` (the Codex CLI's login, always included) and
`gateway_home/accounts/<account_id>.json` (from `accounts login`/`import`), all in the same layout. A scan is
repeated when a directory or file changes, so logins and removals by the command line apply without a restart.
The same account in two files is one account; the file refreshed most recently serves it (a fresh login wins
over a stale copy), and the other takes over if the first one's refresh token dies. Cooldowns and quota snapshots
are in `gateway_home/state.json` (quota.py), pins and exclusions in `gateway_home/selection.json` (selection.py),
the model catalog cache in `gateway_home/models_catalog.json`, and the conversation affinity stays in memory:
nobody else could use it.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from ..errors import GatewayError
from .auth_file import parse_auth_doc
from .login_store import LoginStore
from .quota import StateFile
from .selection import SelectionFile
from .state import AccountScan
from .token_store import TokenStore
from .token_store import atomic_write_json

__all__ = ["FileState", "FileAffinity", "FileCatalogCache", "account_file_name", "CATALOG_NAME"]

logger = logging.getLogger(__name__)

CATALOG_NAME = "models_catalog.json"  # in gateway_home; never Codex's models_cache.json
# A directory listing is reused only when the directory's mtime is this much older than the listing: file systems
# stamp times coarsely (a kernel tick; 2 s on FAT), so a change in the same tick would not change the stamp.
LISTING_SETTLE_NS = 2_000_000_000
STICKY_MAX = 10_000  # session keys remembered (LRU); a forgotten one only costs a prompt-cache miss


@dataclass(frozen=True)
class _Listing:
    """The `*.json` names of the accounts directory, and when (wall clock, ns) they were read."""

    dir_stamp: tuple[int, int, int]
    read_at_ns: int
    paths: list[Path]


class FileAffinity:
    """Session key -> account, in memory (LRU)."""

    shared = False

    def __init__(self, limit: int = STICKY_MAX) -> None:
        self.limit = limit
        self._sticky: OrderedDict[str, str] = OrderedDict()

    def get(self, session_key: str) -> str | None:
        return self._sticky.get(session_key)

    async def fetch(self, session_key: str) -> str | None:
        return None

    def set(self, session_key: str, account_key: str) -> None:
        self._sticky[session_key] = account_key
        self._sticky.move_to_end(session_key)
        while len(self._sticky) > self.limit:
            self._sticky.popitem(last=False)


class FileCatalogCache:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = str(path)

    def read(self) -> dict[str, Any] | None:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return doc if isinstance(doc, dict) else None

    def write(self, doc: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
            os.replace(tmp, self.path)
        except OSError as e:
            logger.warning("codex-gateway: could not write %s (%s)", self.path, e)
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass


class FileState:
    kind = "files"

    def __init__(
        self,
        codex_home: Path,
        gateway_home: Path,
        issuer: str,
        *,
        clock: Callable[[], float] = time.time,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.codex_file = codex_home / "auth.json"
        self.gateway_home = gateway_home
        self.accounts_dir = gateway_home / "accounts"
        self.address = f"files in {gateway_home}"
        self.issuer = issuer
        self.clock = clock
        self.http = http
        self.quota = StateFile(gateway_home / "state.json")
        self.affinity = FileAffinity()
        self.catalog = FileCatalogCache(gateway_home / CATALOG_NAME)
        self.selection = SelectionFile(gateway_home)  # `use` / `exclude`, re-read when the file changes
        self._stores: dict[Path, TokenStore] = {}  # kept across rescans: they own the locks and failure memory
        self._stamp: tuple[Any, ...] = ()
        self._scan = AccountScan()
        self._listing: _Listing | None = None

    # -- the backend interface ---------------------------------------------------------------------------------

    def unavailable(self) -> GatewayError | None:
        return None

    def use_http(self, http: httpx.AsyncClient) -> None:
        self.http = http
        for store in self._stores.values():
            store.http = http

    async def ready(self) -> None:
        return None

    async def flush(self) -> None:
        return None  # every write was made at once

    async def aclose(self) -> None:
        return None

    def no_login_message(self) -> str:
        return f"No ChatGPT login found (neither {self.codex_file} nor {self.accounts_dir}/*.json)."

    def source(self, store: LoginStore) -> str:
        return "codex" if isinstance(store, TokenStore) and store.path == self.codex_file else "gateway"

    def put_login(self, doc: dict[str, Any]) -> str:
        record = parse_auth_doc(doc)
        path = self.accounts_dir / account_file_name(record.account_id)
        atomic_write_json(path, doc)
        return str(path)

    def remove_login(self, key: str) -> list[str]:
        """Removes the gateway's files of the account (never the Codex CLI's auth.json)."""
        removed = []
        for store in self.scan().accounts.get(key, []):
            if isinstance(store, TokenStore) and store.path != self.codex_file:
                store.path.unlink(missing_ok=True)
                store.lock_path.unlink(missing_ok=True)
                removed.append(str(store.path))
        return removed

    def scan(self) -> AccountScan:
        self.quota.reload_if_changed()
        dir_stamp = _stat(self.accounts_dir)
        paths = [self.codex_file, *self._account_files(dir_stamp)]
        # Every known file is stat'ed on every call: an in-place edit (same name) changes no directory stamp.
        file_stamps = [_stat(p) for p in paths]
        stamp = (dir_stamp, *file_stamps)
        if stamp == self._stamp:
            return self._scan
        groups: dict[str, list[LoginStore]] = {}
        hints: dict[LoginStore, Any] = {}
        for path, file_stamp in zip(paths, file_stamps, strict=True):
            store = self._stores.get(path)
            if store is None:
                store = self._stores[path] = TokenStore(path, self.issuer, clock=self.clock, http=self.http)
            record = store.load()
            if record is None and store.problem is None:
                continue  # missing file
            key = record.account_id if record and record.account_id else f"file:{path}"
            groups.setdefault(key, []).append(store)
            hints[store] = file_stamp
        for stores in groups.values():
            # Most recently refreshed first (ties: the Codex CLI's file), so a fresh login replaces a stale copy.
            stores.sort(key=lambda s: (-(_last_refresh(s)), self.source(s) != "codex"))
        self._stamp, self._scan = stamp, AccountScan(groups, hints)
        return self._scan

    def _account_files(self, dir_stamp: tuple[int, int, int] | None) -> list[Path]:
        """`accounts/*.json`, sorted; listed again only when the directory may have changed since the last listing.

        Creating, removing or renaming a file (logins are written atomically, by rename) changes the directory's
        stamp. A change within the same timestamp tick as the listing could go unseen, so a listing is trusted
        only once the directory's mtime is safely older than it (the "racy git" rule); until then, list again.
        """
        if dir_stamp is None:
            return []  # no directory (or none we may read): nothing to list
        listing = self._listing
        if (
            listing is not None
            and listing.dir_stamp == dir_stamp
            and dir_stamp[1] < listing.read_at_ns - LISTING_SETTLE_NS
        ):
            return listing.paths
        read_at_ns = time.time_ns()  # before listing: a change after this moment gets a later mtime
        paths = sorted(self.accounts_dir.glob("*.json"))
        self._listing = _Listing(dir_stamp, read_at_ns, paths)
        return paths


def account_file_name(account_id: str) -> str:
    """`accounts/<this>` holds a login of the account (a safe file name made from its id)."""
    return (re.sub(r"[^A-Za-z0-9._-]", "_", account_id)[:120] or "account") + ".json"


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _last_refresh(store: LoginStore) -> float:
    record = store.load()
    return (record.last_refresh or 0.0) if record else 0.0
