"""Account management shared by the `codex-gateway accounts` command line and the mitmproxy commands:
pin and exclude (`selection.py`), export and import (`transfer.py`), and writing an account into the Codex CLI's
`auth.json` (`apply_codex`).

Every operation validates everything first and changes nothing when it refuses: it raises `AccountError` with a
one-line message (never a token). Writes are atomic and leave files 0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from .auth_file import AuthRecord
from .auth_file import parse_auth_doc
from .auth_file import short_id
from .migrate import put_logins
from .pool import AccountPool
from .pool import account_file_name
from .selection import Selection
from .token_store import atomic_write_json
from .transfer import TransferError
from .transfer import auth_doc
from .transfer import export_bundle
from .transfer import parse_import

__all__ = [
    "AccountError",
    "find_account",
    "use",
    "auto",
    "exclude",
    "include",
    "export_accounts",
    "write_export",
    "import_file",
    "apply_codex",
    "EXPORT_WARNING",
]

EXPORT_WARNING = (
    "warning: {path} holds the login credentials of {n} account(s): anyone with this file can use them. "
    "Keep it private and delete it when done."
)


class AccountError(ValueError):
    """A refused account command: one line that says what was wrong."""


# -- finding an account -----------------------------------------------------------------------------------------


def find_account(pool: AccountPool, target: str) -> dict[str, Any]:
    """The status row of the one account `target` names (account id, short id, id prefix, email, or file name)."""
    wanted = target.strip().lower()
    if not wanted:
        raise AccountError("name an account by its id or email")
    files = pool.files()
    matches = []
    for row in pool.status():
        key = str(row["account_id"])
        names = {key.lower(), str(row["account"]).lower(), str(row["email"] or "").lower(), str(row["label"]).lower()}
        names |= {path.stem.lower() for path in files.get(key, [])}
        if wanted in names or (len(wanted) >= 6 and key.lower().startswith(wanted)):
            matches.append(row)
    if not matches:
        raise AccountError(f"no account matches {target!r} (see `codex-gateway accounts list`)")
    if len(matches) > 1:
        raise AccountError(f"{target!r} matches {len(matches)} accounts; use the account id")
    row = matches[0]
    if str(row["account_id"]).startswith("file:"):
        raise AccountError(f"{row['file']} holds no usable login ({row['problem']})")
    return row


# -- pin and exclusions ------------------------------------------------------------------------------------------


def use(pool: AccountPool, target: str) -> str:
    row = find_account(pool, target)
    key = row["account_id"]
    _update(pool, lambda s: Selection(key, s.excluded))
    return f"pinned {row['label']}: every request now uses this account (`auto` returns to automatic choice)"


def auto(pool: AccountPool) -> str:
    before = pool.selection.current()
    _update(pool, lambda s: Selection(None, s.excluded))
    if before.pinned is None:
        return "no account was pinned; accounts are chosen automatically"
    return "unpinned: accounts are chosen automatically again"


def exclude(pool: AccountPool, target: str) -> str:
    row = find_account(pool, target)
    key = row["account_id"]
    _update(pool, lambda s: Selection(s.pinned, s.excluded | {key}))
    note = " (it stays pinned: `auto` unpins it)" if pool.selection.current().pinned == key else ""
    return f"excluded {row['label']} from automatic choice{note}"


def include(pool: AccountPool, target: str) -> str:
    row = find_account(pool, target)
    key = row["account_id"]
    if key not in pool.selection.current().excluded:
        return f"{row['label']} was not excluded"
    _update(pool, lambda s: Selection(s.pinned, s.excluded - {key}))
    return f"included {row['label']} in automatic choice again"


def _update(pool: AccountPool, change: Any) -> None:
    try:
        pool.selection.update(change)
    except (OSError, ValueError) as exc:
        raise AccountError(f"cannot change {pool.selection.where}: {exc}") from None


# -- export and import -------------------------------------------------------------------------------------------


def export_accounts(
    pool: AccountPool, targets: list[str], *, everything: bool, now: float | None = None
) -> dict[str, Any]:
    """The export bundle of the named accounts (or all of them)."""
    if everything and targets:
        raise AccountError("name accounts or give --all, not both")
    if not everything and not targets:
        raise AccountError("name the accounts to export, or give --all")
    keys = [row["account_id"] for row in pool.status() if not str(row["account_id"]).startswith("file:")]
    if not everything:
        keys = list(dict.fromkeys(find_account(pool, t)["account_id"] for t in targets))
    if not keys:
        raise AccountError("there are no accounts to export")
    records = []
    for key in keys:
        record = pool.account_record(key)
        if record is None:
            raise AccountError(f"account {short_id(key)} has no readable login file")
        records.append(record)
    return export_bundle(records, time.time() if now is None else now)


def write_export(path: Path, bundle: dict[str, Any]) -> None:
    """Writes the bundle 0600, atomically; refuses a directory or a missing parent directory."""
    if path.is_dir():
        raise AccountError(f"{path} is a directory")
    if not path.parent.is_dir():
        raise AccountError(f"{path.parent} does not exist")
    try:
        atomic_write_json(path, bundle)
    except OSError as exc:
        raise AccountError(f"cannot write {path}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class _Planned:
    record: AuthRecord
    path: Path | None  # None: nothing to write
    outcome: str


def import_file(pool: AccountPool, path: Path) -> list[str]:
    """Imports every login in `path` into `gateway_home/accounts/` (or the shared store); one line per login saying
    what happened.

    An account already known is updated in place (never a second file), unless the login on file is newer."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AccountError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        imported = parse_import(orjson.loads(raw))
    except orjson.JSONDecodeError as exc:
        raise AccountError(f"{path} is not valid JSON ({exc}); nothing imported") from None
    except TransferError as exc:
        raise AccountError(f"{path} {exc}; nothing imported") from None
    if pool.backend.kind != "files":  # the shared store: written (in order) when the command ends
        return put_logins(pool.backend, [item.record for item in imported])
    plan = [_plan(pool, item.record) for item in imported]
    _write_all([(p.path, p.record.doc) for p in plan if p.path is not None])
    return [f"{p.record.label} ({short_id(p.record.account_id)}): {p.outcome}" for p in plan]


