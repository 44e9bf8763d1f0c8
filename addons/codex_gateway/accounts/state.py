"""What several gateways share, and where it lives: the state backend interface and how to pick a backend.

A gateway's state is its accounts (tokens, labels, plan), their cooldowns and quota snapshots, the pinned and
excluded accounts, which account serves each conversation (prompt-cache affinity, with a time to live), the model
catalog cache, and the lock around a token refresh. Two backends hold it:
- files (the default): `$CODEX_HOME/auth.json`, `gateway_home/accounts/*.json`, `gateway_home/state.json`, … with
  file locks; one machine, any number of gateways on it (file_state.py);
- Redis (`gateway_state=redis://…`): every gateway on every machine shares one pool (redis_state.py).

Reads are synchronous and served from memory (a request never waits for the store); writes of shared state are
made at once by the file backend and queued by the Redis one, so the pool's code is the same for both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Protocol
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import httpx

from ..errors import GatewayError
from .login_store import LoginStore
from .quota import AccountState
from .selection import Selection

__all__ = [
    "AccountScan",
    "Affinity",
    "CatalogCache",
    "QuotaStore",
    "SelectionStore",
    "StateBackend",
    "StateConfig",
    "STATE_ENV",
    "SECRET_ENV",
    "PREFIX_ENV",
    "DEFAULT_PREFIX",
]

STATE_ENV = "CODEX_GATEWAY_STATE"
SECRET_ENV = "CODEX_GATEWAY_STATE_SECRET"
PREFIX_ENV = "CODEX_GATEWAY_STATE_PREFIX"
DEFAULT_PREFIX = "codex-gateway"
AFFINITY_TTL_S = 6 * 3600  # a conversation idle this long may move to another account (its prompt cache is cold)


@dataclass(frozen=True)
class StateConfig:
    """Where the state lives: `url` None = files; else a `redis://` or `rediss://` URL. Never shown whole: its
    password and the secret stay out of every repr and message (`address` is the shown form)."""

    url: str | None = None
    prefix: str = DEFAULT_PREFIX
    secret: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"StateConfig({self.address!r}, prefix={self.prefix!r}, encrypted={self.secret is not None})"

    @property
    def address(self) -> str:
        return "files" if self.url is None else redacted_url(self.url)

    @classmethod
    def parse(cls, url: str | None, prefix: str | None = None, secret: str | None = None) -> StateConfig:
        """Raises ValueError (naming no password) for an unusable value; empty strings mean "not set"."""
        url = (url or "").strip() or None
        if url is not None and url != "files":
            parts = urlsplit(url)
            if parts.scheme not in ("redis", "rediss") or not parts.hostname:
                raise ValueError(
                    f"gateway_state must be unset, `files`, or redis://[:password@]host:port/db (or rediss://), "
                    f"not {redacted_url(url)!r}"
                )
            path = parts.path.strip("/")
            if path and not path.isdigit():
                raise ValueError(f"gateway_state: the database in {redacted_url(url)!r} must be a number")
        prefix = (prefix or "").strip() or DEFAULT_PREFIX
        if any(c.isspace() for c in prefix):
            raise ValueError("gateway_state_prefix must not contain spaces")
        return cls(None if url == "files" else url, prefix, secret or None)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: str | None) -> StateConfig:
        """Options given (None = not given) first, then `CODEX_GATEWAY_STATE{,_PREFIX,_SECRET}`."""
        env = os.environ if environ is None else environ
        return cls.parse(
            given.get("url") or env.get(STATE_ENV),
            given.get("prefix") or env.get(PREFIX_ENV),
            given.get("secret") or env.get(SECRET_ENV),
        )


def redacted_url(url: str) -> str:
    """The URL without its user and password: safe in logs and errors."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable URL>"
    auth = "***@" if parts.username or parts.password else ""
    return urlunsplit((parts.scheme, f"{auth}{host}{port}", parts.path, "", ""))


class QuotaStore(Protocol):
    """Cooldowns and quota snapshots per account (`AccountState`s, changed in place, then `save`d)."""

    def get(self, key: str) -> AccountState: ...

    def reload_if_changed(self) -> None: ...

    def save(self, now: float) -> None: ...


class Affinity(Protocol):
    """Which account served a conversation (its session key), so its prompt cache stays warm."""

    @property
    def shared(self) -> bool:
        """True when other gateways see it (then a local miss is worth a `fetch`)."""
        ...

    def get(self, session_key: str) -> str | None: ...

    async def fetch(self, session_key: str) -> str | None: ...

    def set(self, session_key: str, account_key: str) -> None: ...


class SelectionStore(Protocol):
    """The pinned account and the accounts kept out of automatic choice (selection.py)."""

    @property
    def where(self) -> str: ...

    @property
    def problem(self) -> str | None:
        """Why the stored selection is not usable (then: no pin, nothing excluded)."""
        ...

    def current(self) -> Selection: ...

    def update(self, change: Callable[[Selection], Selection]) -> Selection:
        """Applies `change` to the stored selection (atomically against other writers). Raises OSError or
        ValueError when it cannot be stored."""
        ...


class CatalogCache(Protocol):
    """The model catalog's cache document (no secrets in it)."""

    @property
    def where(self) -> str: ...

    def read(self) -> dict[str, Any] | None: ...

    def write(self, doc: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class AccountScan:
    """The accounts as the store holds them now: each account's logins, best first. A backend returns the same
    object for as long as nothing changed, so the pool can keep what it built from it."""

    accounts: Mapping[str, list[LoginStore]] = field(default_factory=dict)
    hints: Mapping[LoginStore, Any] = field(default_factory=dict)  # what `store.fresh(hint)` may reuse


class StateBackend(Protocol):
    @property
    def kind(self) -> str:
        """ "files" or "redis"."""
        ...

    @property
    def address(self) -> str:
        """Where, safe to show."""
        ...

    @property
    def quota(self) -> QuotaStore: ...

    @property
    def affinity(self) -> Affinity: ...

    @property
    def catalog(self) -> CatalogCache: ...

    @property
    def selection(self) -> SelectionStore: ...

    def scan(self) -> AccountScan: ...

    def unavailable(self) -> GatewayError | None:
        """Why no request can be served from this store now (None: serve). Redis down is *not* such a reason:
        requests go on from memory."""
        ...

    def no_login_message(self) -> str: ...

    def source(self, store: LoginStore) -> str:
        """Where a login comes from, for `status`: "codex", "gateway" or "redis"."""
        ...

    def put_login(self, doc: dict[str, Any]) -> str:
        """Adds or replaces an account's login (Codex auth.json layout); returns where it went."""
        ...

    def remove_login(self, key: str) -> list[str]:
        """Removes the account's logins this backend may remove; returns where they were."""
        ...

    def use_http(self, http: httpx.AsyncClient) -> None:
        """Token refreshes from now on go through `http` (e.g. a proxied client)."""
        ...

    async def ready(self) -> None:
        """Waits until the state is loaded (files: at once). Raises StoreUnavailable."""
        ...

    async def flush(self) -> None:
        """Writes what is queued now. Raises StoreUnavailable when that fails."""
        ...

    async def aclose(self) -> None:
        """Writes what is still queued and lets go of connections."""
        ...
