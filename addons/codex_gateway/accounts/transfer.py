"""Moving logins between machines and tools: the export bundle, and every format `import` reads (pure: no I/O).

The bundle is AI-Zero-Token's own export format, so either tool reads what the other wrote:
`{"type": "codex_profiles", "exported_at", "profiles": [{"type": "codex", "access_token", "refresh_token",
"id_token", "account_id", "email", "expired", "exported_at"}, …]}` (plus `last_refresh`, which AI-Zero-Token
ignores). `import` reads that bundle, AI-Zero-Token's single-login export (`{"type": "codex", …}`), a list of such
logins (its batch form, also with its store's `access`/`refresh`/`idToken`/`accountId` spellings) and a Codex CLI
`auth.json`. Whatever it reads becomes a login in the Codex CLI's `auth.json` layout, the layout of every account
file. A file that is wrong anywhere is refused whole, with the reason and where; nothing is half-imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .auth_file import AuthRecord
from .auth_file import format_iso
from .auth_file import jwt_claims
from .auth_file import parse_auth_doc
from .auth_file import parse_iso

__all__ = ["TransferError", "Imported", "export_bundle", "parse_import", "auth_doc"]

BUNDLE_TYPE = "codex_profiles"
PROFILE_TYPE = "codex"
AUTH_CLAIMS = "https://api.openai.com/auth"
_ALIASES = {  # AI-Zero-Token's importer accepts its store's spellings too
    "access_token": ("access_token", "access"),
    "refresh_token": ("refresh_token", "refresh"),
    "id_token": ("id_token", "idToken"),
    "account_id": ("account_id", "accountId"),
}


class TransferError(ValueError):
    """A file `import` refuses; the message says why and where, never a token."""


@dataclass(frozen=True)
class Imported:
    record: AuthRecord  # parsed from `record.doc`, the login in the Codex auth.json layout
    where: str  # "profiles[2]", "the auth.json", …: for messages


def auth_doc(
    id_token: str, access_token: str, refresh_token: str, account_id: str, last_refresh: float | None
) -> dict[str, Any]:
    """A login in the Codex CLI's `auth.json` layout."""
    doc: dict[str, Any] = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": id_token,
            "access_token": access_token,
            "refresh_token": refresh_token,
            "account_id": account_id,
        },
    }
    if last_refresh is not None:
        doc["last_refresh"] = format_iso(last_refresh)
    return doc


def export_bundle(records: list[AuthRecord], now: float) -> dict[str, Any]:
    """The bundle for `export` (holds live credentials: written 0600, and the user is warned)."""
    stamp = format_iso(now)
    profiles = []
    for record in records:
        profile: dict[str, Any] = {
            "type": PROFILE_TYPE,
            "access_token": record.access_token,
            "refresh_token": record.refresh_token,
            "id_token": record.id_token,
            "account_id": record.account_id,
            "email": record.email,
            "expired": format_iso(record.expires_at) if record.expires_at is not None else None,
            "exported_at": stamp,
        }
        if record.last_refresh is not None:
            profile["last_refresh"] = format_iso(record.last_refresh)
        profiles.append(profile)
    return {"type": BUNDLE_TYPE, "exported_at": stamp, "exported_by": "codex-gateway", "profiles": profiles}


def parse_import(data: Any) -> list[Imported]:
    """Every login in an import file, deduplicated by account id (the one whose token expires last wins).

    Raises TransferError naming the first problem; then nothing of the file may be used."""
    entries = _entries(data)
    if not entries:
        raise TransferError("holds no logins")
    chosen: dict[str, Imported] = {}
    for where, entry in entries:
        imported = _login(entry, where)
        key = imported.record.account_id
        if key not in chosen or (imported.record.expires_at or 0) > (chosen[key].record.expires_at or 0):
            chosen[key] = imported
    return list(chosen.values())


def _entries(data: Any) -> list[tuple[str, Any]]:
    if isinstance(data, list):
        return [(f"entry {i + 1}", entry) for i, entry in enumerate(data)]
    if not isinstance(data, dict):
        raise TransferError("is not a login export: expected a JSON object or list")
    if "tokens" in data or "OPENAI_API_KEY" in data:
        return [("the auth.json", data)]
    profiles = data.get("profiles")
    if data.get("type") == BUNDLE_TYPE or profiles is not None:
        if not isinstance(profiles, list):
            raise TransferError("'profiles' is not a list")
        return [(f"profiles[{i}]", entry) for i, entry in enumerate(profiles)]
    if data.get("type") == PROFILE_TYPE or any(k in data for k in _ALIASES["access_token"]):
        return [("the login", data)]
    kind = data.get("type")
    what = f"of type {kind!r}" if isinstance(kind, str) else "without tokens"
    raise TransferError(
        f"is not a login export ({what}): expected a codex-gateway or AI-Zero-Token export or auth.json"
    )


def _login(entry: Any, where: str) -> Imported:
    if isinstance(entry, dict) and ("tokens" in entry or "OPENAI_API_KEY" in entry):
        try:
            record = parse_auth_doc(entry)
        except ValueError as exc:
            raise TransferError(f"{where} {exc}") from None
        if not record.refresh_token:
            raise TransferError(f"{where} has no refresh_token")
        if not record.account_id:
            raise TransferError(f"{where} names no ChatGPT account (no account_id, none in its tokens)")
        # Rebuilt, not copied: an API key beside the tokens has no business in the gateway's files.
        doc = auth_doc(
            record.id_token, record.access_token, record.refresh_token, record.account_id, record.last_refresh
        )
        return Imported(parse_auth_doc(doc), where)
    if not isinstance(entry, dict):
        raise TransferError(f"{where} is not a JSON object")
    if entry.get("type") not in (None, PROFILE_TYPE):
        raise TransferError(f"{where} is of type {entry.get('type')!r}, not a Codex login")
    access = _field(entry, "access_token", where, required=True)
    refresh = _field(entry, "refresh_token", where, required=True)
    id_token = _field(entry, "id_token", where, required=False)
    given = _field(entry, "account_id", where, required=False)
    claimed = _claimed_account(access) or _claimed_account(id_token)
    if given and claimed and given != claimed:
        raise TransferError(f"{where}: its account_id does not match the account its access token is for")
    account_id = given or claimed
    if not account_id:
        raise TransferError(f"{where} names no ChatGPT account (no account_id, none in its tokens)")
    last = parse_iso(entry.get("last_refresh"))
    if last is None:
        issued = jwt_claims(access).get("iat")
        last = float(issued) if isinstance(issued, int | float) and not isinstance(issued, bool) else None
    return Imported(parse_auth_doc(auth_doc(id_token, access, refresh, account_id, last)), where)


def _field(entry: dict[str, Any], name: str, where: str, *, required: bool) -> str:
    for key in _ALIASES[name]:
        value = entry.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise TransferError(f"{where}: '{key}' is not a string")
        return value
    if required:
        raise TransferError(f"{where} has no {name}")
    return ""


def _claimed_account(token: str) -> str | None:
    auth = jwt_claims(token).get(AUTH_CLAIMS) if token else None
    account = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
    return account if isinstance(account, str) and account else None