def _plan(pool: AccountPool, record: AuthRecord) -> _Planned:
    key = record.account_id
    current = pool.account_record(key)
    ours = [p for p in pool.files().get(key, []) if p != pool.codex_file]
    target = ours[0] if ours else pool.accounts_dir / account_file_name(key)
    if current is not None:
        if current.access_token == record.access_token:
            return _Planned(record, None, "unchanged (already there)")
        if (current.expires_at or 0) > (record.expires_at or 0):
            return _Planned(record, None, "kept the newer login already there")
    return _Planned(record, target, f"updated {target}" if ours else f"added as {target}")


def _write_all(writes: list[tuple[Path, dict[str, Any]]]) -> None:
    """Every file written to a temporary name first, then all renamed: an error leaves nothing half-imported."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, doc in writes:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
        while staged:
            tmp, path = staged[0]
            os.replace(tmp, path)
            staged.pop(0)
    except OSError as exc:
        raise AccountError(f"cannot write the imported logins: {exc.strerror or exc}; nothing imported") from None
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# -- the Codex CLI's login ---------------------------------------------------------------------------------------


def apply_codex(pool: AccountPool, target: str, *, lock_timeout: float = 10.0, now: float | None = None) -> str:
    """Writes the account into `$CODEX_HOME/auth.json` (Codex layout, 0600, atomic) after backing up the file there,
    so the Codex CLI runs as that account. `lock_timeout` 0: fail at once if a refresh holds the file's lock."""
    if pool.backend.kind != "files":
        # The shared store's gateways do not read auth.json: the CLI and they would each rotate the one refresh
        # token, and the first refresh on either side would log the other out.
        raise AccountError(
            "apply-codex would hand the shared login to this machine's Codex CLI, and the first refresh on either "
            "side would log the other out; sign the Codex CLI in on its own (`codex login`)"
        )
    row = find_account(pool, target)
    key = row["account_id"]
    record = pool.account_record(key)
    if record is None or row["login_required"]:
        raise AccountError(f"{row['label']} has no valid login to hand over; log in again first")
    codex_file = pool.codex_file
    stamp = time.time() if now is None else now
    doc = auth_doc(record.id_token, record.access_token, record.refresh_token, key, record.last_refresh or stamp)
    try:
        with _file_lock(codex_file.with_name(codex_file.name + ".lock"), lock_timeout):
            current = _read_record(codex_file)
            if current is not None and current.access_token == record.access_token:
                return f"the Codex CLI already runs as {row['label']} ({codex_file})"
            backup = _backup(codex_file, stamp)
            atomic_write_json(codex_file, doc)
    except TimeoutError:
        raise AccountError(f"{codex_file} is being refreshed right now; try again in a moment") from None
    except OSError as exc:
        raise AccountError(f"cannot write {codex_file}: {exc.strerror or exc}") from None
    saved = f"; the previous file is saved as {backup}" if backup else ""
    return f"the Codex CLI now runs as {row['label']} ({codex_file}){saved}"


def _read_record(path: Path) -> AuthRecord | None:
    try:
        return parse_auth_doc(orjson.loads(path.read_bytes()))
    except (OSError, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None


def _backup(path: Path, now: float) -> Path | None:
    """A 0600 copy of the file about to be replaced, named by the time (never overwriting an earlier backup)."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    base = f"{path.name}.bak-{datetime.fromtimestamp(now, UTC).strftime('%Y%m%dT%H%M%SZ')}"
    for n in range(100):
        backup = path.with_name(base if n == 0 else f"{base}-{n}")
        try:
            fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            os.fsync(fh.fileno())
        return backup
    raise OSError(f"too many backups of {path} this second")


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    """The flock the gateway takes around a refresh of the same file (token_store.py), without blocking forever."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(str(path)) from None
                time.sleep(0.05)  # a refresh takes about a second; the command line may wait that long
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
