"""Which state backend a gateway or a command uses (`gateway_state`, else `CODEX_GATEWAY_STATE`; see state.py).

The Redis backend is imported only when it is configured: the `redis` package costs a single-machine gateway
about 9 MiB and 0.1 s at start-up for nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .file_state import FileState
from .state import StateBackend
from .state import StateConfig

__all__ = ["open_backend", "check_backend"]


def open_backend(
    config: StateConfig,
    codex_home: Path,
    gateway_home: Path,
    issuer: str,
    *,
    clock: Callable[[], float] = time.time,
    http: httpx.AsyncClient | None = None,
    command: bool = False,
) -> StateBackend:
    """`command`: for a command line (it may set up an empty shared store, and does not follow changes)."""
    if config.url is None:
        return FileState(codex_home, gateway_home, issuer, clock=clock, http=http)
    from .redis_state import RedisState

    return RedisState(config, issuer, clock=clock, http=http, listen=not command, may_initialize=command)


def check_backend(config: StateConfig) -> str | None:
    """At start-up: raises StoreUnavailable when the configured store cannot be used; returns a warning to log."""
    if config.url is None:
        return None
    from .redis_state import probe

    return probe(config)
