"""`scripts/accounts.py` on the shared store: `migrate --to redis://…` and back, the Codex CLI's login left alone."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.token_store import atomic_write_json

from scripts.fakes.fake_issuer import FakeIssuer
from scripts.redis_server import RedisServer
from scripts.redis_server import missing_reason

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    if (why := missing_reason()) is not None:
        pytest.skip(why)
    with RedisServer(tmp_path) as s:
        yield s


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


def accounts(tmp_path: Path, issuer: FakeIssuer, *args: str, **env_: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_"))}
    env |= {"CODEX_AUTH_ISSUER": issuer.url, "CODEX_HOME": str(tmp_path / "codex")}
    env |= {"CODEX_GATEWAY_HOME": str(tmp_path / "gateway"), **env_}
    cmd = [sys.executable, "scripts/accounts.py", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_migrate_to_redis_and_back_keeps_every_gateway_login_and_leaves_auth_json_alone(
    tmp_path: Path, issuer: FakeIssuer, server: RedisServer
) -> None:
    cli = issuer.issue(issuer.add_account("cli@example.com"))
    atomic_write_json(tmp_path / "codex" / "auth.json", cli.auth_json(format_iso(time.time())))
    auth_json = (tmp_path / "codex" / "auth.json").read_bytes()
    ours = [issuer.issue(issuer.add_account(f"{n}@example.com")) for n in ("a", "b")]
    for tokens in ours:
        atomic_write_json(tmp_path / "gateway" / "accounts" / f"{tokens.account_id}.json", tokens.auth_json())
    there = accounts(tmp_path, issuer, "migrate", "--to", server.url)
    assert there.returncode == 0, there.stderr
    assert "not copied: it is the Codex CLI's login" in there.stdout
    listed = accounts(tmp_path, issuer, "list", "--json", CODEX_GATEWAY_STATE=server.url)
    assert sorted(r["email"] for r in orjson.loads(listed.stdout)) == ["a@example.com", "b@example.com"]
    back_home = tmp_path / "restored"
    back = accounts(tmp_path, issuer, "migrate", "--to", "files", CODEX_GATEWAY_STATE=server.url,
                    CODEX_GATEWAY_HOME=str(back_home))  # fmt: skip
    assert back.returncode == 0, back.stderr
    restored = {p.stem for p in (back_home / "accounts").glob("*.json")}
    assert restored == {t.account_id for t in ours}
    assert (tmp_path / "codex" / "auth.json").read_bytes() == auth_json, "the Codex CLI's login is untouched"


def test_a_command_on_an_unreachable_store_says_so_without_the_password(
    tmp_path: Path, issuer: FakeIssuer, server: RedisServer
) -> None:
    server.kill()
    url = server.url.replace("redis://", "redis://:hunter2@")
    done = accounts(tmp_path, issuer, "status", CODEX_GATEWAY_STATE=url)
    assert done.returncode == 1
    assert "cannot reach redis://***@127.0.0.1:" in done.stderr and "hunter2" not in done.stderr
