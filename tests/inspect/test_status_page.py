"""status_page: the server-rendered page (pure): what it shows, what it escapes, what it never holds."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

from codex_gateway.inspect.status_page import PAGE_HEADERS
from codex_gateway.inspect.status_page import PALETTE
from codex_gateway.inspect.status_page import PageData
from codex_gateway.inspect.status_page import render_page

NOW = 1_800_000_000.0
HOSTILE = "<script>alert(1)</script>"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def having(self, tag: str, cls: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and cls in (a.get("class") or "").split()]


def page(**kw: Any) -> PageData:
    base: dict[str, Any] = {
        "version": "1.2.3",
        "started_at": NOW - 3700,
        "upstream": "https://chatgpt.com/backend-api/codex",
        "listen": ["127.0.0.1:8787"],
        "now": NOW,
        "database": {"ok": True, "schema_version": 1, "rows_written": 3, "rows_lost": 0, "rows_dropped": 0},
        "accounts": [
            {
                "label": "a@example.com",
                "email": "a@example.com",
                "plan": "plus",
                "quota": {"primary": {"used_percent": 42, "resets_at": NOW + 600}, "secondary": {"used_percent": 95}},
            },
            {"label": "b@example.com", "email": "b@example.com", "cooldown_until": NOW + 3600},
        ],
        "daily_tokens": {"2026-01-14": {}, "2026-01-15": {"gpt-5.4": 1200, "gpt-5.4-mini": 300}},
        "daily_failures": {"2026-01-14": (0, 0), "2026-01-15": (10, 2)},
        "recent": [
            {
                "finished_at": NOW - 5,
                "client": "OpenClaw",
                "endpoint": "chat.completions",
                "model": "gpt-5.4",
                "status": 200,
                "input_tokens": 900,
                "output_tokens": 120,
                "summary": "OpenClaw | gpt-5.4 stream",
            }
        ],
    }
    return PageData(**{**base, **kw})


def parsed(data: PageData) -> Elements:
    elements = Elements()
    elements.feed(render_page(data).decode())
    return elements


def test_accounts_with_their_emails_quota_bars_and_cooldown() -> None:
    p = parsed(page())
    assert [a.get("data-used") for a in p.having("svg", "quota-bar")] == ["42", "95"]  # b has no quota yet
    emails = [t for t in p.text if "@example.com" in t]
    assert "a@example.com" in emails and "b@example.com" in emails
    assert any(t.startswith("cooling down until") for t in p.text)


def test_tokens_are_stacked_per_day_by_model() -> None:
    p = parsed(page())
    bars = p.having("rect", "bar")
    assert [(b["data-day"], b["data-model"], b["data-tokens"]) for b in bars] == [
        ("2026-01-15", "gpt-5.4", "1200"),
        ("2026-01-15", "gpt-5.4-mini", "300"),
    ]
    (big, small) = bars
    assert float(big["y"] or 0) > float(small["y"] or 0)  # the second model sits on top of the first
    assert big["fill"] == PALETTE[0] and small["fill"] == PALETTE[1]


def test_models_beyond_the_palette_are_stacked_as_other() -> None:
    many = {f"model-{i}": 100 + i for i in range(len(PALETTE) + 3)}
    p = parsed(page(daily_tokens={"2026-01-15": many}))
    models = [b["data-model"] for b in p.having("rect", "bar")]
    assert len(models) == len(PALETTE) and models[-1] == "other"
    assert sum(int(b["data-tokens"] or 0) for b in p.having("rect", "bar")) == sum(many.values())


def test_failures_per_day() -> None:
    bars = parsed(page()).having("rect", "failure-bar")
    assert [(b["data-day"], b["data-failures"], b["data-requests"]) for b in bars] == [
        ("2026-01-14", "0", "0"),
        ("2026-01-15", "2", "10"),
    ]


def test_the_last_requests_with_model_and_tokens() -> None:
    p = parsed(page())
    assert len(p.having("tr", "request")) == 1
    assert "gpt-5.4" in p.text and "900" in p.text and "120" in p.text and "OpenClaw | gpt-5.4 stream" in p.text


def test_everything_from_requests_is_escaped() -> None:
    hostile_row = {"client": HOSTILE, "model": HOSTILE, "summary": HOSTILE, "endpoint": "x'><b>", "account": HOSTILE}
    html = render_page(
        page(
            recent=[hostile_row],
            daily_tokens={"2026-01-15": {HOSTILE: 10}},
            accounts=[{"label": HOSTILE, "email": HOSTILE, "problem": HOSTILE}],
        )
    ).decode()
    assert "<script" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_no_script_and_nothing_external() -> None:
    html = render_page(page()).decode()
    assert "<script" not in html and not re.search(r"(src|href)=", html)
    assert "script-src" not in PAGE_HEADERS["content-security-policy"]  # default-src 'none' forbids scripts


def test_pinned_and_excluded_accounts_say_so() -> None:
    p = parsed(page(accounts=[{"label": "a@x", "pinned": True}, {"label": "b@x", "excluded": True}]))
    assert "ok, pinned" in p.text and "excluded" in p.text


def test_database_trouble_is_shown() -> None:
    p = parsed(page(database={"error": "DatabaseError: file is not a database", "rows_lost": 4, "rows_dropped": 0}))
    assert any("file is not a database" in t for t in p.text) and "4 rows not logged" in p.text


def test_an_empty_log_renders() -> None:
    p = parsed(page(recent=[], daily_tokens={"2026-01-15": {}}, daily_failures={"2026-01-15": (0, 0)}))
    assert "No requests logged yet." in p.text and p.having("rect", "bar") == []


def test_with_the_log_off_the_page_says_so_instead_of_empty_history() -> None:
    p = parsed(page(database=None, recent=[], daily_tokens={}, daily_failures={}))
    text = " ".join(p.text)
    assert "The request log is off" in text and "gateway_usage_log=false" in text
    assert "Last 0 requests" not in text and "No requests logged yet." not in text
    assert [a for tag, a in p.tags if tag == "svg" and a.get("id")] == []  # no empty charts
    assert "a@example.com" in text  # the accounts still show
