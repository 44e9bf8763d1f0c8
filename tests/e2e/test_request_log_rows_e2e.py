"""Which requests become request-log rows, and with which endpoint and client status: refusals on the gateway's
own pages are no API requests, a refused API request names its endpoint, and a flow that ended in an error records
the status its client actually got. Real mitmdump with the addon, real clients, rows read from the SQLite file once
the gateway has stopped (it writes what is queued on the way out)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess

KEY = "row-test-key"
MESSAGES: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture
def keyed(backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path: Path) -> Iterator[GatewayProcess]:
    with GatewayProcess(backend.port, login_home[0], tmp_path, extra=["--set", f"gateway_api_key={KEY}"]) as gw:
        yield gw


def rows(gw: GatewayProcess) -> list[dict[str, Any]]:
    """Every row the gateway wrote, oldest first, after stopping it."""
    gw.stop()
    with closing(sqlite3.connect(gw.workdir / "gateway-home" / "usage.sqlite3")) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM requests ORDER BY id")]


def test_refusals_on_the_gateway_s_own_pages_are_not_logged(keyed: GatewayProcess) -> None:
    auth = {"authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=keyed.base_url, timeout=10) as client:
        refused = [
            client.post("/_gateway/status", headers=auth),
            client.request("DELETE", "/metrics", headers=auth),
            client.request("OPTIONS", "/_gateway/health"),
            client.get("/_gateway/status"),  # no key
            client.get("/_gateway/nothing"),  # no key, no such page
            client.get("/_gateway/nothing", headers=auth),
        ]
        assert [r.status_code for r in refused] == [405, 405, 405, 401, 401, 404]
        assert refused[0].headers["allow"] == "GET, HEAD"
        assert client.get("/v1/models", headers=auth).status_code == 200  # the one API request
    assert [(r["endpoint"], r["status"]) for r in rows(keyed)] == [("models", 200)]


def test_a_request_refused_for_its_key_names_its_endpoint(keyed: GatewayProcess) -> None:
    with openai.OpenAI(base_url=keyed.base_url + "/v1", api_key="wrong", max_retries=0, timeout=10) as client:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    ((endpoint, status, failure),) = [(r["endpoint"], r["status"], r["failure"]) for r in rows(keyed)]
    assert (endpoint, status, failure) == ("chat.completions", 401, "local")


@pytest.mark.parametrize("stream, status", [(True, 200), (False, 502)], ids=["streamed", "buffered"])
def test_an_answer_cut_off_upstream_records_the_status_the_client_got(
    keyed: GatewayProcess, backend: FakeCodexBackend, stream: bool, status: int
) -> None:
    """Streamed: the 200 went out before the body broke off. Buffered: mitmproxy answers with its own 502."""
    backend.enqueue(SSEScript(ev.text(["never ", "finished"], usage=ev.usage(5, 2)), cut_after=4))
    with httpx.Client(timeout=10) as client:
        body = {"model": "gpt-5.4", "messages": MESSAGES, "stream": stream}
        with client.stream(
            "POST", keyed.base_url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
        ) as answer:
            assert answer.status_code == status
            if stream:
                with pytest.raises(httpx.RemoteProtocolError):  # the chunked body never ends properly
                    answer.read()
    ((row_status, failure),) = [(r["status"], r["failure"]) for r in rows(keyed)]
    assert (row_status, failure) == (status, "upstream_cut")
