"""Pin (`use`) and exclusions (`exclude`): the selection file, and how the pool chooses with it."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from codex_gateway.accounts.pool import AccountPool
from codex_gateway.accounts.pool import format_status
from codex_gateway.accounts.selection import Selection
from codex_gateway.accounts.selection import SelectionFile
from codex_gateway.errors import GatewayError

from scripts.fakes.fake_issuer import FakeIssuer
from tests.accounts.test_pool import HOUR
from tests.accounts.test_pool import Clock
from tests.accounts.test_pool import codex_login
from tests.accounts.test_pool import gateway_login
from tests.accounts.test_pool import quota_headers


def select(homes: tuple[Path, Path], pinned: str | None = None, excluded: frozenset[str] = frozenset()) -> None:
    """What `codex-gateway accounts use/exclude` does: another process writes the file."""
    SelectionFile(homes[1]).update(lambda _: Selection(pinned, excluded))


# -- the file ------------------------------------------------------------------------------------------------


def test_no_file_is_no_pin_and_nothing_excluded(tmp_path: Path) -> None:
    assert SelectionFile(tmp_path).current() == Selection()


def test_update_writes_the_file_and_current_reads_it(tmp_path: Path) -> None:
    chosen = SelectionFile(tmp_path).update(lambda s: Selection("acct-1", s.excluded | {"acct-2"}))
    assert chosen == Selection("acct-1", frozenset({"acct-2"}))
    assert orjson.loads((tmp_path / "selection.json").read_bytes()) == {
        "version": 1,
        "pinned": "acct-1",
        "excluded": ["acct-2"],
    }
    assert SelectionFile(tmp_path).current() == chosen


def test_an_update_that_changes_nothing_writes_nothing(tmp_path: Path) -> None:
    SelectionFile(tmp_path).update(lambda s: s)
    assert not (tmp_path / "selection.json").exists()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "is not valid JSON"),
        (b"[]", "is not a JSON object"),
        (b'{"pinned": 3}', "'pinned' is not an account id"),
        (b'{"excluded": "acct-1"}', "'excluded' is not a list of account ids"),
    ],
)
def test_a_broken_file_is_ignored_with_a_reason_and_never_overwritten(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    (tmp_path / "selection.json").write_bytes(content)
    selection = SelectionFile(tmp_path)
    assert selection.current() == Selection()
    assert selection.problem is not None and problem in selection.problem
    with pytest.raises(ValueError, match=problem):
        selection.update(lambda s: Selection("acct-1", s.excluded))
    assert (tmp_path / "selection.json").read_bytes() == content


# -- choosing ------------------------------------------------------------------------------------------------


async def test_a_pinned_account_serves_every_request(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    b = gateway_login(homes, issuer, clock, "b@example.com")
    lease_a = await pool.acquire("conv-1")
    pool.record_headers(lease_a, quota_headers(90))  # automatic choice would now avoid a
    select(homes, pinned=a.account_id)
    assert {(await pool.acquire(key)).key for key in ("conv-1", "conv-2", None)} == {a.account_id}
    select(homes)  # auto
    assert (await pool.acquire("conv-3")).key == b.account_id


async def test_a_pin_wins_over_an_exclusion_of_the_same_account(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    gateway_login(homes, issuer, clock, "b@example.com")
    select(homes, pinned=a.account_id, excluded=frozenset({a.account_id}))
    assert (await pool.acquire()).key == a.account_id


async def test_a_pin_on_an_account_that_is_gone_falls_back_to_automatic_choice(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    select(homes, pinned="acct-removed")
    assert (await pool.acquire()).key == a.account_id
    assert (await pool.acquire()).key == a.account_id
    assert sum("pinned account" in r.message for r in caplog.records) == 1
    assert "is gone" in (pool.selection_note() or "")


async def test_excluded_accounts_are_not_chosen_even_for_their_sessions(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    b = gateway_login(homes, issuer, clock, "b@example.com")
    first = await pool.acquire("conv-1")
    select(homes, excluded=frozenset({first.key}))
    other = b.account_id if first.key == a.account_id else a.account_id
    assert (await pool.acquire("conv-1")).key == other


async def test_excluding_every_account_is_a_clear_503(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    select(homes, excluded=frozenset({a.account_id}))
    with pytest.raises(GatewayError) as raised:
        await pool.acquire()
    assert raised.value.status == 503 and raised.value.code == "all_accounts_excluded"
    assert "include" in raised.value.message


async def test_a_pinned_account_at_its_limit_is_not_replaced_by_another(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    gateway_login(homes, issuer, clock, "b@example.com")
    select(homes, pinned=a.account_id)
    lease = await pool.acquire()
    pool.cool_down(lease, clock() + HOUR)
    with pytest.raises(GatewayError) as retry:  # what recovery asks for after a usage limit
        await pool.acquire(exclude=frozenset({lease.key}))
    assert retry.value.code == "no_available_accounts"  # so the client hears the backend's own 429
    with pytest.raises(GatewayError) as later:
        await pool.acquire()
    assert later.value.status == 429


async def test_status_shows_the_pin_and_exclusions(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    b = gateway_login(homes, issuer, clock, "b@example.com")
    select(homes, pinned=a.account_id, excluded=frozenset({b.account_id}))
    rows = {r["email"]: r for r in pool.status()}
    assert (rows["a@example.com"]["pinned"], rows["a@example.com"]["excluded"]) == (True, False)
    assert (rows["b@example.com"]["pinned"], rows["b@example.com"]["excluded"]) == (False, True)
    table = format_status(list(rows.values()))
    assert "PINNED (every request), ok" in table and "excluded from automatic choice, ok" in table
