"""AccountPool: choosing accounts (sticky, least used), cooldowns that end by themselves, status without tokens."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.auth_file import parse_auth_doc
from codex_gateway.accounts.file_state import FileState
from codex_gateway.accounts.oauth import TokenResponse
from codex_gateway.accounts.pool import AccountPool
from codex_gateway.accounts.pool import Lease
from codex_gateway.accounts.pool import format_status
from codex_gateway.accounts.pool import save_login
from codex_gateway.accounts.quota import RateLimitParser
from codex_gateway.accounts.quota import parse_rate_limit_headers
from codex_gateway.accounts.quota import resets_at_from_error
from codex_gateway.accounts.token_store import atomic_write_json
from codex_gateway.errors import GatewayError

from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens

HOUR = 3600


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def codex_login(homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock, email: str, **kw: int) -> IssuedTokens:
    tokens = issuer.issue(issuer.add_account(email), **kw)
    atomic_write_json(homes[0] / "auth.json", tokens.auth_json(format_iso(clock() - HOUR)))
    return tokens


def gateway_login(homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock, email: str, **kw: int) -> IssuedTokens:
    tokens = issuer.issue(issuer.add_account(email), **kw)
    save_login(homes[1], TokenResponse(tokens.id_token, tokens.access_token, tokens.refresh_token), clock() - HOUR)
    return tokens


def quota_headers(primary: float, secondary: float = 0, reset_at: float | None = None) -> dict[str, str]:
    headers = {
        "X-Codex-Primary-Used-Percent": str(primary),
        "x-codex-primary-window-minutes": "300",
        "x-codex-secondary-used-percent": str(secondary),
        "x-codex-secondary-window-minutes": "10080",
        "x-codex-plan-type": "plus",
    }
    if reset_at is not None:
        headers["x-codex-primary-reset-at"] = str(int(reset_at))
    return headers


async def test_no_login_at_all_is_a_401_but_status_and_headers_are_fine(pool: AccountPool) -> None:
    assert pool.status() == []
    assert pool.cooling_down_retry_after() is None
    with pytest.raises(GatewayError) as err:
        await pool.acquire()
    assert err.value.status == 401 and err.value.code == "no_login"


async def test_codex_login_just_works(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    tokens = codex_login(homes, issuer, clock, "a@example.com")
    lease = await pool.acquire("session-1")
    assert lease.key == tokens.account_id
    assert lease.credentials.access_token == tokens.access_token and lease.credentials.label == "a@example.com"
    assert issuer.count() == 0


async def test_same_account_in_both_homes_is_one_account(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    tokens = codex_login(homes, issuer, clock, "a@example.com")
    again = issuer.issue(issuer.accounts[0])
    where, _ = save_login(homes[1], TokenResponse(again.id_token, again.access_token, again.refresh_token), clock())
    path = Path(where)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rows = pool.status()
    assert len(rows) == 1 and rows[0]["source"] == "gateway"  # the fresher login serves
    assert (await pool.acquire()).credentials.access_token == again.access_token
    assert set(pool.files()[tokens.account_id]) == {path, homes[0] / "auth.json"}


async def test_fifty_concurrent_acquires_with_an_expired_token_refresh_once(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "a@example.com", expires_in=-10)
    issuer.refresh_delay = 0.05
    leases = await asyncio.gather(*(pool.acquire(f"s{i}") for i in range(50)))
    assert issuer.count("refresh_token") == 1
    assert len({lease.credentials.access_token for lease in leases}) == 1
    stored = orjson.loads((homes[0] / "auth.json").read_bytes())
    assert stored["tokens"]["access_token"] == leases[0].credentials.access_token


async def test_usage_limit_moves_requests_to_b_until_a_resets(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    b = gateway_login(homes, issuer, clock, "b@example.com")
    lease_a = await pool.acquire("conversation")
    assert lease_a.key == a.account_id  # ties: the first listed (the Codex CLI's) account
    body = {"error": {"type": "usage_limit_reached", "resets_at": int(clock() + 2 * HOUR), "resets_in_seconds": 7200}}
    pool.cool_down(lease_a, resets_at_from_error(orjson.dumps(body), clock()))
    for session in ("conversation", None, "other"):
        lease_b = await pool.acquire(session)
        assert lease_b.key == b.account_id
    clock.now += 2 * HOUR - 1
    assert (await pool.acquire()).key == b.account_id
    clock.now += 2  # past the reset: A is back by itself, no timer involved
    pool.record_headers(lease_b, quota_headers(60))  # B is now the more used one
    assert (await pool.acquire()).key == a.account_id
    assert pool.status()[0]["cooldown_until"] is None


async def test_all_accounts_limited_gives_429_with_earliest_reset(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "a@example.com")
    gateway_login(homes, issuer, clock, "b@example.com")
    first = await pool.acquire()
    second = await pool.acquire(exclude=frozenset({first.key}))
    pool.cool_down(first, clock() + 3 * HOUR)
    pool.record_headers(second, quota_headers(100, 40, reset_at=clock() + 5400))  # exhausted by headers alone
    assert pool.cooling_down_retry_after() == 5400
    with pytest.raises(GatewayError) as err:
        await pool.acquire("s")
    assert err.value.status == 429 and err.value.code == "usage_limit_reached"
    assert err.value.headers == {"retry-after": "5400", "x-should-retry": "false"}
    assert "All 2 ChatGPT accounts" in err.value.message and "90 min" in err.value.message
    assert issuer.count() == 0
    clock.now += 5400
    assert (await pool.acquire()).key == second.key
    assert pool.cooling_down_retry_after() is None


async def test_cooldowns_persist_and_are_shared_between_gateways(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "a@example.com")
    b = gateway_login(homes, issuer, clock, "b@example.com")
    other = AccountPool(homes[0], homes[1], issuer.url, clock=clock)  # a second gateway on the same homes
    lease = await other.acquire()
    other.cool_down(lease, clock() + HOUR)
    assert (await pool.acquire()).key == b.account_id
    state = homes[1] / "state.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    restarted = AccountPool(homes[0], homes[1], issuer.url, clock=clock)
    assert restarted.status()[0]["cooldown_until"] == pytest.approx(clock() + HOUR)


async def test_least_used_by_quota_headers(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    a = codex_login(homes, issuer, clock, "a@example.com")
    b = gateway_login(homes, issuer, clock, "b@example.com")
    lease_a = await pool.acquire()
    lease_b = await pool.acquire(exclude=frozenset({lease_a.key}))
    pool.record_headers(lease_a, quota_headers(80, 10))
    pool.record_headers(lease_b, quota_headers(20, 90))
    assert (await pool.acquire()).key == b.account_id  # primary first
    pool.record_headers(lease_b, quota_headers(80, 90))
    assert (await pool.acquire()).key == a.account_id  # then secondary
    pool.record_headers(lease_a, quota_headers(95, 10, reset_at=clock() + 60))
    clock.now += 61  # a snapshot older than its window's reset counts as unused
    assert (await pool.acquire()).key == a.account_id


async def test_session_keys_stick_to_their_account(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "a@example.com")
    gateway_login(homes, issuer, clock, "b@example.com")
    first = await pool.acquire("conv-1")
    pool.record_headers(first, quota_headers(70))
    second = await pool.acquire("conv-2")
    assert second.key != first.key
    pool.record_headers(second, quota_headers(10))
    for _ in range(3):
        assert (await pool.acquire("conv-1")).key == first.key  # despite being the more used one
        assert (await pool.acquire("conv-2")).key == second.key


async def test_after_unauthorized_refreshes_once(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    tokens = codex_login(homes, issuer, clock, "a@example.com")
    lease = await pool.acquire()
    again = await asyncio.gather(*(pool.after_unauthorized(lease) for _ in range(5)))
    assert issuer.count("refresh_token") == 1
    assert {x.credentials.access_token for x in again} != {tokens.access_token}
    assert len({x.credentials.access_token for x in again}) == 1
    assert (await pool.acquire()).credentials == again[0].credentials


async def test_permanent_failure_on_one_account_uses_the_other(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    dead = codex_login(homes, issuer, clock, "a@example.com", expires_in=-10)
    issuer.revoke(dead.refresh_token)
    b = gateway_login(homes, issuer, clock, "b@example.com")
    for _ in range(5):
        assert (await pool.acquire()).key == b.account_id
    assert issuer.count() == 1  # the dead login is tried once, then only as a last resort
    assert len([r for r in caplog.records if "skipping account" in r.getMessage()]) == 1
    rows = {r["label"]: r for r in pool.status()}
    assert rows["a@example.com"]["login_required"] and not rows["b@example.com"]["login_required"]
    assert "login required" in format_status(pool.status(), clock())


async def test_permanent_failure_of_the_only_account_is_a_401(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    tokens = codex_login(homes, issuer, clock, "a@example.com")
    lease = await pool.acquire()
    issuer.revoke(tokens.refresh_token)
    with pytest.raises(GatewayError) as err:
        await pool.after_unauthorized(lease)
    assert err.value.status == 401 and "codex login" in err.value.message


async def test_transient_failure_of_the_only_account_is_a_503(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "a@example.com", expires_in=-10)
    issuer.fail_next(503, {"detail": "down"}, headers={"retry-after": "17"})
    with pytest.raises(GatewayError) as err:
        await pool.acquire()
    assert err.value.status == 503 and err.value.headers["retry-after"] == "17"


async def test_excluding_the_only_account(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "a@example.com")
    lease = await pool.acquire()
    with pytest.raises(GatewayError) as err:
        await pool.acquire(exclude=frozenset({lease.key}))
    assert err.value.status == 503 and err.value.code == "no_available_accounts"


async def test_logins_and_removals_apply_without_restart(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    with pytest.raises(GatewayError):
        await pool.acquire()
    b = gateway_login(homes, issuer, clock, "b@example.com")
    assert (await pool.acquire()).key == b.account_id
    for path in pool.files()[b.account_id]:
        path.unlink()
    with pytest.raises(GatewayError):
        await pool.acquire()


def test_rate_limit_headers_parse() -> None:
    snap = parse_rate_limit_headers(
        {
            "x-codex-primary-used-percent": "100",
            "x-codex-primary-window-minutes": "300",
            "x-codex-primary-reset-after-seconds": "13873",
            "x-codex-secondary-used-percent": "80.5",
            "x-codex-secondary-reset-at": "1778239400000",  # milliseconds are scaled down
            "x-codex-credits-has-credits": "False",
            "x-codex-credits-balance": "0",
            "x-codex-plan-type": "pro",
            "content-type": "text/event-stream",
        },
        now=1000.0,
    )
    assert snap == {
        "at": 1000.0,
        "primary": {"used_percent": 100.0, "window_minutes": 300, "resets_at": 14873.0},
        "secondary": {"used_percent": 80.5, "resets_at": 1778239400.0},
        "plan_type": "pro",
        "credits": {"has_credits": False, "balance": 0.0},
    }
    assert parse_rate_limit_headers({"content-type": "application/json"}, now=1.0) is None
    assert resets_at_from_error(b'{"error":{"resets_in_seconds":60}}', now=10.0) == 70.0
    assert resets_at_from_error(b"not json") is None


def test_cooldown_without_reset_time_is_short(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    tokens = codex_login(homes, issuer, clock, "a@example.com")
    lease = Lease(tokens.account_id, parse_auth_doc(tokens.auth_json()).credentials())
    pool.cool_down(lease, None)
    assert pool.cooling_down_retry_after() == 60
    pool.cool_down(lease, clock() + 365 * 24 * HOUR)  # absurd reset times are capped at 8 days
    assert pool.cooling_down_retry_after() == 8 * 24 * HOUR


async def test_status_and_logs_never_contain_a_token(
    pool: AccountPool,
    homes: tuple[Path, Path],
    issuer: FakeIssuer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    a = codex_login(homes, issuer, clock, "a@example.com", expires_in=-10)
    b = gateway_login(homes, issuer, clock, "b@example.com", expires_in=-10)
    secrets_seen = {a.access_token, a.refresh_token, a.id_token, b.access_token, b.refresh_token, b.id_token}
    lease = await pool.acquire("s")  # refreshes A
    lease_b = await pool.acquire("t", exclude=frozenset({lease.key}))  # refreshes B
    pool.record_headers(lease, quota_headers(100, 50, reset_at=clock() + HOUR))
    again = await pool.after_unauthorized(lease_b)
    issuer.fail_next(401, {"error": {"code": "refresh_token_expired", "message": "expired"}})
    with pytest.raises(GatewayError):
        await pool.after_unauthorized(again)
    clock.now += 2 * HOUR
    for path in (homes[0] / "auth.json", *sorted((homes[1] / "accounts").glob("*.json"))):
        tokens = orjson.loads(path.read_bytes())["tokens"]
        secrets_seen |= {tokens["access_token"], tokens["refresh_token"], tokens["id_token"]}
    secrets_seen |= {lease.credentials.access_token, again.credentials.access_token}
    assert len(secrets_seen) >= 10
    text = orjson.dumps(pool.status()).decode() + format_status(pool.status(), clock()) + repr(lease)
    text += "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''} {r.stack_info or ''}" for r in caplog.records)
    assert caplog.records and "a@example.com" in text
    leaked = [s for s in secrets_seen if s in text or s.split(".")[-1] in text]
    assert leaked == []


def test_save_login_requires_an_account_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_login(tmp_path, TokenResponse("x.e30.y", "x.e30.y", "rt"))
    assert not (tmp_path / "accounts").exists()


async def test_unusable_codex_file_is_tolerated_when_another_account_works(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    atomic_write_json(homes[0] / "auth.json", {"auth_mode": "apikey", "OPENAI_API_KEY": "sk-not-for-codex"})
    b = gateway_login(homes, issuer, clock, "b@example.com")
    assert (await pool.acquire()).key == b.account_id
    rows = {r["source"]: r for r in pool.status()}
    assert "API-key login" in rows["codex"]["problem"] and rows["codex"]["label"].endswith("auth.json")
    assert "sk-not-for-codex" not in orjson.dumps(pool.status()).decode()
    for path in pool.files()[b.account_id]:
        path.unlink()
    with pytest.raises(GatewayError) as err:
        await pool.acquire()
    assert err.value.status == 401 and "API-key login" in err.value.message


def test_rate_limit_parser_gives_what_a_fresh_parse_gives() -> None:
    parser = RateLimitParser()
    absolute = {"x-codex-primary-used-percent": "10", "x-codex-primary-reset-at": "5000", "x-codex-plan-type": "plus"}
    relative = {"x-codex-primary-used-percent": "10", "x-codex-primary-reset-after-seconds": "60"}
    sequence = [absolute, absolute, relative, relative, {"content-type": "text/plain"}, {}, absolute, absolute]
    for now, headers in enumerate(sequence, start=1000):
        assert parser.parse("a", headers, float(now)) == parse_rate_limit_headers(headers, float(now))
    first = parser.parse("a", absolute, 1.0)
    second = parser.parse("a", absolute, 2.0)
    assert first is not second and first == parse_rate_limit_headers(absolute, 1.0)  # its own, with its own time
    raw = tuple((k.encode(), v.encode()) for k, v in relative.items())
    assert parser.parse_fields("a", raw, 5.0) == parse_rate_limit_headers(relative, 5.0)
    assert parser.parse_fields("a", raw, 6.0) == parse_rate_limit_headers(relative, 6.0)
    assert parser.parse("b", relative, 3.0) == parse_rate_limit_headers(relative, 3.0)  # per account


async def test_repeated_quota_headers_keep_updating_the_snapshot_time(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock
) -> None:
    codex_login(homes, issuer, clock, "a@example.com")
    lease = await pool.acquire()
    reset = int(clock()) + 600
    for _ in range(2):  # the same headers twice: the second snapshot is as new as its answer
        clock.now += 5
        pool.record_headers(lease, quota_headers(40, reset_at=reset))
        assert pool.status()[0]["quota"] == parse_rate_limit_headers(quota_headers(40, reset_at=reset), clock())
    exhausted = quota_headers(100, reset_at=reset)  # as raw fields (what the addon passes): cools down at once
    pool.record_fields(lease, tuple((k.encode(), v.encode()) for k, v in exhausted.items()))
    assert pool.status()[0]["cooldown_until"] == reset


async def test_a_settled_accounts_directory_is_not_listed_again_but_changes_are_seen(
    pool: AccountPool, homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = issuer.add_account("a@example.com")
    a = issuer.issue(account)
    save_login(homes[1], TokenResponse(a.id_token, a.access_token, a.refresh_token), clock() - HOUR)
    accounts_dir = homes[1] / "accounts"
    old = time.time_ns() - 10 * 10**9
    os.utime(accounts_dir, ns=(old, old))  # last changed long before the listing: safe to reuse
    listings: list[Path] = []
    real_glob = Path.glob

    def counting_glob(self: Path, pattern: str) -> Iterator[Path]:
        listings.append(self)
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", counting_glob)
    assert (await pool.acquire()).key == a.account_id
    assert (await pool.acquire()).key == a.account_id
    assert len(listings) == 1
    # An in-place edit of a known file (no rename, so the directory is unchanged) is still noticed.
    path = pool.files()[a.account_id][0]
    rotated = issuer.issue(account)
    path.write_bytes(orjson.dumps(rotated.auth_json(format_iso(clock()))))
    os.utime(accounts_dir, ns=(old, old))
    assert (await pool.acquire()).credentials.access_token == rotated.access_token
    assert len(listings) == 1
    # A new login (written by rename) changes the directory: listed again, and the new account is used.
    b = gateway_login(homes, issuer, clock, "b@example.com")
    assert set(pool.files()) == {a.account_id, b.account_id}
    assert len(listings) == 2
    path.unlink()
    assert set(pool.files()) == {b.account_id}


def test_a_listing_taken_in_the_directory_s_last_tick_is_not_trusted(
    pool: AccountPool, homes: tuple[Path, Path]
) -> None:
    accounts_dir = homes[1] / "accounts"
    accounts_dir.mkdir(parents=True)
    files = pool.backend
    assert isinstance(files, FileState)
    now = time.time_ns()
    stamp = (1, now, 4096)  # a directory changed just now: another change in the same tick keeps this stamp
    assert files._account_files(stamp) == []
    (accounts_dir / "x.json").write_text("{}")
    assert files._account_files(stamp) == [accounts_dir / "x.json"]
    settled = (1, now - 10 * 10**9, 4096)
    assert files._account_files(settled) == [accounts_dir / "x.json"]
    (accounts_dir / "y.json").write_text("{}")
    assert files._account_files(settled) == [accounts_dir / "x.json"]  # reused: the stamp vouches for it
    assert files._account_files(None) == []  # no directory
