"""The status page `/_gateway/` in a real headless Chromium: behind the gateway key (HTTP Basic), with two
accounts (one cooling down), a chart and the last requests; a screenshot is taken and the DOM checked for what a
person looks for. Needs a Chromium binary (see test_mitmweb_browser.py); skips without one.

Run with CODEX_GATEWAY_SCREENSHOT=path to keep the screenshot (the README's picture is made that way).
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path

import openai
import pytest
from codex_gateway.inspect.usage_log import DB_NAME
from codex_gateway.inspect.usage_log import connect
from codex_gateway.inspect.usage_log import insert_rows
from codex_gateway.inspect.usage_log import migrate
from codex_gateway.inspect.usage_row import RequestRow

from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_events import text
from scripts.fakes.codex_events import usage
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import write_login
from tests.e2e.chromium import CHROMIUM
from tests.e2e.chromium import MISSING
from tests.e2e.chromium import render
from tests.e2e.chromium import run_headless

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)

KEY = "page-key-" + "7" * 8
LIMIT = {
    "error": {"type": "usage_limit_reached", "message": "The usage limit has been reached", "resets_in_seconds": 3600}
}


HISTORY_MODELS = ("gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex")


def seed_history(home: Path) -> tuple[int, int]:
    """Two weeks of earlier requests (as an earlier gateway process left them): (rows, tokens)."""
    rows = []
    now = time.time()
    for days_ago in range(1, 14):
        for i, model in enumerate(HISTORY_MODELS):
            tokens = 2000 + 700 * ((days_ago * (i + 2)) % 7) if (days_ago + i) % 4 else 0
            if tokens:
                at = now - days_ago * 86400 + i
                rows.append(RequestRow(at, "chat.completions", "OpenClaw", model=model, input_tokens=tokens))
        if days_ago % 3 == 0:
            rows.append(RequestRow(now - days_ago * 86400, "chat.completions", "curl", failure="upstream_status"))
    with closing(connect(home / DB_NAME)) as conn:
        migrate(conn)
        insert_rows(conn, rows, pid=1)
    return len(rows), sum(row.input_tokens for row in rows)


class Page(HTMLParser):
    """What a person looks at: texts, the SVG bars, the chart, the rows of the last requests."""

    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.quota_bars: list[dict[str, str | None]] = []
        self.chart_bars: list[dict[str, str | None]] = []
        self.charts: set[str] = set()
        self.rows: list[dict[str, str]] = []
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "svg" and "quota-bar" in classes:
            self.quota_bars.append(a)
        if tag == "svg" and a.get("id"):
            self.charts.add(str(a["id"]))
        if tag == "rect" and "bar" in classes:
            self.chart_bars.append(a)
        if tag == "tr" and "request" in classes:
            self.rows.append({})
        if tag == "td" and self.rows and classes:
            self._cell = classes[-1] if classes[0] == "num" else classes[0]
            self.rows[-1].setdefault(self._cell, "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None and self.rows:
            self.rows[-1][self._cell] += data


def test_the_status_page_in_a_browser(backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path) -> None:
    write_login(tmp_path / "codex", issuer.issue(issuer.add_account("alice@example.com")).auth_json())
    second = issuer.issue(issuer.add_account("bob@example.com"))
    accounts = tmp_path / "gw" / "gateway-home" / "accounts"
    write_login(accounts, second.auth_json())
    (accounts / "auth.json").rename(accounts / f"{second.account_id}.json")
    seeded, history = seed_history(accounts.parent)
    extra = ["--set", f"gateway_api_key={KEY}"]
    with GatewayProcess(backend.port, tmp_path / "codex", tmp_path / "gw", extra=extra) as gw:
        with openai.OpenAI(base_url=gw.base_url + "/v1", api_key=KEY, max_retries=0, timeout=20) as client:
            backend.enqueue(ErrorScript(429, LIMIT))  # the first account cools down; the request moves on
            client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "one"}])
            for i in range(3):
                client.chat.completions.create(model="gpt-5.4-mini", messages=[{"role": "user", "content": f"{i}"}])
            backend.enqueue(text("The last answer.", usage=usage(1234, 56, cached=1024, reasoning=7)))
            last = client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "last"}])
        assert last.usage is not None and last.usage.prompt_tokens == 1234

        url = f"http://user:{KEY}@127.0.0.1:{gw.port}/_gateway/"
        screenshot = tmp_path / "status-page.png"
        _screenshot(url, tmp_path / "profile-shot", screenshot)
        dom = render(url, tmp_path / "profile-dom", 2_000)
        refused = render(f"http://127.0.0.1:{gw.port}/_gateway/", tmp_path / "profile-refused", 2_000)

    assert screenshot.stat().st_size > 10_000  # a real picture, not an error page
    if target := os.environ.get("CODEX_GATEWAY_SCREENSHOT"):
        shutil.copyfile(screenshot, target)
    page = Page()
    page.feed(dom)
    texts = " ".join(page.text)
    assert "alice@example.com" in texts and "bob@example.com" in texts
    assert "cooling down until" in texts  # the account that hit its limit
    assert {"tokens-chart", "failures-chart"} <= page.charts
    assert {bar["data-model"] for bar in page.chart_bars} == set(HISTORY_MODELS)
    assert len({bar["data-day"] for bar in page.chart_bars}) == 14  # today and the 13 days before
    assert sum(int(bar["data-tokens"] or 0) for bar in page.chart_bars) == history + 1234 + 56 + 4 * (11 + 5)
    # both accounts, 5 h and week, at what the fake backend's x-codex headers report
    assert [(bar["data-window"], bar["data-used"]) for bar in page.quota_bars] == [
        ("primary", "12"),
        ("secondary", "3"),
    ] * 2
    newest = page.rows[0]
    assert (newest["model"], newest["input_tokens"], newest["cached_tokens"], newest["output_tokens"]) == (
        "gpt-5.4",
        "1234",
        "1024",
        "56",
    )
    assert newest["reasoning_tokens"] == "7" and len(page.rows) == min(50, seeded + 5)
    assert KEY not in dom and "alice@example.com" not in refused


def _screenshot(url: str, profile: Path, out: Path) -> None:
    run_headless(url, profile, "--hide-scrollbars", "--window-size=1280,1250", f"--screenshot={out}")
    assert out.exists()
