"""`codex-gateway doctor` against the fake backend: the report, its exit status, JSON, and never a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from codex_gateway.cli import main

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import free_port
from scripts.gateway_process import write_codex_home


@pytest.fixture(autouse=True)
def _no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "CODEX_UPSTREAM", "CODEX_AUTH_ISSUER"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def backend() -> Iterator[FakeCodexBackend]:
    with FakeCodexBackend() as fake:
        yield fake


@pytest.fixture
def login(tmp_path: Path) -> FakeLogin:
    return write_codex_home(tmp_path / "codex")


def doctor(tmp_path: Path, backend: FakeCodexBackend, *extra: str) -> list[str]:
    homes = ["--codex-home", str(tmp_path / "codex"), "--gateway-home", str(tmp_path / "gw")]
    return ["doctor", "--upstream", backend.codex_base, "--issuer", backend.base_url, *homes, *extra]


def test_a_reachable_backend_passes(
    tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(doctor(tmp_path, backend)) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == "verdict: ok, the Codex backend answers"
    assert login.access_token not in out and login.refresh_token not in out


def test_the_json_report(
    tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(doctor(tmp_path, backend, "--json")) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert (report["ok"], [s["name"] for s in report["steps"]]) == (True, ["DNS", "TCP", "TLS", "GET /models"])


def test_a_stopped_proxy_fails_with_status_1(
    tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    assert main(doctor(tmp_path, backend, "--proxy", f"http://alice:s3cret@127.0.0.1:{port}")) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith(f"verdict: FAILED at TCP: the upstream proxy 127.0.0.1:{port}")
    assert "s3cret" not in out
