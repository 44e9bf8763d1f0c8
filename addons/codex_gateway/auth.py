"""The Codex CLI's `auth.json`: where the gateway's ChatGPT credentials come from.

The file is re-read whenever it changes on disk, so a `codex login` (or a refresh by the Codex CLI) is picked up
without restarting the gateway. Tokens never leave this module except as request headers.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .errors import GatewayError

__all__ = ["Credentials", "CodexAuthFile", "default_codex_home", "jwt_claims"]

LOGIN_HINT = "Run `codex login` (or `scripts/accounts.py login`) and try again."


@dataclass(frozen=True)
class Credentials:
    access_token: str
    account_id: str
    label: str  # email or shortened account id: safe to show in summaries and logs

    def __repr__(self) -> str:  # keeps tokens out of tracebacks and debug logs
        return f"Credentials(label={self.label!r})"


def default_codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex").expanduser()


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


class CodexAuthFile:
    """Reads `$CODEX_HOME/auth.json`, caching the parse until the file changes."""

    def __init__(self, codex_home: Path) -> None:
        self.path = codex_home / "auth.json"
        self._stamp: tuple[int, int] | None = None
        self._creds: Credentials | None = None

    def credentials(self) -> Credentials:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            raise GatewayError(401, f"No ChatGPT login found at {self.path}. {LOGIN_HINT}", code="no_login") from None
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp or self._creds is None:
            self._creds = self._parse(self.path.read_bytes())
            self._stamp = stamp
        return self._creds

    def _parse(self, raw: bytes) -> Credentials:
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GatewayError(401, f"{self.path} is not valid JSON. {LOGIN_HINT}", code="no_login") from None
        tokens = data.get("tokens") if isinstance(data, dict) else None
        access = tokens.get("access_token") if isinstance(tokens, dict) else None
        if not isinstance(access, str) or not access:
            raise GatewayError(
                401,
                f"{self.path} holds no ChatGPT tokens (API-key logins are not supported). {LOGIN_HINT}",
                code="no_login",
            )
        assert isinstance(tokens, dict)
        id_claims = jwt_claims(tokens.get("id_token") or "")
        auth_claims = id_claims.get("https://api.openai.com/auth") or {}
        account = tokens.get("account_id") or auth_claims.get("chatgpt_account_id") or ""
        if not isinstance(account, str) or not account:
            access_auth = jwt_claims(access).get("https://api.openai.com/auth") or {}
            account = access_auth.get("chatgpt_account_id") or ""
        email = id_claims.get("email")
        label = email if isinstance(email, str) and email else short_id(str(account))
        return Credentials(access_token=access, account_id=str(account), label=label)
