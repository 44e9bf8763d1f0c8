"""Fresh quota readings: what the Codex CLI's `/status` shows, for every account the gateway holds.

The Codex CLI reads rate limits with `GET https://chatgpt.com/backend-api/wham/usage` (`Authorization: Bearer`,
`ChatGPT-Account-Id`), answered with `{"plan_type", "rate_limit": {"primary_window": {"used_percent", "reset_at",
"limit_window_seconds"}, "secondary_window": {…}}, "credits": {"has_credits", "unlimited", "balance"}}`. Nothing is
spent: no model runs. The URL is derived from `codex_upstream` (`…/backend-api/codex` → `…/backend-api/wham/usage`).

A reading becomes the same snapshot the `x-codex-*` headers of an answer give (quota.py), so account choice and
cooldowns use it at once, in this process and (through `state.json`) in a running gateway.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ..errors import GatewayError
from ..errors import human_duration
from .pool import AccountPool

__all__ = [
    "usage_url",
    "snapshot_from_usage",
    "QuotaReading",
    "refresh_quotas",
    "format_quota",
    "DEFAULT_CONCURRENCY",
]

DEFAULT_CONCURRENCY = 4  # AI-Zero-Token settled on 3 after 16 got accounts flagged; a few in flight is plenty
TIMEOUT_S = 20.0


def usage_url(upstream: str) -> str:
    """`https://chatgpt.com/backend-api/codex` → `https://chatgpt.com/backend-api/wham/usage`."""
    base = upstream.rstrip("/")
    if base.endswith("/codex"):
        base = base[: -len("/codex")]
    return f"{base}/wham/usage"


def snapshot_from_usage(doc: Any, now: float) -> dict[str, Any] | None:
    """The usage answer as a quota snapshot (`{"at", "primary": {"used_percent", "window_minutes", "resets_at"},
    "secondary", "plan_type", "credits"}`); None when it holds no window."""
    if not isinstance(doc, dict):
        return None
    snapshot: dict[str, Any] = {"at": now, "source": "wham/usage"}
    rate = doc.get("rate_limit")
    for window in ("primary", "secondary"):
        entry = rate.get(f"{window}_window") if isinstance(rate, dict) else None
        used = _number(entry.get("used_percent")) if isinstance(entry, dict) else None
        if used is None or not isinstance(entry, dict):
            continue
        out: dict[str, Any] = {"used_percent": used}
        seconds = _number(entry.get("limit_window_seconds"))
        if seconds is not None:
            out["window_minutes"] = int(seconds // 60)
        resets_at = _number(entry.get("reset_at"))
        after = _number(entry.get("reset_after_seconds"))
        if resets_at is not None and resets_at > 0:
            out["resets_at"] = resets_at / 1000 if resets_at > 1e12 else resets_at
        elif after is not None:
            out["resets_at"] = now + after
        snapshot[window] = out
    if isinstance(doc.get("plan_type"), str) and doc["plan_type"]:
        snapshot["plan_type"] = doc["plan_type"]
    credits = doc.get("credits")
    if isinstance(credits, dict):
        kept = {k: credits[k] for k in ("has_credits", "unlimited") if isinstance(credits.get(k), bool)}
        balance = _number(credits.get("balance"))
        if balance is not None:
            kept["balance"] = balance
        if kept:
            snapshot["credits"] = kept
    return snapshot if "primary" in snapshot or "secondary" in snapshot else None


@dataclass(frozen=True)
class QuotaReading:
    key: str
    label: str
    snapshot: dict[str, Any] | None = None
    error: str | None = None  # one line, no token


async def refresh_quotas(
    pool: AccountPool,
    keys: list[str],
    url: str,
    client: httpx.AsyncClient,
    *,
    headers: Mapping[str, str] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_reading: Callable[[QuotaReading], None] | None = None,
) -> list[QuotaReading]:
    """Reads every account's quota, at most `concurrency` at a time; each reading is recorded in the pool's state
    (a window at 100 % cools the account down) and reported to `on_reading` as it arrives. Never raises for one
    account's failure: that reading carries the error."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(key: str) -> QuotaReading:
        async with gate:
            reading = await _read(pool, key, url, client, headers or {})
        if reading.snapshot is not None:
            pool.record_snapshot(key, reading.label, reading.snapshot)
        if on_reading is not None:
            on_reading(reading)
        return reading

    readings = await asyncio.gather(*(one(key) for key in keys))
    pool.flush()
    return list(readings)


