"""The refresh lock shared by every gateway on every machine: a Redis key holding its owner's random token, with
an expiry, released only by its owner (compare-and-delete in one Lua script, so a holder whose lock expired and
was taken by someone else never deletes theirs).

While held, the lock's expiry is renewed (by the owner only), so a slow token endpoint does not let a second
refresh in; a holder that dies stops renewing, and the lock expires after `ttl` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.exceptions import RedisError

from .login_store import StoreUnavailable

__all__ = ["redis_lock", "RELEASE", "RENEW"]

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
LOCK_TTL_S = 15.0  # a dead holder keeps the others waiting at most this long
LOCK_WAIT_S = 45.0  # longer than one token call (30 s) plus a lock expiry


@contextlib.asynccontextmanager
async def redis_lock(
    client: Any,
    key: str,
    *,
    ttl: float = LOCK_TTL_S,
    wait: float = LOCK_WAIT_S,
    on_error: Any = None,
    on_unreleased: Any = None,
) -> AsyncIterator[str]:
    """Holds `key` while the block runs; yields the owner token. Raises TimeoutError when others hold it longer
    than `wait`, StoreUnavailable when Redis cannot be reached (after calling `on_error(exc)`).
    `on_unreleased(owner)` is called when Redis went away before the release (else the lock just expires)."""
    owner = secrets.token_hex(16)
    ttl_ms = int(ttl * 1000)
    try:
        await _acquire(client, key, owner, ttl_ms, wait)
    except RedisError as exc:
        if on_error is not None:
            on_error(exc)
        raise StoreUnavailable(f"the shared state store is unreachable ({type(exc).__name__})") from None
    renewer = asyncio.get_running_loop().create_task(_renew(client, key, owner, ttl_ms))
    try:
        yield owner
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        try:
            await client.eval(RELEASE, 1, key, owner)
        except RedisError:
            if on_unreleased is not None:
                on_unreleased(owner)


async def _acquire(client: Any, key: str, owner: str, ttl_ms: int, wait: float) -> None:
    deadline = time.monotonic() + wait
    delay = 0.01
    while not await client.set(key, owner, nx=True, px=ttl_ms):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{key} stayed locked for {wait:.0f} s")
        await asyncio.sleep(delay)  # a holder's refresh takes about a second: poll, backing off to 0.2 s
        delay = min(delay * 2, 0.2)


async def _renew(client: Any, key: str, owner: str, ttl_ms: int) -> None:
    while True:
        await asyncio.sleep(ttl_ms / 3000)
        with contextlib.suppress(RedisError):
            await client.eval(RENEW, 1, key, owner, ttl_ms)
