"""manage: what `accounts use/exclude/export/import/apply-codex` do to the files, and that a refusal changes none."""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

import orjson
import pytest
from codex_gateway.accounts import manage
from codex_gateway.accounts.manage import AccountError
from codex_gateway.accounts.pool import AccountPool
from codex_gateway.accounts.selection import Selection
from codex_gateway.accounts.token_store import atomic_write_json

from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens
from tests.accounts.test_pool import HOUR
from tests.accounts.test_pool import Clock
from tests.accounts.test_pool import codex_login
from tests.accounts.test_pool import gateway_login


@pytest.fixture
def two(homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock) -> tuple[IssuedTokens, IssuedTokens]:
    return codex_login(homes, issuer, clock, "a@example.com"), gateway_login(homes, issuer, clock, "b@example.com")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content: to show a refused command changed nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- finding -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["email", "id", "short id", "prefix", "upper-case email"])
def test_an_account_is_found_by_id_or_email(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], how: str
) -> None:
    b = two[1]
    target = {
        "email": "b@example.com",
        "id": b.account_id,
        "short id": b.account_id[:8] + "…",
        "prefix": b.account_id[:9],
        "upper-case email": "B@Example.com",
    }[how]
    assert manage.find_account(pool, target)["account_id"] == b.account_id


@pytest.mark.parametrize(
    ("target", "complaint"),
    [("", "name an account"), ("nobody@example.com", "no account matches 'nobody@example.com'")],
)
def test_an_unknown_account_is_a_one_line_error(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], target: str, complaint: str
) -> None:
    with pytest.raises(AccountError) as raised:
        manage.find_account(pool, target)
    assert complaint in str(raised.value) and "\n" not in str(raised.value)


def test_an_email_of_two_workspaces_is_ambiguous(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "me@example.com")  # a personal and a team workspace: one email, two ids
    gateway_login(homes, issuer, clock, "me@example.com")
    with pytest.raises(AccountError, match="'me@example.com' matches 2 accounts; use the account id"):
        manage.find_account(pool, "me@example.com")


# -- pin and exclusions ----------------------------------------------------------------------------------------


def test_use_auto_exclude_include(pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens]) -> None:
    a, b = two
    assert "pinned a@example.com" in manage.use(pool, "a@example.com")
    assert pool.selection.current() == Selection(a.account_id)
    assert "excluded b@example.com" in manage.exclude(pool, "b@example.com")
    assert "was not excluded" in manage.include(pool, "a@example.com")
    assert "included b@example.com" in manage.include(pool, b.account_id)
    assert "unpinned" in manage.auto(pool)
    assert "no account was pinned" in manage.auto(pool)
    assert pool.selection.current() == Selection()


def test_excluding_the_pinned_account_says_it_stays_pinned(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens]
) -> None:
    manage.use(pool, "a@example.com")
    assert "stays pinned" in manage.exclude(pool, "a@example.com")


@pytest.mark.parametrize("command", ["use", "exclude", "include"])
def test_a_bad_target_changes_nothing(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], homes: tuple[Path, Path], command: str
) -> None:
    manage.exclude(pool, "b@example.com")
    before = snapshot(homes[1])
    with pytest.raises(AccountError):
        getattr(manage, command)(pool, "nobody")
    assert snapshot(homes[1]) == before


# -- export ----------------------------------------------------------------------------------------------------


def test_export_named_accounts_or_all(pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens]) -> None:
    a, b = two
    one = manage.export_accounts(pool, ["b@example.com", b.account_id], everything=False)
    assert [p["account_id"] for p in one["profiles"]] == [b.account_id]
    assert one["profiles"][0]["refresh_token"] == b.refresh_token
    every = manage.export_accounts(pool, [], everything=True)
    assert {p["account_id"] for p in every["profiles"]} == {a.account_id, b.account_id}


@pytest.mark.parametrize(
    ("targets", "everything", "complaint"),
    [
        ([], False, "name the accounts to export"),
        (["a@example.com"], True, "not both"),
        (["nobody"], False, "no account"),
    ],
)
def test_export_refusals(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], targets: list[str], everything: bool, complaint: str
) -> None:
    with pytest.raises(AccountError, match=complaint):
        manage.export_accounts(pool, targets, everything=everything)


