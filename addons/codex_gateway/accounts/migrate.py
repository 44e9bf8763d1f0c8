"""Moving a whole state from one backend to another (`accounts migrate --to redis://… | files`), and putting logins
into a store (`accounts import`, `accounts login`) whatever backend it is.

Copied: every account's login, its cooldown and quota snapshot, the pin and the exclusions. Not copied: the
Codex CLI's own login (`$CODEX_HOME/auth.json`): its refresh token is the CLI's, and a refresh token can only be
used once, so a
shared copy would log the CLI out on this machine at the first refresh elsewhere (or the gateways, when the CLI
refreshes first). A separate `accounts login` gives the shared pool its own login of the same ChatGPT account.
Nothing is deleted from the source: its copies keep the logins as they were, and go stale at the first refresh in
the new store.
"""

from __future__ import annotations

import time

from .auth_file import AuthRecord
from .auth_file import short_id
from .state import StateBackend

__all__ = ["migrate", "put_logins"]


def put_logins(target: StateBackend, records: list[AuthRecord]) -> list[str]:
    """Adds each login unless the store already holds a newer one of that account; one line per login."""
    current = {key: stores for key, stores in target.scan().accounts.items()}
    lines = []
    for record in records:
        name = f"{record.label} ({short_id(record.account_id)})"
        held = [s.load() for s in current.get(record.account_id, [])]
        newest = max((r for r in held if r is not None), key=_expiry, default=None)
        if newest is not None and newest.access_token == record.access_token:
            lines.append(f"{name}: unchanged (already there)")
        elif newest is not None and _expiry(newest) > _expiry(record):
            lines.append(f"{name}: kept the newer login already there")
        else:
            lines.append(f"{name}: {'updated' if newest else 'added'} in {target.put_login(dict(record.doc))}")
    return lines


async def migrate(source: StateBackend, target: StateBackend, now: float | None = None) -> list[str]:
    """Copies `source` into `target` (both ready); returns what happened, one line per account."""
    now = time.time() if now is None else now
    records: list[AuthRecord] = []
    lines: list[str] = []
    for key, stores in source.scan().accounts.items():
        own = [s for s in stores if source.source(s) != "codex" and s.load() is not None]
        if not own:
            first = stores[0].load()
            what = first.label if first is not None else stores[0].where
            lines.append(
                f"{what}: not copied: it is the Codex CLI's login ({stores[0].where}), which must stay the CLI's; "
                "add the account to the new store with `accounts login`"
            )
            continue
        record = own[0].load()
        assert record is not None
        records.append(record)
        theirs = source.quota.get(key)
        if theirs.quota or theirs.cooldown_until > now:
            target.quota.get(key).merge(theirs)
    lines += put_logins(target, records)
    selection = source.selection.current()
    if selection.pinned is not None or selection.excluded:
        target.selection.update(lambda _: selection)
        lines.append("the pinned account and the exclusions: copied")
    target.quota.save(now)
    await target.flush()
    return lines


def _expiry(record: AuthRecord) -> float:
    return record.expires_at or 0.0
