"""Recovering from an upstream 401 or usage limit before any byte reached the client.

mitmproxy cannot send a flow twice, so a retry is a side request (`send`, httpx in the addon) whose buffered
answer replaces the flow's upstream answer; the client then gets it translated in one piece.
- 401 `token_expired` / `token_invalidated`: refresh once (single flight, see token_store.py), retry once.
- 429 `usage_limit_reached` (or a quota header at 100 %): cool that account down until its reset and retry on
  another account, as long as there is one.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

import httpx
import orjson

from ..errors import GatewayError
from .pool import AccountPool
from .pool import Lease
from .quota import resets_at_from_error

__all__ = ["UpstreamAnswer", "recover", "needs_recovery", "send_upstream"]

MAX_ACCOUNT_SWITCHES = 8


@dataclass
class UpstreamAnswer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    lease: Lease
    notes: list[str] = field(default_factory=list)


Send = Callable[[Lease], Awaitable[tuple[int, Mapping[str, str], bytes]]]


def _error_code(body: bytes) -> str | None:
    try:
        err = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(err, dict):
        return None
    code = err.get("code") or err.get("type")
    return code if isinstance(code, str) else None


def needs_recovery(status: int, body: bytes) -> bool:
    return status == 401 or (status == 429 and _error_code(body) == "usage_limit_reached")


async def recover(
    pool: AccountPool,
    first: UpstreamAnswer,
    send: Send,
    session_key: str | None,
    clock: Callable[[], float] = time.time,
) -> UpstreamAnswer:
    """Retries as the rules above allow; returns the last upstream answer. Raises the pool's `GatewayError`s
    (login required, every account cooling down) when they are what the client should hear."""
    answer = first
    refreshed = False
    tried = {answer.lease.key}
    for _ in range(MAX_ACCOUNT_SWITCHES):
        if answer.status == 401 and not refreshed:
            refreshed = True
            lease = await pool.after_unauthorized(answer.lease)
            code = _error_code(answer.body)
            answer.notes.append(f"401{' ' + code if code else ''}: token refreshed, retried")
        elif answer.status == 429 and _error_code(answer.body) == "usage_limit_reached":
            pool.cool_down(answer.lease, resets_at_from_error(answer.body, clock()))
            await pool.shared()  # other gateways skip the account from now on, not a moment after the client
            try:
                lease = await pool.acquire(session_key, exclude=frozenset(tried))
            except GatewayError as e:
                if e.code == "no_available_accounts":
                    break  # a single account: the client hears the backend's own usage-limit answer
                raise
            tried.add(lease.key)
            answer.notes.append(
                f"usage limit on {answer.lease.credentials.label}: retried on {lease.credentials.label}"
            )
        else:
            break
        status, headers, body = await send(lease)
        pool.record_headers(lease, headers)
        answer = UpstreamAnswer(status, headers, body, lease, answer.notes)
    return answer


_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "content-encoding", "connection"})


async def send_upstream(
    client: httpx.AsyncClient, url: str, headers: Mapping[str, str], body: bytes | None
) -> tuple[int, dict[str, str], bytes]:
    """One buffered side request (never blocks the event loop); network failures become a 502 envelope."""
    try:
        r = await client.post(url, content=body, headers=dict(headers))
    except httpx.HTTPError as e:
        raise GatewayError(
            502, f"Retrying the request upstream failed: {type(e).__name__}.", code="retry_failed"
        ) from e
    return r.status_code, {k: v for k, v in r.headers.items() if k.lower() not in _HOP_HEADERS}, r.content