def test_the_export_file_is_0600(pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    manage.write_export(path, manage.export_accounts(pool, [], everything=True))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(orjson.loads(path.read_bytes())["profiles"]) == 2


@pytest.mark.parametrize(("where", "complaint"), [("missing/bundle.json", "does not exist"), (".", "is a directory")])
def test_the_export_file_must_have_somewhere_to_go(tmp_path: Path, where: str, complaint: str) -> None:
    with pytest.raises(AccountError, match=complaint):
        manage.write_export(tmp_path / where, {"profiles": []})
    assert not (tmp_path / "missing").exists()


# -- import ----------------------------------------------------------------------------------------------------


def write(path: Path, data: object) -> Path:
    path.write_bytes(orjson.dumps(data))
    return path


def test_import_adds_new_accounts_and_updates_known_ones_in_place(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock, tmp_path: Path
) -> None:
    b = gateway_login(homes, issuer, clock, "b@example.com")
    exported = manage.export_accounts(pool, [], everything=True)
    clock.now += HOUR  # a later login of b (expires later), and a new account c
    newer_b = issuer.issue(next(acc for acc in issuer.accounts if acc.account_id == b.account_id))
    c = issuer.issue(issuer.add_account("c@example.com"))
    lines = manage.import_file(pool, write(tmp_path / "in.json", [newer_b.auth_json(), c.auth_json()]))
    assert any("b@example.com" in line and "updated" in line for line in lines)
    assert any("c@example.com" in line and "added" in line for line in lines)
    files = sorted((homes[1] / "accounts").glob("*.json"))
    assert len(files) == 2  # b updated, not doubled
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert pool.account_record(b.account_id).access_token == newer_b.access_token  # type: ignore[union-attr]
    again = manage.import_file(pool, write(tmp_path / "old.json", exported))  # the older export of b
    assert again == [f"b@example.com ({b.account_id[:8]}…): kept the newer login already there"]
    assert pool.account_record(b.account_id).access_token == newer_b.access_token  # type: ignore[union-attr]


def test_importing_what_is_there_is_unchanged(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], tmp_path: Path
) -> None:
    bundle = write(tmp_path / "b.json", manage.export_accounts(pool, [], everything=True))
    assert all(line.endswith("unchanged (already there)") for line in manage.import_file(pool, bundle))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"{oops", "is not valid JSON"),
        (b'{"type": "codex_profiles", "profiles": [1]}', "profiles[0] is not a JSON object"),
    ],
)
def test_a_malformed_file_imports_nothing(
    pool: AccountPool, homes: tuple[Path, Path], tmp_path: Path, content: bytes, complaint: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(AccountError) as raised:
        manage.import_file(pool, path)
    assert complaint in str(raised.value) and "nothing imported" in str(raised.value)
    assert not homes[1].exists()


def test_a_file_with_one_bad_login_imports_none_of_the_good_ones(
    pool: AccountPool, issuer: FakeIssuer, homes: tuple[Path, Path], tmp_path: Path
) -> None:
    good = issuer.issue(issuer.add_account("good@example.com")).auth_json()
    bad = {**good, "tokens": {**good["tokens"], "refresh_token": None}}
    with pytest.raises(AccountError, match=r"entry 2 .*nothing imported"):
        manage.import_file(pool, write(tmp_path / "mixed.json", [good, bad]))
    assert not homes[1].exists()


def test_an_unreadable_import_file_is_a_one_line_error(pool: AccountPool, tmp_path: Path) -> None:
    with pytest.raises(AccountError, match="cannot read"):
        manage.import_file(pool, tmp_path / "missing.json")


# -- apply-codex -----------------------------------------------------------------------------------------------


def test_apply_codex_writes_the_codex_layout_and_keeps_a_backup(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], homes: tuple[Path, Path]
) -> None:
    a, b = two
    before = (homes[0] / "auth.json").read_bytes()
    message = manage.apply_codex(pool, "b@example.com", now=1_800_000_000)
    written = orjson.loads((homes[0] / "auth.json").read_bytes())
    assert written["auth_mode"] == "chatgpt" and written["OPENAI_API_KEY"] is None
    assert written["tokens"] == {
        "id_token": b.id_token,
        "access_token": b.access_token,
        "refresh_token": b.refresh_token,
        "account_id": b.account_id,
    }
    assert written["last_refresh"].endswith("Z")
    assert stat.S_IMODE((homes[0] / "auth.json").stat().st_mode) == 0o600
    (backup,) = homes[0].glob("auth.json.bak-*")
    assert backup.read_bytes() == before and stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert str(backup) in message and "b@example.com" in message
    assert "already runs as b@example.com" in manage.apply_codex(pool, "b@example.com")
    assert len(list(homes[0].glob("auth.json.bak-*"))) == 1


def test_apply_codex_without_a_codex_login_needs_no_backup(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    gateway_login(homes, issuer, clock, "b@example.com")
    assert "previous file" not in manage.apply_codex(pool, "b@example.com")
    assert (homes[0] / "auth.json").exists() and not list(homes[0].glob("auth.json.bak-*"))


def test_apply_codex_waits_for_no_refresh_when_told_not_to(
    pool: AccountPool, two: tuple[IssuedTokens, IssuedTokens], homes: tuple[Path, Path]
) -> None:
    fd = os.open(homes[0] / "auth.json.lock", os.O_RDWR | os.O_CREAT, 0o600)
    before = snapshot(homes[0])
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a refresh of auth.json in progress
        with pytest.raises(AccountError, match="being refreshed right now"):
            manage.apply_codex(pool, "b@example.com", lock_timeout=0)
    finally:
        os.close(fd)
    assert snapshot(homes[0]) == before


def test_apply_codex_refuses_an_unusable_file(pool: AccountPool, homes: tuple[Path, Path]) -> None:
    atomic_write_json(homes[1] / "accounts" / "broken.json", {"tokens": {}})
    with pytest.raises(AccountError, match="holds no usable login"):
        manage.apply_codex(pool, "broken")
    assert not (homes[0] / "auth.json").exists()


def test_apply_codex_is_refused_on_a_shared_store(tmp_path: Path) -> None:
    from codex_gateway.accounts.redis_state import RedisState
    from codex_gateway.accounts.state import StateConfig

    backend = RedisState(StateConfig("redis://127.0.0.1:1/0"), "http://issuer.invalid")  # never connected
    pool = AccountPool(tmp_path / "codex", tmp_path / "gw", "http://issuer.invalid", backend=backend)
    with pytest.raises(AccountError, match="log the other out"):
        manage.apply_codex(pool, "anyone@example.com")
    assert not (tmp_path / "codex" / "auth.json").exists()
