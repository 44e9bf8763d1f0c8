"""`GET /_gateway/`: one server-rendered, read-only HTML page (pure: data in, bytes out).

No script, no CDN, no external anything: inline CSS and inline SVG (quota bars, a stacked bar chart of tokens per
day by model, failures per day), so it works in any browser with JavaScript off and under a strict
Content-Security-Policy. Everything that came from a request or an account file is HTML-escaped; the page holds
account labels and emails, never a token or an account id.
"""

from __future__ import annotations

import html
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from typing import Any

from ..errors import human_duration

__all__ = ["PageData", "render_page", "PAGE_HEADERS", "PALETTE"]

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f")
OTHER_COLOR = "#bab0ac"
CHART_W, CHART_H, PAD_L, PAD_B, PAD_T = 720, 220, 56, 28, 12
PAGE_HEADERS = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#222;background:#fafafa}
h1{font-size:1.4rem;margin:0 0 .3rem} h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
.meta{color:#555} .meta span{margin-right:1.2rem} .bad{color:#b00020;font-weight:600} .ok{color:#2e7d32}
table{border-collapse:collapse;background:#fff} th,td{padding:.25rem .5rem;border-bottom:1px solid #e3e3e3;
text-align:left;vertical-align:top} th{background:#f0f0f0} td.num{text-align:right;font-variant-numeric:tabular-nums}
td.summary{font-size:12px;color:#555;padding-left:1.5rem}
.wide{overflow-x:auto;max-width:100%}
tr.request td{border-bottom:none} .legend span{display:inline-block;margin-right:1rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:middle}
svg text{font:11px system-ui,sans-serif;fill:#444} tr.failed td{background:#fff3f3} td.nowrap,.quota{white-space:nowrap}
"""


@dataclass
class PageData:
    version: str
    started_at: float
    upstream: str
    listen: Sequence[str] = ()
    accounts: Sequence[Mapping[str, Any]] = ()
    daily_tokens: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # day → model → tokens
    daily_failures: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # day → (requests, failures)
    recent: Sequence[Mapping[str, Any]] = ()  # request-log rows, newest first
    database: Mapping[str, Any] | None = None  # UsageLog.state(), None when the log is off
    read_error: str | None = None  # why the log could not be read for this page
    now: float = field(default_factory=time.time)


def render_page(data: PageData) -> bytes:
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>codex-gateway {_e(data.version)}</title><style>{_STYLE}</style></head><body>",
        _header(data),
        "<h2>Accounts</h2>",
        _accounts(data.accounts, data.now),
        *(_history(data) if data.database is not None else [_LOG_OFF]),
        "</body></html>",
    ]
    return "".join(parts).encode()


_LOG_OFF = (
    "<h2>Requests</h2><p id='log-off'>The request log is off (<code>gateway_usage_log=false</code>): there is no "
    "history of requests, tokens or failures to show. The metrics at <code>/metrics</code> count since start-up.</p>"
)


def _history(data: PageData) -> list[str]:
    """The sections read from the request log."""
    return [
        "<h2>Tokens per day (last 14 days, input + output, by model)</h2>",
        _token_chart(data.daily_tokens),
        "<h2>Failures per day</h2>",
        _failure_chart(data.daily_failures),
        f"<h2>Last {len(data.recent)} requests</h2>",
        _recent(data.recent),
    ]


def _header(data: PageData) -> str:
    db = data.database
    if db is None:
        db_text = "<span>request log: off (gateway_usage_log=false)</span>"
    elif db.get("error") or data.read_error:
        db_text = f"<span class='bad' id='db-state'>request log: {_e(db.get('error') or data.read_error)}</span>"
    else:
        db_text = (
            f"<span class='ok' id='db-state'>request log: ok, schema v{_e(db.get('schema_version'))}, "
            f"{_e(db.get('rows_written'))} rows written by this process</span>"
        )
    lost = (db or {}).get("rows_lost", 0) + (db or {}).get("rows_dropped", 0)
    lost_text = f"<span class='bad'>{_e(lost)} rows not logged</span>" if lost else ""
    return (
        f"<h1>codex-gateway {_e(data.version)}</h1><div class='meta'>"
        f"<span>up {_e(human_duration(data.now - data.started_at))}</span>"
        f"<span>listening on {_e(', '.join(data.listen) or '?')}</span>"
        f"<span>upstream {_e(data.upstream)}</span>{db_text}{lost_text}"
        f"<span>as of {_e(_local(data.now))}</span></div>"
    )


def _accounts(accounts: Sequence[Mapping[str, Any]], now: float) -> str:
    if not accounts:
        return "<p>No ChatGPT login found.</p>"
    rows = []
    for account in accounts:
        quota = account.get("quota") or {}
        bars = "".join(_quota_bar(window, title, quota.get(window), now) for window, title in _WINDOWS)
        rows.append(
            f"<tr class='account'><td class='label'>{_e(account.get('label'))}</td>"
            f"<td class='email'>{_e(account.get('email') or '')}</td><td>{_e(account.get('plan') or '-')}</td>"
            f"<td>{bars}</td><td>{_account_state(account, now)}</td>"
            f"<td>{_e(_relative(account.get('token_expires_at'), now))}</td></tr>"
        )
    head = "<tr><th>account</th><th>email</th><th>plan</th><th>quota</th><th>state</th><th>token expires</th></tr>"
    return f"<div class='wide'><table id='accounts'>{head}{''.join(rows)}</table></div>"


_WINDOWS = (("primary", "5 h"), ("secondary", "week"))


def _quota_bar(window: str, title: str, entry: Any, now: float) -> str:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("used_percent"), int | float):
        return f"<div class='quota-none'>{_e(title)}: no data yet</div>"
    used = max(0.0, min(100.0, float(entry["used_percent"])))
    color = "#c62828" if used >= 90 else "#f9a825" if used >= 70 else "#2e7d32"
    resets = entry.get("resets_at")
    resets_in = resets - now if isinstance(resets, int | float) and resets > now else None
    label = f"{title}: {used:g}%" + (f", resets in {human_duration(resets_in)}" if resets_in is not None else "")
    tip = f"{title} window: {used:g}% used" + (f", resets {_local(resets)}" if resets_in is not None else "")
    return (
        f"<div class='quota'><svg class='quota-bar' data-window='{_e(window)}' data-used='{used:g}' width='160' "
        f"height='12' role='img' aria-label='{_e(tip)}'><title>{_e(tip)}</title>"
        "<rect width='160' height='12' rx='3' fill='#e0e0e0'/>"
        f"<rect class='fill' width='{1.6 * used:.1f}' height='12' rx='3' fill='{color}'/></svg> "
        f"<span>{_e(label)}</span></div>"
    )


def _account_state(account: Mapping[str, Any], now: float) -> str:
    if account.get("login_required"):
        return "<span class='bad'>login required</span>"
    until = account.get("cooldown_until")
    if until:
        reason = account.get("cooldown_reason") or "usage limit"
        return f"<span class='bad cooldown'>cooling down until {_e(_local(until))} ({_e(reason)})</span>"
    if account.get("excluded"):
        return "<span class='bad'>excluded</span>"
    if account.get("problem"):
        return f"<span class='bad'>{_e(account['problem'])}</span>"
    return "<span class='ok'>ok, pinned</span>" if account.get("pinned") else "<span class='ok'>ok</span>"


def _token_chart(series: Mapping[str, Mapping[str, int]]) -> str:
    days = list(series)
    if not days:
        return "<p>No request log.</p>"
    models = _chart_models(series)
    colors = {model: PALETTE[i % len(PALETTE)] for i, model in enumerate(models)} | {"other": OTHER_COLOR}
    stacks = {day: _stack(series[day], models) for day in days}
    top = _nice_max(max((sum(stack.values()) for stack in stacks.values()), default=0))
    slot = (CHART_W - PAD_L) / len(days)
    plot_h = CHART_H - PAD_B - PAD_T
    shapes = [_axes(top, "tokens")]
    for i, day in enumerate(days):
        x, y = PAD_L + i * slot + slot * 0.15, float(CHART_H - PAD_B)
        for model, tokens in stacks[day].items():
            h = plot_h * tokens / top
            y -= h
            tip = f"{day} {model}: {tokens:,} tokens"
            shapes.append(
                f"<rect class='bar' data-day='{day}' data-model='{_e(model)}' data-tokens='{tokens}' "
                f"x='{x:.1f}' y='{y:.1f}' width='{slot * 0.7:.1f}' height='{h:.1f}' fill='{colors[model]}'>"
                f"<title>{_e(tip)}</title></rect>"
            )
        total = sum(stacks[day].values())
        if total:
            shapes.append(
                f"<text class='day-total' x='{PAD_L + i * slot + slot / 2:.1f}' y='{y - 3:.1f}' "
                f"text-anchor='middle'>{_short(total)}</text>"
            )
        shapes.append(_day_label(day, PAD_L + i * slot + slot / 2))
    shown = [*models, *(["other"] if any("other" in stack for stack in stacks.values()) else [])]
    legend = "".join(f"<span><i class='swatch' style='background:{colors[m]}'></i>{_e(m)}</span>" for m in shown)
    return (
        f"<svg id='tokens-chart' width='{CHART_W}' height='{CHART_H}' role='img' "
        f"aria-label='tokens per day by model'>{''.join(shapes)}</svg><div class='legend'>{legend}</div>"
    )


def _failure_chart(series: Mapping[str, tuple[int, int]]) -> str:
    days = list(series)
    if not days:
        return "<p>No request log.</p>"
    top = _nice_max(max((failures for _, failures in series.values()), default=0))
    slot = (CHART_W - PAD_L) / len(days)
    plot_h = CHART_H - PAD_B - PAD_T
    shapes = [_axes(top, "failures")]
    for i, (day, (requests, failures)) in enumerate(series.items()):
        h = plot_h * failures / top
        x = PAD_L + i * slot + slot * 0.15
        tip = f"{day}: {failures} failed of {requests} requests"
        shapes.append(
            f"<rect class='failure-bar' data-day='{day}' data-failures='{failures}' data-requests='{requests}' "
            f"x='{x:.1f}' y='{CHART_H - PAD_B - h:.1f}' width='{slot * 0.7:.1f}' height='{h:.1f}' fill='#c62828'>"
            f"<title>{_e(tip)}</title></rect>"
        )
        if requests:
            shapes.append(
                f"<text x='{PAD_L + i * slot + slot / 2:.1f}' y='{CHART_H - PAD_B - h - 3:.1f}' "
                f"text-anchor='middle'>{failures}/{requests}</text>"
            )
        shapes.append(_day_label(day, PAD_L + i * slot + slot / 2))
    return (
        f"<svg id='failures-chart' width='{CHART_W}' height='{CHART_H}' role='img' "
        f"aria-label='failures per day'>{''.join(shapes)}</svg>"
    )


RECENT_COLUMNS = 12


def _recent(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return "<p>No requests logged yet.</p>"
    head = (
        "<tr><th>finished</th><th>client</th><th>endpoint</th><th>model</th><th>status</th><th>input</th>"
        "<th>cached</th><th>output</th><th>reasoning</th><th>ttft</th><th>total</th><th>account</th></tr>"
    )
    body = []
    for r in rows:
        failed = " failed" if r.get("failure") else ""
        status = f"{r.get('status') or '-'}" + (f" {r['failure']}" if r.get("failure") else "")
        model = r.get("model") or "-"
        if r.get("model_served") and r.get("model_served") != r.get("model"):
            model = f"{model} → {r['model_served']}"
        body.append(
            f"<tr class='request{failed}'><td class='nowrap'>{_e(_local(r.get('finished_at')))}</td>"
            f"<td>{_e(r.get('client'))}"
            f"{' (replayed)' if r.get('replayed') else ''}</td><td>{_e(r.get('endpoint'))}</td>"
            f"<td class='model nowrap'>{_e(model)}</td><td>{_e(status)}</td>"
            + "".join(
                f"<td class='num {k}'>{_e(r.get(k) or 0)}</td>"
                for k in ("input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens")
            )
            + f"<td class='num'>{_e(_ms(r.get('ttft_ms')))}</td><td class='num'>{_e(_ms(r.get('total_ms')))}</td>"
            f"<td>{_e(r.get('account') or '-')}</td></tr>"
            # the summary line under its request, across the row: the table stays as wide as the window
            f"<tr class='summary{failed}'><td colspan='{RECENT_COLUMNS}' class='summary'>{_e(r.get('summary') or '')}"
            "</td></tr>"
        )
    return f"<div class='wide'><table id='recent'>{head}{''.join(body)}</table></div>"


# -- helpers -------------------------------------------------------------------------------------------------


def _chart_models(series: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The models with the most tokens, each with a colour of its own; the rest are stacked as "other"."""
    totals: dict[str, int] = {}
    for per_model in series.values():
        for model, tokens in per_model.items():
            totals[model] = totals.get(model, 0) + tokens
    ranked = sorted(totals, key=lambda m: (-totals[m], m))
    return ranked[: len(PALETTE)] if len(ranked) <= len(PALETTE) else ranked[: len(PALETTE) - 1]


def _stack(per_model: Mapping[str, int], models: Sequence[str]) -> dict[str, int]:
    stack = {model: per_model[model] for model in models if per_model.get(model)}
    other = sum(tokens for model, tokens in per_model.items() if model not in stack)
    return stack | ({"other": other} if other else {})


def _nice_max(value: float) -> float:
    """The y-axis top: 1, 2 or 5 times a power of ten, at least `value` (1 for an empty chart)."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return float(factor * step)
    return float(10 * step)


def _axes(top: float, unit: str) -> str:
    base = CHART_H - PAD_B
    return (
        f"<line x1='{PAD_L}' y1='{PAD_T}' x2='{PAD_L}' y2='{base}' stroke='#999'/>"
        f"<line x1='{PAD_L}' y1='{base}' x2='{CHART_W}' y2='{base}' stroke='#999'/>"
        f"<text x='{PAD_L - 4}' y='{PAD_T + 8}' text-anchor='end'>{top:,.0f}</text>"
        f"<text x='{PAD_L - 4}' y='{base}' text-anchor='end'>0</text>"
        f"<text x='4' y='{PAD_T + 24}'>{_e(unit)}</text>"
    )


def _day_label(day: str, x: float) -> str:
    return f"<text x='{x:.1f}' y='{CHART_H - 10}' text-anchor='middle'>{_e(day[5:])}</text>"


def _short(value: float) -> str:
    """1234 → 1.2k, 2500000 → 2.5M: a label that fits above a bar."""
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _local(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _relative(ts: Any, now: float) -> str:
    if not isinstance(ts, int | float):
        return "-"
    delta = ts - now
    return f"{_local(ts)} ({'in ' if delta >= 0 else ''}{human_duration(abs(delta))}{'' if delta >= 0 else ' ago'})"


def _ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.0f}ms" if value < 1000 else f"{value / 1000:.2f}s"
