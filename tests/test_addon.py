"""The addon's hooks without a proxy: mitmproxy's own test helpers (taddons, tflow)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from codex_gateway import addon as addon_module
from codex_gateway.addon import CodexGateway
from mitmproxy import http
from mitmproxy.proxy import mode_specs
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.test import tutils

from scripts.gateway_process import ADDONS
from scripts.gateway_process import write_codex_home

CHAT = orjson.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]})


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[CodexGateway, taddons.context]]:
    write_codex_home(tmp_path)
    gw = CodexGateway()
    with taddons.context(gw) as tctx:
        tctx.configure(
            gw,
            codex_home=str(tmp_path),
            gateway_home=str(tmp_path / "gw"),
            codex_upstream="http://127.0.0.1:9/backend-api/codex",
        )
        yield gw, tctx


def _flow(path: str = "/v1/chat/completions", body: bytes = CHAT, method: str = "POST", mode: str = "reverse:http://x"):
    f = tflow.tflow(req=tutils.treq(method=method.encode(), path=path.encode(), content=body))
    f.client_conn.proxy_mode = mode_specs.ProxyMode.parse(mode)
    return f


async def test_translates_in_place(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    f = _flow()
    await gw.request(f)
    assert f.response is None
    assert f.request.url == "http://127.0.0.1:9/backend-api/codex/responses"
    assert orjson.loads(f.request.content)["store"] is False


async def test_hook_exception_answers_500_and_forwards_nothing(
    gateway: tuple[CodexGateway, taddons.context], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw, _ = gateway

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(addon_module, "prepare_upstream", boom)
    f = _flow()
    await gw.request(f)
    assert f.response is not None and f.response.status_code == 500
    assert set(orjson.loads(f.response.content)["error"]) == {"message", "type", "param", "code"}
    assert f.request.path == "/v1/chat/completions"


@pytest.mark.parametrize("mode", ["regular", "upstream:http://proxy:3128"])
async def test_other_modes_are_left_alone(gateway: tuple[CodexGateway, taddons.context], mode: str) -> None:
    gw, _ = gateway
    f = _flow(mode=mode)
    await gw.request(f)
    assert f.response is None and f.request.path == "/v1/chat/completions"


async def test_loaded_flows_are_not_touched(gateway: tuple[CodexGateway, taddons.context]) -> None:
    gw, _ = gateway
    f = _flow()
    f.live = False
    await gw.request(f)
    assert f.response is None and f.request.path == "/v1/chat/completions"


async def test_missing_login_is_401_envelope(tmp_path: Path) -> None:
    gw = CodexGateway()
    with taddons.context(gw) as tctx:
        tctx.configure(gw, codex_home=str(tmp_path / "nowhere"), gateway_home=str(tmp_path / "gw"))
        f = _flow()
        await gw.request(f)
    assert f.response is not None and f.response.status_code == 401
    assert "codex login" in orjson.loads(f.response.content)["error"]["message"]


async def test_accounts_command_shows_the_login_without_tokens(
    gateway: tuple[CodexGateway, taddons.context], tmp_path: Path
) -> None:
    gw, tctx = gateway
    login = orjson.loads((tmp_path / "auth.json").read_bytes())["tokens"]
    table = tctx.command(gw.account_commands.accounts)
    assert "user@example.com" in table
    assert all(secret not in table for secret in (login["access_token"], login["refresh_token"], login["id_token"]))


@pytest.mark.parametrize("version, authority", [(b"HTTP/1.1", b""), (b"HTTP/2.0", b"gateway.local:8080")])
@pytest.mark.parametrize("upstream", ["http://127.0.0.1:9/backend-api/codex", "https://chatgpt.com/backend-api/codex/"])
async def test_the_upstream_request_is_what_mitmproxy_s_setters_would_make(
    tmp_path: Path, version: bytes, authority: bytes, upstream: str
) -> None:
    # The hook writes the request's fields directly; the result must equal the public setters' (url parts,
    # Host header, :authority of HTTP/2 clients, content-length).
    write_codex_home(tmp_path)
    gw = CodexGateway()
    with taddons.context(gw) as tctx:
        tctx.configure(gw, codex_home=str(tmp_path), gateway_home=str(tmp_path / "gw"), codex_upstream=upstream)
        f = tflow.tflow(
            req=tutils.treq(
                method=b"POST",
                path=b"/v1/chat/completions",
                content=CHAT,
                http_version=version,
                authority=authority,
                headers=http.Headers([(b"Host", b"gateway.local:8080"), (b"content-type", b"application/json")]),
            )
        )
        f.client_conn.proxy_mode = mode_specs.ProxyMode.parse("reverse:http://x")
        reference = f.request.copy()
        await gw.request(f)
    assert f.response is None
    sent = f.request
    up = urlsplit(upstream)
    reference.method = "POST"
    reference.scheme = up.scheme
    reference.host = up.hostname or ""
    reference.port = up.port or (443 if up.scheme == "https" else 80)
    reference.path = up.path.rstrip("/") + "/responses"
    reference.headers = http.Headers([field for field in sent.headers.fields if field[0] != b"content-length"])
    reference.content = sent.raw_content
    assert sent.get_state() == reference.get_state()
    assert sent.headers["Host"] == up.netloc and sent.headers["content-length"] == str(len(sent.raw_content or b""))
    assert sent.authority == ("" if not authority else up.netloc)


def test_server_replay_flag_follows_the_option() -> None:
    flag = addon_module._ServerReplayFlag()
    with taddons.context() as tctx:
        assert flag() is False  # no ServerPlayback addon: no option
        tctx.options.add_option("server_replay", Sequence[str], [], "flows to replay")
        assert flag() is False
        tctx.options.update(server_replay=["flows.mitm"])
        assert flag() is True
        tctx.options.update(server_replay=[])
        assert flag() is False
    with taddons.context() as tctx:  # a new master: its own options
        tctx.options.add_option("server_replay", Sequence[str], ["other.mitm"], "flows to replay")
        assert flag() is True


def test_the_anthropic_translation_loads_on_first_use_not_with_the_addon() -> None:
    """Its pydantic schema and state machine (about 3 MiB resident) stay out of a gateway no Anthropic client uses;
    the first Messages request loads them (tests/e2e/test_anthropic_e2e.py serves them)."""
    probe = (
        "import sys; import codex_gateway.addon; from codex_gateway.http import endpoints; "
        "print(sorted(m for m in sys.modules if m.startswith('codex_gateway.anthropic.')))"
    )
    env = {**os.environ, "PYTHONPATH": str(ADDONS)}
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    assert loaded.stdout.split() == ["['codex_gateway.anthropic.errors',", "'codex_gateway.anthropic.models']"]
