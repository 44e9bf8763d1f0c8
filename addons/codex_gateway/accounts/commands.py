"""The account commands of a running gateway, for mitmproxy's console and mitmweb's command bar.

    codex.accounts                         every account: plan, token expiry, quota, cooldown, pin, exclusion
    codex.use <id|email>  /  codex.auto    pin one account for every request / choose automatically again
    codex.exclude <id|email>  /  codex.include <id|email>
    codex.export <file> --all | <id|email>…   a JSON bundle of logins, mode 0600 (it holds credentials)
    codex.import <file>                    a bundle, an AI-Zero-Token export, or a Codex auth.json
    codex.apply_codex <id|email>           make the Codex CLI run as that account ($CODEX_HOME/auth.json)
    codex.quota [<id|email>…]              the last quota windows
    codex.quota.refresh [<id|email>…]      fresh readings in the background; results in the event log

They do what `codex-gateway accounts …` does (accounts/manage.py), on the files the gateway reads, so a change is
picked up at the next request and survives a restart. A refused command changes nothing and says why in one line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import exceptions
from mitmproxy.utils import asyncio_utils

from ..settings import Settings
from . import manage
from .manage import AccountError
from .pool import AccountPool
from .pool import format_status
from .upstream_access import UpstreamAccess
from .usage import QuotaReading
from .usage import format_quota
from .usage import refresh_quotas
from .usage import usage_url

__all__ = ["AccountCommands"]

logger = logging.getLogger(__name__)


class AccountCommands:
    """Bound to the gateway's current account pool and settings (both change when options change)."""

    def __init__(self, access: Callable[[], UpstreamAccess | None], settings: Callable[[], Settings | None]) -> None:
        self._access = access
        self._settings = settings
        self.refreshing: asyncio.Task[None] | None = None  # the quota readings under way, if any

    def load(self, loader: Any) -> None:
        for name, func in (
            ("codex.accounts", self.accounts),
            ("codex.use", self.use),
            ("codex.auto", self.auto),
            ("codex.exclude", self.exclude),
            ("codex.include", self.include),
            ("codex.export", self.export),
            ("codex.import", self.import_logins),
            ("codex.apply_codex", self.apply_codex),
            ("codex.quota", self.quota),
            ("codex.quota.refresh", self.quota_refresh),
        ):
            loader.add_command(name, func)

    def accounts(self) -> str:
        """The ChatGPT accounts the gateway uses: plan, token expiry, last quota, cooldown, pin (never a token)."""
        pool = self._pool()
        rows = pool.status()
        if not rows:
            return "no accounts: log in with `codex login` or `codex-gateway accounts login`"
        note = pool.selection_note()
        return format_status(rows) + (f"\n{note}" if note else "")

    def use(self, account: str) -> str:
        """Pin one account (id or email) for every request."""
        return self._run(lambda pool: manage.use(pool, account))

    def auto(self) -> str:
        """Choose accounts automatically again (undoes codex.use)."""
        return self._run(manage.auto)

    def exclude(self, account: str) -> str:
        """Keep an account (id or email) out of automatic choice."""
        return self._run(lambda pool: manage.exclude(pool, account))

    def include(self, account: str) -> str:
        """Let an excluded account be chosen automatically again."""
        return self._run(lambda pool: manage.include(pool, account))

    def export(self, path: str, *accounts: str) -> str:
        """Write a JSON bundle of logins (mode 0600; it holds credentials): `--all` or account ids/emails."""

        def run(pool: AccountPool) -> str:
            everything = "--all" in accounts
            bundle = manage.export_accounts(pool, [a for a in accounts if a != "--all"], everything=everything)
            target = Path(path).expanduser()
            manage.write_export(target, bundle)
            logger.warning("%s", manage.EXPORT_WARNING.format(path=target, n=len(bundle["profiles"])))
            return f"exported {len(bundle['profiles'])} account(s) to {target} (mode 0600; it holds credentials)"

        return self._run(run)

    def import_logins(self, path: str) -> str:
        """Import logins from a bundle, an AI-Zero-Token export or a Codex auth.json."""
        return self._run(lambda pool: "\n".join(manage.import_file(pool, Path(path).expanduser())))

    def apply_codex(self, account: str) -> str:
        """Write the account into $CODEX_HOME/auth.json (backing up that file) so the Codex CLI runs as it."""
        # lock_timeout 0: waiting here would block the event loop that runs the refresh holding the lock.
        return self._run(lambda pool: manage.apply_codex(pool, account, lock_timeout=0))

    def quota(self, *accounts: str) -> str:
        """The last quota windows of every account (or of the named ones)."""
        return self._run(lambda pool: format_quota(_rows(pool, accounts)))

    def quota_refresh(self, *accounts: str) -> str:
        """Read fresh quota windows from the backend (in the background; the results go to the event log)."""
        access, settings = self._access(), self._settings()
        if access is None or settings is None:
            raise exceptions.CommandError("the gateway is not configured yet")
        keys = self._run(lambda pool: [r["account_id"] for r in _rows(pool, accounts)])
        if not keys:
            return "no accounts to read"
        url = usage_url(settings.upstream_url(""))
        headers = {"User-Agent": settings.user_agent, "originator": settings.originator}

        async def refresh() -> None:
            readings = await refresh_quotas(
                access.pool, keys, url, access.client(), headers=headers, on_reading=_log_reading
            )
            failed = sum(1 for r in readings if r.error)
            logger.info("quota readings done (%d failed):\n%s", failed, format_quota(_rows(access.pool, accounts)))

        if self.refreshing is not None and not self.refreshing.done():
            raise exceptions.CommandError("quota readings are already under way; see the event log")
        self.refreshing = asyncio_utils.create_task(refresh(), name="codex.quota.refresh", keep_ref=True)
        return f"reading the quota of {len(keys)} account(s) from {url}; results go to the event log"

    # -- helpers ---------------------------------------------------------------------------------------------

    def _pool(self) -> AccountPool:
        access = self._access()
        if access is None:
            raise exceptions.CommandError("the gateway is not configured yet")
        return access.pool

    def _run(self, operation: Callable[[AccountPool], Any]) -> Any:
        try:
            return operation(self._pool())
        except AccountError as exc:
            raise exceptions.CommandError(str(exc)) from None


def _rows(pool: AccountPool, accounts: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = [r for r in pool.status() if not str(r["account_id"]).startswith("file:")]
    if not accounts:
        return rows
    keys = {manage.find_account(pool, a)["account_id"] for a in accounts}
    return [r for r in rows if r["account_id"] in keys]


def _log_reading(reading: QuotaReading) -> None:
    if reading.error:
        logger.warning("quota of %s: %s", reading.label, reading.error)
    else:
        logger.info("quota of %s read", reading.label)
