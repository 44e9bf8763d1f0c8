"""How the gateway reaches the Codex backend on an account's behalf: leases per flow, quota bookkeeping, the
side requests of a retry, and the credentials of the model catalog. No mitmproxy here; flows are named by id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from collections.abc import Sequence

import httpx

from ..errors import GatewayError
from ..http.headers import upstream_headers
from ..settings import Settings
from ..upstream.client import upstream_client
from .auth_file import CodexAuthFile
from .auth_file import Credentials
from .backends import open_backend
from .login_store import StoreUnavailable
from .pool import AccountPool
from .pool import Lease
from .recovery import UpstreamAnswer
from .recovery import needs_recovery
from .recovery import recover
from .recovery import send_upstream

__all__ = ["UpstreamAccess"]

logger = logging.getLogger(__name__)


class UpstreamAccess:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.auth = CodexAuthFile(settings.codex_home)  # read-only view of auth.json, used while replaying
        # One client for every side request (token refresh included), following settings.proxy.
        self._http = upstream_client(settings.proxy, httpx.Timeout(settings.idle_timeout, connect=15))
        home, issuer = settings.gateway_home, settings.issuer
        backend = open_backend(settings.state, settings.codex_home, home, issuer, http=self._http)
        self.pool = AccountPool(settings.codex_home, home, issuer, http=self._http, backend=backend)
        self._leases: dict[str, Lease] = {}

    async def credentials(self, flow_id: str, session_id: str | None, *, replaying: bool) -> Credentials | None:
        """A lease from the account pool, kept for the flow; while server-replaying, whatever auth.json holds
        (or nothing): recorded answers need no login, and no refresh may happen offline."""
        if replaying:
            try:
                return self.auth.credentials()
            except GatewayError:
                return None
        lease = await self.pool.acquire(session_id)
        self._leases[flow_id] = lease
        return lease.credentials

    def record(self, flow_id: str, codex_fields: tuple[tuple[bytes, bytes], ...]) -> None:
        """The quota snapshot an upstream answer carried (its raw `x-codex-*` header fields), for account selection
        and status."""
        lease = self._leases.get(flow_id)
        if lease is not None:
            self.pool.record_fields(lease, codex_fields)

    def release(self, flow_id: str) -> None:
        self._leases.pop(flow_id, None)

    async def retry(
        self,
        flow_id: str,
        answer: tuple[int, Mapping[str, str], bytes],
        url: str,
        body: bytes | None,
        session: tuple[Sequence[tuple[str, str]], str | None],
    ) -> UpstreamAnswer | None:
        """After a 401 or a usage limit, the upstream answer the client should get instead (None: keep it).

        `session`: the flow's session headers and session id (the retry keeps them, and the account pool its
        session's account)."""
        lease = self._leases.get(flow_id)
        status, headers, content = answer
        session_headers, session_id = session
        if lease is None or not needs_recovery(status, content):
            return None

        async def send(lease: Lease) -> tuple[int, dict[str, str], bytes]:
            fresh = dict(upstream_headers(self.settings, lease.credentials, session_headers))
            del fresh["Host"]
            return await send_upstream(self.client(), url, fresh, body)

        first = UpstreamAnswer(status, dict(headers), content, lease)
        final = await recover(self.pool, first, send, session_id)
        return final if final.notes else None

    async def catalog_headers(self, *, replaying: bool) -> dict[str, str] | None:
        """Credentials for `GET {upstream}/models`, or None (no usable login, or offline replay)."""
        if replaying:
            return None
        try:
            lease = await self.pool.acquire()
        except GatewayError:
            return None  # the cached or built-in list still answers
        headers = dict(upstream_headers(self.settings, lease.credentials, []))
        del headers["Host"]
        return headers

    def client(self) -> httpx.AsyncClient:
        return self._http

    async def aclose(self) -> None:
        self.pool.flush()
        try:
            await self.pool.backend.aclose()
        except StoreUnavailable as exc:
            logger.error("codex-gateway: %s; the last quota snapshots and cooldowns were not saved", exc)
        await self._http.aclose()
