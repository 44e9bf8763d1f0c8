"""usage: fresh quota readings from `wham/usage` (the Codex CLI's /status), recorded like an answer's headers."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from codex_gateway.accounts.pool import AccountPool
from codex_gateway.accounts.usage import QuotaReading
from codex_gateway.accounts.usage import format_quota
from codex_gateway.accounts.usage import refresh_quotas
from codex_gateway.accounts.usage import snapshot_from_usage
from codex_gateway.accounts.usage import usage_url
from codex_gateway.cli.progress import Progress

from scripts.fakes.codex_backend import USAGE_PATH
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import usage_payload
from scripts.fakes.fake_issuer import FakeIssuer
from tests.accounts.test_pool import HOUR
from tests.accounts.test_pool import Clock
from tests.accounts.test_pool import codex_login
from tests.accounts.test_pool import gateway_login

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("upstream", "url"),
    [
        ("https://chatgpt.com/backend-api/codex", "https://chatgpt.com/backend-api/wham/usage"),
        ("https://chatgpt.com/backend-api/codex/", "https://chatgpt.com/backend-api/wham/usage"),
        ("http://127.0.0.1:8123/backend-api/codex", "http://127.0.0.1:8123/backend-api/wham/usage"),
        ("https://proxy.example/backend-api", "https://proxy.example/backend-api/wham/usage"),
    ],
)
def test_usage_url(upstream: str, url: str) -> None:
    assert usage_url(upstream) == url


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            usage_payload(6, 24, now=NOW),
            {
                "at": NOW,
                "source": "wham/usage",
                "primary": {"used_percent": 6.0, "window_minutes": 300, "resets_at": NOW + 3600},
                "secondary": {"used_percent": 24.0, "window_minutes": 10080, "resets_at": NOW + 5 * 86400},
                "plan_type": "plus",
                "credits": {"has_credits": False, "unlimited": False, "balance": 0.0},
            },
        ),
        (
            {
                "rate_limit": {
                    "primary_window": {"used_percent": 50, "reset_after_seconds": 60},
                    "secondary_window": None,
                }
            },
            {"at": NOW, "source": "wham/usage", "primary": {"used_percent": 50.0, "resets_at": NOW + 60}},
        ),
        (
            {"rate_limit": {"primary_window": {"used_percent": 1, "reset_at": (NOW + 10) * 1000}}},
            {"at": NOW, "source": "wham/usage", "primary": {"used_percent": 1.0, "resets_at": NOW + 10}},
        ),
        ({"plan_type": "free", "rate_limit": None}, None),
        ({"rate_limit": {"primary_window": {"used_percent": "lots"}}}, None),
        ([], None),
    ],
)
def test_snapshot_from_usage(doc: Any, expected: dict[str, Any] | None) -> None:
    assert snapshot_from_usage(doc, NOW) == expected


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer(access_ttl=30 * 24 * HOUR) as fake:
        yield fake


@pytest.fixture
def pool(tmp_path: Path, issuer: FakeIssuer) -> AccountPool:
    return AccountPool(tmp_path / "codex", tmp_path / "gateway", issuer.url)


async def test_readings_from_the_fake_backend_are_recorded_and_persisted(
    pool: AccountPool, issuer: FakeIssuer, tmp_path: Path
) -> None:
    homes = (tmp_path / "codex", tmp_path / "gateway")
    a = codex_login(homes, issuer, Clock(), "a@example.com")
    b = gateway_login(homes, issuer, Clock(), "b@example.com")
    seen: list[QuotaReading] = []
    with FakeCodexBackend() as backend:
        backend.usage[b.account_id] = (200, usage_payload(100, 50, reset_in=1800))
        async with httpx.AsyncClient() as client:
            readings = await refresh_quotas(
                pool, [a.account_id, b.account_id], usage_url(backend.codex_base), client, on_reading=seen.append
            )
        sent = [r for r in backend.requests if r.route == USAGE_PATH]
    assert {r.label for r in seen} == {"a@example.com", "b@example.com"} and not any(r.error for r in readings)
    assert {r.headers["chatgpt-account-id"] for r in sent} == {a.account_id, b.account_id}
    assert {r.headers["authorization"] for r in sent} == {f"Bearer {a.access_token}", f"Bearer {b.access_token}"}
    rows = {r["email"]: r for r in pool.status()}
    assert rows["a@example.com"]["quota"]["primary"]["used_percent"] == 12.0
    assert rows["b@example.com"]["cooldown_until"] is not None  # a window at 100 %: it cools down at once
    fresh = AccountPool(*homes, issuer.url)  # a running gateway sees the readings through state.json
    assert {r["email"]: r["quota"]["secondary"]["used_percent"] for r in fresh.status()} == {
        "a@example.com": 34.0,
        "b@example.com": 50.0,
    }


async def test_one_account_failing_does_not_stop_the_others(
    pool: AccountPool, issuer: FakeIssuer, tmp_path: Path
) -> None:
    homes = (tmp_path / "codex", tmp_path / "gateway")
    a = codex_login(homes, issuer, Clock(), "a@example.com")
    b = gateway_login(homes, issuer, Clock(), "b@example.com")
    with FakeCodexBackend() as backend:
        backend.usage[a.account_id] = (403, {"detail": "Forbidden"})
        async with httpx.AsyncClient() as client:
            readings = await refresh_quotas(pool, [a.account_id, b.account_id], usage_url(backend.codex_base), client)
    errors = {r.label: r.error for r in readings}
    assert errors["b@example.com"] is None
    assert errors["a@example.com"] is not None and errors["a@example.com"].startswith("HTTP 403 from http://")
    assert a.access_token not in errors["a@example.com"]


async def test_readings_are_limited_to_the_concurrency(pool: AccountPool, issuer: FakeIssuer, tmp_path: Path) -> None:
    homes = (tmp_path / "codex", tmp_path / "gateway")
    keys = [gateway_login(homes, issuer, Clock(), f"u{i}@example.com").account_id for i in range(6)]
    in_flight, most = 0, 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        for _ in range(5):  # yield to the event loop: every reading not held back by the limit starts meanwhile
            await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, json=usage_payload(1, 2))

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        readings = await refresh_quotas(pool, keys, "https://x.test/backend-api/wham/usage", client, concurrency=2)
    assert len(readings) == 6 and most == 2


def test_format_quota() -> None:
    rows = [
        {
            "label": "a@example.com",
            "pinned": True,
            "quota": snapshot_from_usage(usage_payload(6, 24, now=NOW), NOW - 120),
        },
        {"label": "b@example.com", "plan": "pro", "excluded": True, "quota": None},
    ]
    table = format_quota(rows, now=NOW).splitlines()
    assert table[0].split() == ["ACCOUNT", "PLAN", "PRIMARY", "WINDOW", "SECONDARY", "WINDOW", "CREDITS", "READ"]
    assert "a@example.com [pinned]" in table[1] and "6% of 5 h, resets in 60 min" in table[1]
    assert "24% of 1 week, resets in 5.0 d" in table[1] and "2 min ago (usage)" in table[1]
    assert "b@example.com [excluded]" in table[2] and "pro" in table[2] and table[2].rstrip().endswith("never")


@pytest.mark.parametrize(("tty", "shown"), [(False, "[1/2] a\n[2/2] b\n"), (True, "a\nb\n")])
def test_progress_is_a_bar_on_a_terminal_and_lines_elsewhere(tty: bool, shown: str) -> None:
    stream = io.StringIO()
    progress = Progress(2, "readings", stream=stream, tty=tty)
    progress.start()
    progress.advance("[1/2] a" if not tty else "a")
    progress.advance("[2/2] b" if not tty else "b")
    progress.close()
    text = stream.getvalue()
    visible = text.replace("\r\x1b[K", "").replace("\r[###############---------------] 1/2 readings", "")
    visible = visible.replace("\r[------------------------------] 0/2 readings", "")
    assert visible == shown
    assert ("1/2 readings" in text) is tty
