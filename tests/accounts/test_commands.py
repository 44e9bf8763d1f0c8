"""The account commands as mitmweb's command bar runs them (`master.commands.execute`), against the addon's pool."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.token_store import atomic_write_json
from codex_gateway.addon import CodexGateway
from mitmproxy import exceptions
from mitmproxy.proxy import mode_specs
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

from scripts.fakes.codex_backend import USAGE_PATH
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import usage_payload
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens

CHAT = orjson.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer(access_ttl=30 * 24 * 3600) as fake:
        yield fake


@pytest.fixture
def backend() -> Iterator[FakeCodexBackend]:
    with FakeCodexBackend() as fake:
        yield fake


@pytest.fixture
def logins(issuer: FakeIssuer, tmp_path: Path) -> tuple[IssuedTokens, IssuedTokens]:
    a = issuer.issue(issuer.add_account("a@example.com"))
    b = issuer.issue(issuer.add_account("b@example.com"))
    atomic_write_json(tmp_path / "codex" / "auth.json", a.auth_json(format_iso(1_700_000_000)))
    atomic_write_json(tmp_path / "gw" / "accounts" / "b.json", b.auth_json(format_iso(1_700_000_000)))
    return a, b


@pytest.fixture
def gateway(
    tmp_path: Path, logins: tuple[IssuedTokens, IssuedTokens], backend: FakeCodexBackend, issuer: FakeIssuer
) -> Iterator[tuple[CodexGateway, taddons.context]]:
    gw = CodexGateway()
    with taddons.context(gw) as tctx:
        tctx.configure(
            gw,
            codex_home=str(tmp_path / "codex"),
            gateway_home=str(tmp_path / "gw"),
            codex_upstream=backend.codex_base,
            codex_auth_issuer=issuer.url,
        )
        yield gw, tctx


def execute(tctx: taddons.context, line: str) -> str:
    return str(tctx.master.commands.execute(line))


async def account_of_next_request(gw: CodexGateway) -> str:
    f = tflow.tflow(req=tutils.treq(method=b"POST", path=b"/v1/chat/completions", content=CHAT))
    f.client_conn.proxy_mode = mode_specs.ProxyMode.parse("reverse:http://x")
    await gw.request(f)
    assert f.response is None
    gw.access.release(f.id)  # type: ignore[union-attr]
    return f.request.headers["ChatGPT-Account-ID"]


async def test_use_pins_and_auto_unpins(
    gateway: tuple[CodexGateway, taddons.context], logins: tuple[IssuedTokens, IssuedTokens]
) -> None:
    gw, tctx = gateway
    a, b = logins
    assert "pinned b@example.com" in execute(tctx, "codex.use b@example.com")
    assert {await account_of_next_request(gw) for _ in range(3)} == {b.account_id}
    assert "PINNED" in execute(tctx, "codex.accounts")
    execute(tctx, "codex.auto")
    execute(tctx, f"codex.exclude {b.account_id}")
    assert {await account_of_next_request(gw) for _ in range(3)} == {a.account_id}
    assert "included" in execute(tctx, "codex.include b@example.com")


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("codex.use nobody@example.com", "no account matches 'nobody@example.com'"),
        ("codex.exclude nobody", "no account matches"),
        ("codex.export /tmp/x.json", "name the accounts to export, or give --all"),
        ("codex.import /nonexistent/file.json", "cannot read /nonexistent/file.json"),
        ("codex.apply_codex nobody", "no account matches"),
        ("codex.quota nobody", "no account matches"),
    ],
)
async def test_bad_input_is_a_one_line_error_and_changes_nothing(
    gateway: tuple[CodexGateway, taddons.context], tmp_path: Path, line: str, complaint: str
) -> None:
    _, tctx = gateway
    before = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    with pytest.raises(exceptions.CommandError) as raised:
        execute(tctx, line)
    assert complaint in str(raised.value) and "\n" not in str(raised.value)
    assert {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()} == before


async def test_export_import_and_apply_codex(
    gateway: tuple[CodexGateway, taddons.context], logins: tuple[IssuedTokens, IssuedTokens], tmp_path: Path
) -> None:
    _, tctx = gateway
    a, b = logins
    out = tmp_path / "bundle.json"
    assert "exported 2 account(s)" in execute(tctx, f"codex.export {out} --all")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "unchanged" in execute(tctx, f"codex.import {out}")
    assert "now runs as b@example.com" in execute(tctx, "codex.apply_codex b@example.com")
    assert orjson.loads((tmp_path / "codex" / "auth.json").read_bytes())["tokens"]["account_id"] == b.account_id


async def test_quota_refresh_reads_in_the_background(
    gateway: tuple[CodexGateway, taddons.context],
    logins: tuple[IssuedTokens, IssuedTokens],
    backend: FakeCodexBackend,
) -> None:
    gw, tctx = gateway
    a, _ = logins
    backend.usage[a.account_id] = (200, usage_payload(77, 5))
    assert "reading the quota of 2 account(s)" in execute(tctx, "codex.quota.refresh")
    assert gw.account_commands.refreshing is not None
    await gw.account_commands.refreshing
    assert len([r for r in backend.requests if r.route == USAGE_PATH]) == 2
    table = execute(tctx, "codex.quota a@example.com")
    assert "77% of 5 h" in table and "b@example.com" not in table