async def _read(
    pool: AccountPool, key: str, url: str, client: httpx.AsyncClient, headers: Mapping[str, str]
) -> QuotaReading:
    record = pool.account_record(key)
    label = record.label if record is not None else key
    try:
        creds = await pool.credentials_of(key)
    except GatewayError as exc:
        return QuotaReading(key, label, error=exc.message)
    sent = {
        **headers,
        "Accept": "application/json",
        "Authorization": f"Bearer {creds.access_token}",
        "ChatGPT-Account-Id": creds.account_id,
    }
    try:
        response = await client.get(url, headers=sent, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        return QuotaReading(key, label, error=f"{type(exc).__name__} reaching {url}")
    if response.status_code != 200:
        return QuotaReading(key, label, error=f"HTTP {response.status_code} from {url}")
    try:
        snapshot = snapshot_from_usage(orjson.loads(response.content), time.time())
    except orjson.JSONDecodeError:
        snapshot = None
    if snapshot is None:
        return QuotaReading(key, label, error=f"{url} answered without rate-limit windows")
    return QuotaReading(key, label, snapshot)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def format_quota(rows: list[dict[str, Any]], now: float | None = None) -> str:
    """A table of each account's last quota windows (`AccountPool.status()` rows), for the command line and
    mitmproxy's command bar."""
    now = time.time() if now is None else now
    header = ("ACCOUNT", "PLAN", "PRIMARY WINDOW", "SECONDARY WINDOW", "CREDITS", "READ")
    lines = [header]
    for r in rows:
        quota = r.get("quota") or {}
        at = quota.get("at")
        read = f"{human_duration(now - at)} ago" if isinstance(at, int | float) else "never"
        if quota.get("source") == "wham/usage":
            read += " (usage)"
        flag = " [pinned]" if r.get("pinned") else " [excluded]" if r.get("excluded") else ""
        lines.append(
            (
                f"{r.get('label') or '-'}{flag}",
                str(quota.get("plan_type") or r.get("plan") or "-"),
                _window(quota.get("primary"), now),
                _window(quota.get("secondary"), now),
                _credits(quota.get("credits")),
                read,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _window(entry: Any, now: float) -> str:
    if not isinstance(entry, dict) or "used_percent" not in entry:
        return "-"
    minutes = entry.get("window_minutes")
    span = f" of {_span(minutes)}" if isinstance(minutes, int | float) and minutes > 0 else ""
    text = f"{entry['used_percent']:g}%{span}"
    resets_at = entry.get("resets_at")
    if isinstance(resets_at, int | float):
        text += f", resets in {_until(resets_at - now)}" if resets_at > now else ", reset since"
    return text


def _until(seconds: float) -> str:
    return f"{seconds / 86400:.1f} d" if seconds >= 2 * 86400 else human_duration(seconds)


def _span(minutes: float) -> str:
    if minutes % 1440 == 0:
        days = int(minutes // 1440)
        return "1 week" if days == 7 else f"{days} d"
    return f"{int(minutes // 60)} h" if minutes % 60 == 0 else f"{int(minutes)} min"


def _credits(credits: Any) -> str:
    if not isinstance(credits, dict):
        return "-"
    if credits.get("unlimited"):
        return "unlimited"
    if "balance" in credits:
        return f"{credits['balance']:g}"
    return "yes" if credits.get("has_credits") else "none"
