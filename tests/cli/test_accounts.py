"""`codex-gateway accounts` (and `scripts/accounts.py`) as users run them: pin, exclude, export, import,
apply-codex, quota; a refused command is one line on stderr and changes nothing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.accounts.token_store import atomic_write_json

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import usage_payload
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.fakes.fake_issuer import IssuedTokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer(access_ttl=30 * 24 * 3600) as fake:
        yield fake


@pytest.fixture
def env(tmp_path: Path, issuer: FakeIssuer) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_"))}
    base.update(
        CODEX_AUTH_ISSUER=issuer.url,
        CODEX_GATEWAY_HOME=str(tmp_path / "gateway"),
        CODEX_HOME=str(tmp_path / "codex"),
        PYTHONUNBUFFERED="1",
    )
    return base


@pytest.fixture
def logins(issuer: FakeIssuer, tmp_path: Path) -> tuple[IssuedTokens, IssuedTokens]:
    a = issuer.issue(issuer.add_account("a@example.com"))
    b = issuer.issue(issuer.add_account("b@example.com", plan="team"))
    atomic_write_json(tmp_path / "codex" / "auth.json", a.auth_json(format_iso(1_700_000_000)))
    atomic_write_json(tmp_path / "gateway" / "accounts" / f"{b.account_id}.json", b.auth_json())
    return a, b


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The installed command's code (`python -m codex_gateway.cli` = `codex-gateway`), from a foreign directory."""
    return subprocess.run(
        [sys.executable, "-m", "codex_gateway.cli", "accounts", *args],
        cwd="/",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/accounts.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def secrets_of(*logins: IssuedTokens) -> list[str]:
    return [s for t in logins for s in (t.access_token, t.refresh_token, t.id_token)]


def test_pin_and_exclusions_show_in_status(env: dict[str, str], logins: tuple[IssuedTokens, IssuedTokens]) -> None:
    a, b = logins
    assert cli(env, "use", "b@example.com").returncode == 0
    assert cli(env, "exclude", a.account_id).returncode == 0
    status = script(env, "status")  # the script in the checkout runs the same code
    assert status.returncode == 0
    lines = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
    assert "PINNED (every request)" in lines["b@example.com"]
    assert "excluded from automatic choice" in lines["a@example.com"]
    listed = cli(env, "list").stdout
    assert "pinned" in listed and "excluded" in listed
    assert cli(env, "auto").stdout.startswith("unpinned")
    assert cli(env, "include", "a@example.com").returncode == 0
    assert "PINNED" not in cli(env, "status").stdout


@pytest.mark.parametrize(
    ("args", "complaint", "status"),
    [
        (["use"], "the following arguments are required: target", 2),
        (["use", "nobody@example.com"], "no account matches 'nobody@example.com'", 1),
        (["exclude", "nobody"], "no account matches 'nobody'", 1),
        (["include", ""], "name an account", 1),
        (["apply-codex", "nobody"], "no account matches", 1),
        (["export"], "name the accounts to export, or give --all", 1),
        (["export", "--all", "a@example.com"], "not both", 1),
        (["export", "--all", "-o", "/nonexistent-dir/x.json"], "/nonexistent-dir does not exist", 1),
        (["import", "/nonexistent-dir/x.json"], "cannot read /nonexistent-dir/x.json", 1),
        (["quota", "nobody"], "no account matches", 1),
        (["quota", "--refresh", "--concurrency", "0"], "--concurrency must be at least 1", 1),
        (["quota", "--refresh", "--upstream", "ftp://x"], "--upstream must be an http(s) URL", 1),
        (["frobnicate"], "invalid choice: 'frobnicate'", 2),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(
    env: dict[str, str],
    logins: tuple[IssuedTokens, IssuedTokens],
    tmp_path: Path,
    args: list[str],
    complaint: str,
    status: int,
) -> None:
    cli(env, "exclude", "a@example.com")
    before = files(tmp_path)
    result = cli(env, *args)
    assert result.returncode == status
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("codex-gateway accounts") and complaint in result.stderr
    assert files(tmp_path) == before


def test_export_to_a_file_and_import_elsewhere(
    env: dict[str, str], logins: tuple[IssuedTokens, IssuedTokens], tmp_path: Path
) -> None:
    bundle = tmp_path / "logins.json"
    exported = cli(env, "export", "--all", "-o", str(bundle))
    assert exported.returncode == 0, exported.stderr
    assert "exported 2 account(s)" in exported.stdout and "warning:" in exported.stderr
    assert "holds the login credentials" in exported.stderr
    assert stat.S_IMODE(bundle.stat().st_mode) == 0o600
    assert not [s for s in secrets_of(*logins) if s in exported.stdout + exported.stderr]
    elsewhere = {**env, "CODEX_GATEWAY_HOME": str(tmp_path / "other"), "CODEX_HOME": str(tmp_path / "none")}
    imported = cli(elsewhere, "import", str(bundle))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.count("added as") == 2
    assert not [s for s in secrets_of(*logins) if s in imported.stdout]
    again = cli(elsewhere, "import", str(bundle))
    assert again.stdout.count("unchanged") == 2
    assert len(list((tmp_path / "other" / "accounts").glob("*.json"))) == 2


def test_export_without_a_file_prints_the_bundle_and_warns(
    env: dict[str, str], logins: tuple[IssuedTokens, IssuedTokens]
) -> None:
    result = cli(env, "export", "b@example.com")
    assert result.returncode == 0 and "warning:" in result.stderr
    assert [p["email"] for p in orjson.loads(result.stdout)["profiles"]] == ["b@example.com"]


def test_import_ai_zero_token_exports(env: dict[str, str], issuer: FakeIssuer, tmp_path: Path) -> None:
    t = issuer.issue(issuer.add_account("azt@example.com"))
    single = {
        "type": "codex",
        "access_token": t.access_token,
        "refresh_token": t.refresh_token,
        "id_token": t.id_token,
        "expired": "2030-01-01T00:00:00.000Z",
        "email": "azt@example.com",
        "account_id": t.account_id,
        "profile_id": f"openai-codex:{t.account_id}",
        "exported_at": "2026-05-11T00:00:00.000Z",
    }
    path = tmp_path / "azt.json"
    path.write_bytes(orjson.dumps({"type": "codex_profiles", "exported_at": "x", "profiles": [single]}))
    result = cli(env, "import", str(path))
    assert result.returncode == 0 and "azt@example.com" in result.stdout and "added" in result.stdout
    assert "azt@example.com" in cli(env, "status").stdout


def test_a_malformed_import_is_refused_whole(env: dict[str, str], tmp_path: Path, issuer: FakeIssuer) -> None:
    good = issuer.issue(issuer.add_account("good@example.com")).auth_json()
    path = tmp_path / "mixed.json"
    path.write_bytes(orjson.dumps([good, {"type": "codex", "refresh_token": "rt"}]))
    result = cli(env, "import", str(path))
    assert result.returncode == 1 and len(result.stderr.splitlines()) == 1
    assert "entry 2 has no access_token; nothing imported" in result.stderr
    assert not (tmp_path / "gateway").exists()


def test_apply_codex(env: dict[str, str], logins: tuple[IssuedTokens, IssuedTokens], tmp_path: Path) -> None:
    _, b = logins
    result = cli(env, "apply-codex", "b@example.com")
    assert result.returncode == 0, result.stderr
    assert "the Codex CLI now runs as b@example.com" in result.stdout and "auth.json.bak-" in result.stdout
    doc = orjson.loads((tmp_path / "codex" / "auth.json").read_bytes())
    assert doc["tokens"]["account_id"] == b.account_id and doc["auth_mode"] == "chatgpt"
    assert stat.S_IMODE((tmp_path / "codex" / "auth.json").stat().st_mode) == 0o600


def test_quota_refresh_reads_every_account(
    env: dict[str, str], logins: tuple[IssuedTokens, IssuedTokens], tmp_path: Path
) -> None:
    a, b = logins
    with FakeCodexBackend() as backend:
        backend.usage[a.account_id] = (200, usage_payload(42, 7))
        backend.usage[b.account_id] = (401, {"detail": "Unauthorized"})
        usage = backend.base_url + "/backend-api/wham/usage"
        result = cli(env, "quota", "--refresh", "--upstream", backend.codex_base)
    assert result.returncode == 1  # one account could not be read
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ACCOUNT") and len(lines) == 3
    assert "42% of 5 h" in result.stdout and "7% of 1 week" in result.stdout
    progress = [line.split(" ", 1) for line in result.stderr.splitlines() if line.startswith("[")]  # not a terminal
    assert [step for step, _ in progress] == ["[1/2]", "[2/2]"]
    assert {what for _, what in progress} == {"a@example.com: ok", f"b@example.com: HTTP 401 from {usage}"}
    assert "codex-gateway accounts quota: b@example.com: HTTP 401" in result.stderr
    assert not [s for s in secrets_of(a, b) if s in result.stdout + result.stderr]
    again = cli(env, "quota", "a@example.com")  # the reading was kept (state.json), for a running gateway too
    assert again.returncode == 0 and "42% of 5 h" in again.stdout and "b@example.com" not in again.stdout
