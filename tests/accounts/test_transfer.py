"""transfer: the export bundle and every import format (AI-Zero-Token's exports, a Codex auth.json), refusals whole."""

from __future__ import annotations

from typing import Any

import pytest
from codex_gateway.accounts.auth_file import parse_auth_doc
from codex_gateway.accounts.transfer import TransferError
from codex_gateway.accounts.transfer import export_bundle
from codex_gateway.accounts.transfer import parse_import

from scripts.fakes.fake_issuer import unsigned_jwt

AUTH = "https://api.openai.com/auth"
NOW = 1_800_000_000


def tokens(account: str = "acct-1", email: str = "a@example.com", exp: int = NOW + 3600) -> dict[str, str]:
    claims = {AUTH: {"chatgpt_account_id": account, "chatgpt_plan_type": "plus"}}
    return {
        "access_token": unsigned_jwt({**claims, "exp": exp, "iat": exp - 864000}),
        "refresh_token": f"rt_{account}_{exp}",
        "id_token": unsigned_jwt({**claims, "email": email}),
    }


def azt_single(**kw: Any) -> dict[str, Any]:
    """AI-Zero-Token's single export (`profile-transfer.ts`)."""
    t = tokens(**kw)
    return {
        "type": "codex",
        **t,
        "expired": "2027-01-15T08:00:00.000Z",
        "email": kw.get("email", "a@example.com"),
        "account_id": kw.get("account", "acct-1"),
        "profile_id": f"openai-codex:{kw.get('account', 'acct-1')}",
        "exported_at": "2026-05-11T00:00:00.000Z",
    }


def auth_json(**kw: Any) -> dict[str, Any]:
    t = tokens(**kw)
    return {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {**t, "account_id": kw.get("account", "acct-1")},
        "last_refresh": "2026-05-01T10:00:00.123456789Z",
    }


def store_profile(**kw: Any) -> dict[str, Any]:
    """A profile of AI-Zero-Token's store.json: its own spellings (access/refresh/idToken/accountId)."""
    t = tokens(**kw)
    return {
        "provider": "openai-codex",
        "access": t["access_token"],
        "refresh": t["refresh_token"],
        "idToken": t["id_token"],
        "accountId": kw.get("account", "acct-1"),
        "expires": 1_800_003_600_000,
    }


@pytest.mark.parametrize(
    ("data", "accounts"),
    [
        (azt_single(), ["acct-1"]),
        (
            {"type": "codex_profiles", "exported_at": "x", "profiles": [azt_single(), azt_single(account="acct-2")]},
            None,
        ),
        ([azt_single(), azt_single(account="acct-2")], None),
        ({"profiles": [store_profile(), store_profile(account="acct-2")]}, None),
        (auth_json(), ["acct-1"]),
        ({**azt_single(), "account_id": None}, ["acct-1"]),  # the id comes from the token's claims
    ],
    ids=["azt-single", "bundle", "azt-list", "azt-store-spellings", "codex-auth-json", "id-from-claims"],
)
def test_every_format_becomes_logins_in_the_codex_layout(data: Any, accounts: list[str] | None) -> None:
    imported = parse_import(data)
    assert [i.record.account_id for i in imported] == (accounts or ["acct-1", "acct-2"])
    for item in imported:
        doc = item.record.doc
        assert set(doc) >= {"auth_mode", "OPENAI_API_KEY", "tokens"} and doc["OPENAI_API_KEY"] is None
        assert set(doc["tokens"]) == {"id_token", "access_token", "refresh_token", "account_id"}
        assert parse_auth_doc(doc) == item.record


def test_the_same_account_twice_keeps_the_login_that_expires_last() -> None:
    old, new = azt_single(exp=NOW + 60), azt_single(exp=NOW + 7200)
    (only,) = parse_import([new, old])
    assert only.record.access_token == new["access_token"]


def test_export_then_import_round_trips() -> None:
    records = [parse_auth_doc(auth_json()), parse_auth_doc(auth_json(account="acct-2", email="b@example.com"))]
    bundle = export_bundle(records, NOW)
    assert bundle["type"] == "codex_profiles" and len(bundle["profiles"]) == 2
    assert bundle["profiles"][0]["type"] == "codex" and bundle["profiles"][0]["email"] == "a@example.com"
    back = parse_import(bundle)
    assert [(i.record.account_id, i.record.access_token, i.record.refresh_token) for i in back] == [
        (r.account_id, r.access_token, r.refresh_token) for r in records
    ]
    assert [i.record.last_refresh for i in back] == [r.last_refresh for r in records]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("a string", "is not a login export"),
        ({"type": "claude", "key": "x"}, "is not a login export (of type 'claude')"),
        ({"hello": "world"}, "is not a login export (without tokens)"),
        ({"type": "codex_profiles", "profiles": {}}, "'profiles' is not a list"),
        ({"type": "codex_profiles", "profiles": []}, "holds no logins"),
        ([], "holds no logins"),
        ([azt_single(), "oops"], "entry 2 is not a JSON object"),
        ({"profiles": [azt_single(), {**azt_single(), "refresh_token": None}]}, "profiles[1] has no refresh_token"),
        ({"profiles": [{**azt_single(), "access_token": 7}]}, "profiles[0]: 'access_token' is not a string"),
        ({**azt_single(), "type": "gemini"}, "is of type 'gemini'"),
        ({**azt_single(), "account_id": "acct-other"}, "its account_id does not match"),
        ({"type": "codex", "access_token": "opaque", "refresh_token": "rt"}, "names no ChatGPT account"),
        ({"auth_mode": "apikey", "OPENAI_API_KEY": "sk-x", "tokens": None}, "holds an API-key login"),
        (
            {**auth_json(), "tokens": {**auth_json()["tokens"], "refresh_token": ""}},
            "the auth.json has no refresh_token",
        ),
    ],
)
def test_a_bad_file_is_refused_whole_with_the_reason(data: Any, reason: str) -> None:
    with pytest.raises(TransferError) as raised:
        parse_import(data)
    assert reason in str(raised.value)
    secrets = [v for v in tokens().values()]
    assert not [s for s in secrets if s in str(raised.value)]
