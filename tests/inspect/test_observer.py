"""observer: the gateway's own routes through the addon's request hook, keys, and one row per finished flow."""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import orjson
import pytest
from codex_gateway.addon import CodexGateway
from codex_gateway.inspect.observer import key_matches
from codex_gateway.inspect.observer import public_account
from codex_gateway.inspect.usage_log import DB_NAME
from mitmproxy import http
from mitmproxy.proxy import mode_specs
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

from scripts.gateway_process import write_codex_home

KEY = "gw-key-123"


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[CodexGateway, taddons.context]]:
    write_codex_home(tmp_path, email="a@example.com")
    gw = CodexGateway()
    with taddons.context(gw) as tctx:
        tctx.configure(
            gw,
            codex_home=str(tmp_path),
            gateway_home=str(tmp_path / "gw"),
            codex_upstream="http://127.0.0.1:9/backend-api/codex",
        )
        yield gw, tctx
        gw.observer.close()


def _flow(path: str, method: str = "GET", headers: dict[str, str] | None = None) -> http.HTTPFlow:
    f = tflow.tflow(req=tutils.treq(method=method.encode(), path=path.encode(), content=b""))
    f.request.headers.clear()
    f.request.headers.update(headers or {})
    f.client_conn.proxy_mode = mode_specs.ProxyMode.parse("reverse:http://x")
    return f


async def _get(gw: CodexGateway, path: str, method: str = "GET", **headers: str) -> http.Response:
    f = _flow(path, method, {k.replace("_", "-"): v for k, v in headers.items()})
    await gw.request(f)
    assert f.response is not None
    return f.response


def _basic(password: str, user: str = "anyone") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- keys ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers, ok",
    [
        ({"authorization": f"Bearer {KEY}"}, True),
        ({"authorization": f"bearer  {KEY} "}, True),
        ({"x-api-key": KEY}, True),
        ({"authorization": _basic(KEY)}, True),
        ({"authorization": _basic(KEY, user="")}, True),
        ({"authorization": "Bearer wrong"}, False),
        ({"authorization": _basic("wrong")}, False),
        ({"authorization": "Basic !!!not-base64"}, False),
        ({"authorization": f"Token {KEY}"}, False),
        ({}, False),
    ],
)
def test_key_matches(headers: dict[str, str], ok: bool) -> None:
    assert key_matches(http.Headers(**headers) if headers else http.Headers(), KEY) is ok


def test_public_account_holds_no_account_id_nor_file() -> None:
    row = {"label": "a@x", "email": "a@x", "account": "acct-12…", "account_id": "acct-1234", "file": "/home/a.json"}
    shown = public_account(row)
    assert shown["label"] == "a@x" and not {"account", "account_id", "file"} & set(shown)


def test_public_account_says_pinned_and_excluded() -> None:
    shown = public_account({"label": "a@x", "pinned": True, "excluded": False})
    assert (shown["pinned"], shown["excluded"]) == (True, False)


# -- routes ----------------------------------------------------------------------------------------------------


async def test_health_needs_no_key(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, tctx = gateway
    tctx.configure(gw, gateway_api_key=KEY)
    response = await _get(gw, "/_gateway/health")
    assert (response.status_code, orjson.loads(response.content)) == (200, {"status": "ok"})


@pytest.mark.parametrize("path", ["/_gateway/status", "/metrics"])
async def test_status_and_metrics_need_the_key_when_set(
    gateway: tuple[CodexGateway, taddons.context], path: str
) -> None:
    gw, tctx = gateway
    tctx.configure(gw, gateway_api_key=KEY)
    refused = await _get(gw, path)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
    assert orjson.loads(refused.content)["error"]["code"] == "invalid_api_key"
    assert (await _get(gw, path, authorization=f"Bearer {KEY}")).status_code == 200


async def test_the_page_asks_a_browser_for_the_key(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, tctx = gateway
    tctx.configure(gw, gateway_api_key=KEY)
    refused = await _get(gw, "/_gateway/")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Basic realm="codex-gateway"'
    page = await _get(gw, "/_gateway/", authorization=_basic(KEY))
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert b"a@example.com" in page.content


async def test_status_shows_accounts_without_secrets(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    doc = orjson.loads((await _get(gw, "/_gateway/status")).content)
    assert doc["upstream"] == "http://127.0.0.1:9/backend-api/codex" and doc["uptime_seconds"] >= 0
    (account,) = doc["accounts"]
    assert (account["label"], account["plan"]) == ("a@example.com", "plus") and "account_id" not in account
    assert doc["database"] is None  # the log opens once the gateway runs (never in a test's addon by accident)


async def test_the_database_opens_when_the_gateway_runs(
    gateway: tuple[CodexGateway, taddons.context], tmp_path: Path
) -> None:
    gw, _ = gateway
    assert not (tmp_path / "gw" / DB_NAME).exists()
    gw.observer.running()
    doc = orjson.loads((await _get(gw, "/_gateway/status")).content)
    assert doc["database"]["ok"] is True and doc["database"]["totals"]["rows"] == 0
    assert (tmp_path / "gw" / DB_NAME).exists()


async def test_usage_log_off_opens_no_database(gateway: tuple[CodexGateway, taddons.context], tmp_path: Path) -> None:
    gw, tctx = gateway
    tctx.configure(gw, gateway_usage_log=False)
    gw.observer.running()
    assert gw.observer.log is None and not (tmp_path / "gw" / DB_NAME).exists()


@pytest.mark.parametrize("path", ["/_gateway/status", "/metrics", "/_gateway/"])
async def test_local_routes_are_read_only(gateway: tuple[CodexGateway, taddons.context], path: str) -> None:
    gw, _ = gateway
    response = await _get(gw, path, method="POST")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


async def test_metrics_count_finished_flows_once(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    f = _flow("/v1/nowhere")
    await gw.request(f)  # a local 404, recorded
    gw.error(f)  # … and then the client goes away: still one request
    text = (await _get(gw, "/metrics")).content.decode()
    assert 'codex_gateway_requests_total{endpoint="unknown",failure="local",model="none",status="404"} 1.0' in text


async def test_gateway_pages_are_not_requests_in_the_metrics(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    for _ in range(3):
        await _get(gw, "/_gateway/health")
    assert "codex_gateway_requests_total{" not in (await _get(gw, "/metrics")).content.decode()


def test_a_gateway_without_the_log_never_loads_sqlite() -> None:
    code = (
        "import sys; from codex_gateway.addon import CodexGateway; CodexGateway(); "
        "from codex_gateway.inspect import commands, metrics, usage_report; "
        "assert '_sqlite3' not in sys.modules, 'SQLite loaded'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", ["/_gateway/status", "/_gateway/"])
async def test_a_read_that_finds_the_log_corrupt_makes_it_not_ok(
    gateway: tuple[CodexGateway, taddons.context], tmp_path: Path, path: str
) -> None:
    gw, _ = gateway
    gw.observer.running()
    assert orjson.loads((await _get(gw, "/_gateway/status")).content)["database"]["ok"] is True
    db = tmp_path / "gw" / DB_NAME
    with closing(sqlite3.connect(db)) as other:  # everything in the main file, so its header is what readers see
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    with db.open("r+b") as file:
        file.write(b"definitely not SQLite")  # the writer's open connection goes on from its cached pages
    await _get(gw, path)
    assert "codex_gateway_usage_log_ok 0.0" in (await _get(gw, "/metrics")).content.decode()
    state = orjson.loads((await _get(gw, "/_gateway/status")).content)["database"]
    assert state["ok"] is False and "not a database" in state["error"]
