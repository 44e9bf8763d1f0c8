"""mitmweb with the addon, looked at in a real browser: the flow table shows the summary comment and the mark.

Needs a Chromium binary (Debian: `apt-get install -y --no-install-recommends chromium`); skips without one.
Chromium runs headless with `--dump-dom` and a virtual-time budget, so the page's scripts (which fetch the flows
and render the table) finish before the DOM is printed; no wall-clock waits are involved.
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import free_port
from tests.e2e.chromium import CHROMIUM
from tests.e2e.chromium import MISSING
from tests.e2e.chromium import render

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=MISSING)


class FlowTable(HTMLParser):
    """Collects mitmweb's flow table: header names and, per row, the text of each `col-*` cell."""

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[str] = []
        self.rows: list[dict[str, str]] = []
        self._in_table = 0
        self._cell: str | None = None
        self._tag: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "div" and "flow-table" in classes:
            self._in_table = 1
        elif self._in_table and tag == "div":
            self._in_table += 1
        if not self._in_table:
            return
        if tag == "tr" and "has-request" in classes:
            self.rows.append({})
        column = next((c[4:] for c in classes if c.startswith("col-") and c.count("-") == 1), None)
        if tag in ("td", "th") and column:
            self._cell, self._tag = column, tag
            if tag == "td" and self.rows:
                self.rows[-1][column] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._in_table and tag == "div":
            self._in_table -= 1
        if tag == self._tag:
            self._cell = self._tag = None

    def handle_data(self, data: str) -> None:
        if self._cell is None:
            return
        if self._tag == "th" and data.strip():
            self.headers.append(data.strip())
        elif self._tag == "td" and self.rows:
            self.rows[-1][self._cell] += data


@pytest.fixture
def mitmweb(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path: Path
) -> Iterator[tuple[GatewayProcess, str, str]]:
    web_port = free_port()
    password = secrets.token_urlsafe(12)
    extra = [
        *("--set", f"web_port={web_port}", "--set", "web_open_browser=false", "--set", f"web_password={password}"),
    ]
    with GatewayProcess(backend.port, login_home[0], tmp_path / "web", tool="mitmweb", extra=extra) as gw:
        web = f"http://127.0.0.1:{web_port}"
        deadline = time.monotonic() + 15
        while True:  # the proxy listener is up; wait for the web UI too
            try:
                httpx.get(web + "/flows", headers={"Authorization": f"Bearer {password}"}, timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # start-up polling, not a timing assertion
        yield gw, web, password


def test_flow_table_shows_the_summary_and_the_failure_mark(
    mitmweb: tuple[GatewayProcess, str, str], backend: FakeCodexBackend, tmp_path: Path
) -> None:
    gw, web, password = mitmweb
    chat = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(gw.base_url + "/v1/chat/completions", json=chat, timeout=20).status_code == 200
    backend.enqueue(ErrorScript(500, {"detail": "Internal server error"}))
    assert httpx.post(gw.base_url + "/v1/chat/completions", json=chat, timeout=20).status_code == 500

    auth = {"Authorization": f"Bearer {password}"}
    flows: list[dict[str, Any]] = httpx.get(web + "/flows", headers=auth).json()
    assert httpx.get(web + "/options", headers=auth).json()["web_columns"]["value"][-1] == "comment"
    comments = [f["comment"] for f in flows]
    assert (
        comments[0].startswith("python-httpx/")
        and " | gpt-5.4 non-stream | 1 msgs, 0 tools | finish stop" in comments[0]
    )
    assert comments[1].startswith("FAILED upstream 500: ")
    # The addon's content views and commands are registered in this mitmweb too.
    view = httpx.get(f"{web}/flows/{flows[0]['id']}/response/content/auto.json", headers=auth).json()
    assert view["view_name"] == "Chat" and 'content: "Hello from fake Codex"' in view["text"].splitlines()
    assert {"codex.usage", "codex.runs", "codex.summary", "codex.annotate"} <= set(
        httpx.get(web + "/commands", headers=auth).json()
    )

    table = FlowTable()
    for budget in (2_000, 10_000):  # a slow machine may need more virtual time for the page's fetches
        table = FlowTable()
        table.feed(render(f"{web}/?token={password}", tmp_path / f"chromium-{budget}", budget))
        if len(table.rows) == len(flows):
            break
    assert "Comment" in table.headers
    assert [html.unescape(row["comment"]) for row in table.rows] == comments
    assert [row["path"] for row in table.rows] == [
        f"http://127.0.0.1:{backend.port}/backend-api/codex/responses",
        f"\u26a0http://127.0.0.1:{backend.port}/backend-api/codex/responses",
    ]


def test_mitmweb_keeps_the_bodies_that_mitmdump_sheds(mitmweb: tuple[GatewayProcess, str, str]) -> None:
    """mitmweb shows finished flows, so the gateway keeps their bodies there (mitmdump drops them, see AnswerWriter):
    the upstream request, a streamed answer's raw Codex SSE, and a buffered answer's upstream stream in memory."""
    gw, web, password = mitmweb
    auth = {"Authorization": f"Bearer {password}"}
    for stream in (True, False):
        chat = {"model": "gpt-5.4", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(gw.base_url + "/v1/chat/completions", json=chat, timeout=20).status_code == 200
    streamed, buffered = httpx.get(web + "/flows", headers=auth).json()
    for flow in (streamed, buffered):
        sent = httpx.get(f"{web}/flows/{flow['id']}/request/content.data", headers=auth).content
        assert b'"input":[' in sent and b'"store":false' in sent
    raw = httpx.get(f"{web}/flows/{streamed['id']}/response/content.data", headers=auth).content
    assert raw.startswith(b"event: response.created\n")
    view = httpx.get(f"{web}/flows/{buffered['id']}/response/content/Codex%20SSE.json", headers=auth).json()
    assert view["text"].splitlines()[1].startswith("response.created")
