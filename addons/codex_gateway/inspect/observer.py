"""The addon's observability glue: every finished gateway flow goes to the metrics and the request log, and the
gateway's own pages are answered here: `/_gateway/health`, `/_gateway/status`, `/metrics` and `/_gateway/`.

The addon calls `configure(settings)`, `record(flow)` when a gateway flow ends, `answer(...)` for a local route
and `close()` on shutdown. Reading the database (status, page) runs on a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import orjson
from mitmproxy import ctx
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from .. import __version__
from ..errors import GatewayError
from ..http.routes import LocalRoute
from . import commands
from . import usage_report
from .metrics import GatewayMetrics
from .metrics import families
from .metrics import render
from .usage_row import DB_NAME
from .usage_row import row_from_flow

if TYPE_CHECKING:
    import sqlite3

    from ..accounts.upstream_access import UpstreamAccess
    from ..model_catalog import ModelCatalog
    from ..settings import Settings
    from .status_page import PageData
    from .usage_log import UsageLog

__all__ = ["Observer", "public_account", "key_matches"]

logger = logging.getLogger(__name__)

PAGE_DAYS = 14
PAGE_RECENT = 50
# Flow ids recorded last: mitmproxy never runs both the response and the error hook of a flow, but a flow answered
# locally may still see an error (a kill) right after; either way it ends twice in a row, so a short memory will do.
_REMEMBERED = 64
# What an account row may show (pool.status() also has the account id and the file path: not for a web page).
_PUBLIC_ACCOUNT_KEYS = (
    "label",
    "email",
    "plan",
    "source",
    "token_expires_at",
    "last_refresh",
    "quota",
    "cooldown_until",
    "cooldown_reason",
    "login_required",
    "pinned",
    "excluded",
    "problem",
    "refreshes",
    "refresh_failures",
)


def public_account(row: Mapping[str, Any]) -> dict[str, Any]:
    return {key: row.get(key) for key in _PUBLIC_ACCOUNT_KEYS}


def key_matches(headers: http.Headers, key: str) -> bool:
    """The gateway key as `Authorization: Bearer <key>`, `x-api-key`, or HTTP Basic with the key as password
    (what a browser sends after the page's challenge; the user name is ignored)."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    given = headers.get("x-api-key", "")
    if scheme.lower() == "bearer":
        given = value.strip()
    elif scheme.lower() == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            given = ""
    return hmac.compare_digest(given.encode(), key.encode())


class Observer:
    def __init__(self) -> None:
        self.metrics = GatewayMetrics()
        self.log: UsageLog | None = None
        self._wanted: tuple[Path, int] | None = None  # (database, days kept), or None: no request log
        self._ready = False  # the gateway runs and mitmproxy's start-up check is over
        self._recorded: OrderedDict[str, None] = OrderedDict()

    # -- lifecycle --------------------------------------------------------------------------------------------

    def configure(self, settings: Settings) -> None:
        """Which request log to keep (`gateway_home`, on or off, how long); opened once the gateway runs."""
        self._wanted = (settings.gateway_home / DB_NAME, settings.log_days) if settings.usage_log else None
        commands.use_database(self._wanted[0] if self._wanted else None)
        if self._ready:
            self._apply()

    def running(self) -> None:
        """From the addon's `running`: only a running gateway writes (a test's or a checker's addon never does).

        mitmproxy exits when anything logs an error during its start-up, and a broken database must never stop
        the gateway: so the log opens (and may report its error) once that start-up check is over."""
        handler = _startup_check()
        if handler is None:
            self._ready = True
            self._apply()
        else:
            asyncio_utils.create_task(self._apply_after(handler), name="codex-gateway request log", keep_ref=True)

    async def _apply_after(self, handler: logging.Handler) -> None:
        while handler in logging.getLogger().handlers:  # removed right after the running hooks
            await asyncio.sleep(0.01)
        self._ready = True
        self._apply()

    def _apply(self) -> None:
        wanted, log = self._wanted, self.log
        if log is not None and wanted is not None and log.path == wanted[0]:
            log.keep_days = wanted[1]  # read by the writer at its next housekeeping
            return
        self.close()
        if wanted is not None:
            from .usage_log import UsageLog  # loads SQLite: only a gateway that keeps the log pays for it

            self.log = UsageLog(wanted[0], keep_days=wanted[1])
            self.log.start()

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None

    # -- every finished gateway flow --------------------------------------------------------------------------

    def record(self, flow: http.HTTPFlow) -> None:
        if flow.id in self._recorded:
            return
        row = row_from_flow(flow)
        if row is None:
            return
        self._recorded[flow.id] = None
        if len(self._recorded) > _REMEMBERED:
            self._recorded.popitem(last=False)
        self.metrics.observe(row)
        if self.log is not None:
            self.log.submit(row)

    # -- the local routes -------------------------------------------------------------------------------------

    async def answer(
        self,
        flow: http.HTTPFlow,
        route: LocalRoute,
        settings: Settings,
        access: UpstreamAccess | None,
        catalog: ModelCatalog | None,
    ) -> None:
        key = settings.api_key
        if route is LocalRoute.HEALTH:
            flow.response = _json(200, {"status": "ok"})
        elif key and not key_matches(flow.request.headers, key):
            flow.response = _unauthorized(browser=route is LocalRoute.STATUS_PAGE)
        elif route is LocalRoute.METRICS:
            flow.response = self._metrics(access, catalog, flow.request.headers.get("accept", ""))
        elif route is LocalRoute.STATUS:
            flow.response = _json(200, await self._status(flow, settings, access, catalog))
        else:
            from .status_page import PAGE_HEADERS  # first use: a gateway nobody looks at stays smaller
            from .status_page import PageData
            from .status_page import render_page

            page = PageData(
                version=__version__,
                started_at=self.metrics.started_at,
                upstream=settings.upstream_url(""),
                listen=_listen(flow),
                accounts=[public_account(row) for row in access.pool.status()] if access else [],
            )
            await asyncio.to_thread(self._read_page_data, page)
            flow.response = http.Response.make(200, render_page(page), PAGE_HEADERS)

    def _metrics(self, access: UpstreamAccess | None, catalog: ModelCatalog | None, accept: str) -> http.Response:
        collected = families(
            self.metrics,
            known_model=(lambda model: catalog.lookup(model) is not None) if catalog else (lambda model: False),
            accounts=access.pool.status() if access else (),
            log_state=self.log.state() if self.log else None,
            version=__version__,
        )
        body, content_type = render(collected, accept)
        return http.Response.make(200, body, {"content-type": content_type, "cache-control": "no-store"})

    async def _status(
        self, flow: http.HTTPFlow, settings: Settings, access: UpstreamAccess | None, catalog: ModelCatalog | None
    ) -> dict[str, Any]:
        now = time.time()
        return {
            "version": __version__,
            "started_at": self.metrics.started_at,
            "uptime_seconds": round(now - self.metrics.started_at, 3),
            "listen": _listen(flow),
            "upstream": settings.upstream_url(""),
            "accounts": [public_account(row) for row in access.pool.status()] if access else [],
            "models": catalog.status() if catalog else None,
            "database": await asyncio.to_thread(self._database_state),
        }

    # -- worker-thread parts ------------------------------------------------------------------------------------

    def _database_state(self) -> dict[str, Any] | None:
        log = self.log
        if log is None:
            return None
        log.flush(2.0)
        try:
            totals = _read(log, usage_report.totals)
        except usage_report.LogUnreadable as e:
            return {**log.state(), "read_error": str(e)}
        return {**log.state(), "totals": totals}

    def _read_page_data(self, page: PageData) -> None:
        """The request log's part of the page: the rows just finished are written first, so they show."""
        log = self.log
        if log is None:
            return
        log.flush(2.0)
        try:
            page.daily_tokens, page.daily_failures, page.recent = _read(
                log,
                lambda conn: (
                    usage_report.daily_tokens(conn, PAGE_DAYS, page.now),
                    usage_report.daily_failures(conn, PAGE_DAYS, page.now),
                    usage_report.recent(conn, PAGE_RECENT),
                ),
            )
        except usage_report.LogUnreadable as e:
            page.read_error = str(e)
        page.database = log.state()  # after the read, which may have found the file corrupt


def _read[T](log: UsageLog, report: Callable[[sqlite3.Connection], T]) -> T:
    """`report` over the log's file; a corrupt file found here also makes the log's state not ok (the writer's
    open connection may go on writing from its cached pages without noticing)."""
    try:
        return usage_report.read_log(log.path, report)
    except usage_report.LogUnreadable as e:
        if e.corrupt:
            log.found_corrupt(str(e))
        raise


def _startup_check() -> logging.Handler | None:
    """mitmproxy's ErrorCheck log handler while it is still watching the start-up, else None."""
    master = getattr(ctx, "master", None)
    errorcheck = master.addons.get("errorcheck") if master is not None else None
    handler = getattr(errorcheck, "logger", None)
    return handler if isinstance(handler, logging.Handler) and handler in logging.getLogger().handlers else None


def _listen(flow: http.HTTPFlow) -> list[str]:
    """Where this request arrived (the gateway's own listener)."""
    sockname = flow.client_conn.sockname
    return [f"{sockname[0]}:{sockname[1]}"] if sockname else []


def _json(status: int, payload: Any) -> http.Response:
    return http.Response.make(
        status, orjson.dumps(payload), {"content-type": "application/json", "cache-control": "no-store"}
    )


def _unauthorized(*, browser: bool) -> http.Response:
    error = GatewayError(
        401,
        "Incorrect or missing gateway API key: send it as `Authorization: Bearer <key>` "
        "(or, in a browser, as the password of the login prompt).",
        code="invalid_api_key",
    )
    if browser:
        body = b"<!doctype html><title>401</title><p>This page needs the gateway key (as the password).</p>"
        headers = {"content-type": "text/html; charset=utf-8", "www-authenticate": 'Basic realm="codex-gateway"'}
        return http.Response.make(401, body, headers)
    return http.Response.make(
        401, error.body(), {"content-type": "application/json", "www-authenticate": 'Bearer realm="codex-gateway"'}
    )
