"""The Codex CLI's `auth.json` layout: where the gateway's ChatGPT credentials come from.

Every account file the gateway reads or writes (`$CODEX_HOME/auth.json` and `gateway_home/accounts/<id>.json`)
has exactly the Codex CLI's layout, so either program can use a file the other refreshed. Tokens never leave this
package except as request headers: every object holding one has a `repr` without it.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from ..errors import LOGIN_HINT
from ..errors import GatewayError

__all__ = [
    "AuthRecord",
    "Credentials",
    "CodexAuthFile",
    "default_codex_home",
    "default_gateway_home",
    "format_iso",
    "jwt_claims",
    "parse_auth_doc",
    "parse_iso",
    "short_id",
]

AUTH_CLAIMS = "https://api.openai.com/auth"


@dataclass(frozen=True)
class Credentials:
    access_token: str
    account_id: str
    label: str  # email or shortened account id: safe to show in summaries and logs

    def __repr__(self) -> str:  # keeps tokens out of tracebacks and debug logs
        return f"Credentials(label={self.label!r})"


def default_codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex").expanduser()


def default_gateway_home() -> Path:
    """The gateway's own state (accounts, quota snapshots, cooldowns): `$CODEX_GATEWAY_HOME` or `~/.codex-gateway`."""
    return Path(os.environ.get("CODEX_GATEWAY_HOME") or Path.home() / ".codex-gateway").expanduser()


def jwt_claims(token: str) -> dict[str, Any]:
    """The unverified payload of a JWT (the backend verifies it; we only read expiry and account claims)."""
    try:
        payload = token.split(".")[1]
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, orjson.JSONDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def short_id(account_id: str) -> str:
    return account_id[:8] + "…" if len(account_id) > 10 else account_id


def parse_iso(value: Any) -> float | None:
    """`last_refresh` as unix seconds; Codex writes RFC 3339 with a `Z` and up to nanoseconds."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if "." in text:
        # Python keeps at most microseconds: trim chrono's nanoseconds before parsing.
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}" if digits else head + tail
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_iso(ts: float) -> str:
    """The `last_refresh` format the Codex CLI writes (UTC, fractional seconds, `Z`)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class AuthRecord:
    """One parsed account file. `doc` is the whole file so unknown keys survive a rewrite."""

    doc: dict[str, Any]
    access_token: str
    refresh_token: str
    id_token: str
    account_id: str
    email: str | None
    plan: str | None
    expires_at: float | None  # the access token's `exp`
    last_refresh: float | None

    def __repr__(self) -> str:
        return f"AuthRecord(label={self.label!r}, expires_at={self.expires_at!r})"

    @property
    def label(self) -> str:
        return self.email or short_id(self.account_id) or "unknown account"

    def credentials(self) -> Credentials:
        return self._credentials

    @cached_property
    def _credentials(self) -> Credentials:
        # Built once per parsed file rather than on every request (a record is immutable, and so is this).
        return Credentials(access_token=self.access_token, account_id=self.account_id, label=self.label)


def parse_auth_doc(data: Any) -> AuthRecord:
    """Reads the Codex `auth.json` layout; raises ValueError with a message that never contains a token."""
    if not isinstance(data, dict):
        raise ValueError("is not a JSON object")
    tokens = data.get("tokens")
    tokens = tokens if isinstance(tokens, dict) else {}
    access = tokens.get("access_token")
    if not isinstance(access, str) or not access:
        if data.get("OPENAI_API_KEY"):
            raise ValueError("holds an API-key login, which the Codex backend does not accept")
        raise ValueError("holds no ChatGPT tokens")
    refresh = tokens.get("refresh_token")
    id_token = tokens.get("id_token")
    id_token = id_token if isinstance(id_token, str) else ""
    id_claims = jwt_claims(id_token)
    access_claims = jwt_claims(access)
    id_auth = id_claims.get(AUTH_CLAIMS)
    id_auth = id_auth if isinstance(id_auth, dict) else {}
    access_auth = access_claims.get(AUTH_CLAIMS)
    access_auth = access_auth if isinstance(access_auth, dict) else {}
    account = tokens.get("account_id") or id_auth.get("chatgpt_account_id") or access_auth.get("chatgpt_account_id")
    email = id_claims.get("email")
    if not isinstance(email, str) or not email:
        profile = id_claims.get("https://api.openai.com/profile")
        email = profile.get("email") if isinstance(profile, dict) else None
    plan = id_auth.get("chatgpt_plan_type") or access_auth.get("chatgpt_plan_type")
    exp = access_claims.get("exp")
    return AuthRecord(
        doc=data,
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) else "",
        id_token=id_token,
        account_id=account if isinstance(account, str) else "",
        email=email if isinstance(email, str) and email else None,
        plan=plan if isinstance(plan, str) and plan else None,
        expires_at=float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None,
        last_refresh=parse_iso(data.get("last_refresh")),
    )


class CodexAuthFile:
    """Reads `$CODEX_HOME/auth.json`, caching the parse until the file changes (no refresh: see AccountPool)."""

    def __init__(self, codex_home: Path) -> None:
        self.path = codex_home / "auth.json"
        self._stamp: tuple[int, int, int] | None = None
        self._creds: Credentials | None = None

    def credentials(self) -> Credentials:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise GatewayError(401, f"No ChatGPT login found at {self.path}. {LOGIN_HINT}", code="no_login") from None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self._stamp or self._creds is None:
            self._creds = self._parse(self.path.read_bytes())
            self._stamp = stamp
        return self._creds

    def _parse(self, raw: bytes) -> Credentials:
        try:
            return parse_auth_doc(orjson.loads(raw)).credentials()
        except orjson.JSONDecodeError:
            raise GatewayError(401, f"{self.path} is not valid JSON. {LOGIN_HINT}", code="no_login") from None
        except ValueError as exc:
            raise GatewayError(401, f"{self.path} {exc}. {LOGIN_HINT}", code="no_login") from None
