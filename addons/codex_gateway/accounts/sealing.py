"""Tokens encrypted at rest in the shared store: Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from the
`gateway_state_secret` passphrase, so Redis, its dumps and its replicas never hold a token in clear.

Without a secret, values are stored as they are (JSON). A store remembers whether it is sealed and a check value
made with its key, so a gateway with a missing or different secret is refused at start-up with a clear message
instead of failing on every refresh.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken

__all__ = ["Sealer", "SealError"]

_SALT = b"codex-gateway state v1"
_ROUNDS = 200_000  # PBKDF2 rounds: once per process start, so a guessable passphrase costs an attacker more
_CHECK = b"codex-gateway sealed store"


class SealError(ValueError):
    """A value that cannot be opened with this gateway's secret (or lack of one); names no secret."""


class Sealer:
    def __init__(self, secret: str | None) -> None:
        self.sealed = bool(secret)
        self._fernet: Fernet | None = None
        if secret:
            key = hashlib.pbkdf2_hmac("sha256", secret.encode(), _SALT, _ROUNDS)
            self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def __repr__(self) -> str:
        return f"Sealer(sealed={self.sealed})"

    def seal(self, data: bytes) -> bytes:
        return data if self._fernet is None else self._fernet.encrypt(data)

    def open(self, data: bytes) -> bytes:
        if not data.startswith(b"gAAAA"):  # a Fernet token's version byte and timestamp, base64: not JSON
            return data
        if self._fernet is None:
            raise SealError("is encrypted, and gateway_state_secret is not set")
        try:
            return self._fernet.decrypt(data)
        except InvalidToken:
            raise SealError("is encrypted with another gateway_state_secret") from None

    def check_value(self) -> bytes:
        """What a store sealed with this key keeps, to recognise the key later (empty when not sealing)."""
        return self.seal(_CHECK) if self._fernet is not None else b""

    def problem_with(self, sealed: bool, check: bytes) -> str | None:
        """Why this gateway cannot use a store set up as `sealed` with `check` (None: it can)."""
        if sealed and self._fernet is None:
            return "its tokens are encrypted: set gateway_state_secret (or CODEX_GATEWAY_STATE_SECRET)"
        if not sealed and self._fernet is not None:
            return (
                "it was set up without gateway_state_secret: unset it, or move the accounts into a new store "
                "with `accounts migrate`"
            )
        if sealed:
            try:
                if self.open(check) != _CHECK:
                    raise SealError("does not match")
            except SealError:
                return "gateway_state_secret is not the secret its tokens are encrypted with"
        return None
