"""upstream.doctor: each step's verdict against the fake backend and a loopback proxy; the report's text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codex_gateway.settings import Settings
from codex_gateway.settings import parse_settings
from codex_gateway.upstream.doctor import DoctorReport
from codex_gateway.upstream.doctor import Step
from codex_gateway.upstream.doctor import run_doctor

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.connect_proxy import FakeConnectProxy
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import free_port
from scripts.gateway_process import write_codex_home
from tests.test_settings import opts


@pytest.fixture
def backend() -> Iterator[FakeCodexBackend]:
    with FakeCodexBackend() as fake:
        yield fake


@pytest.fixture
async def proxy() -> AsyncIterator[FakeConnectProxy]:
    fake = await FakeConnectProxy().start()
    yield fake
    await fake.stop()


@pytest.fixture
def login(tmp_path: Path) -> FakeLogin:
    return write_codex_home(tmp_path / "codex")


def settings(tmp_path: Path, backend: FakeCodexBackend, **values: Any) -> Settings:
    return parse_settings(
        opts(
            codex_upstream=backend.codex_base,
            codex_home=str(tmp_path / "codex"),
            gateway_home=str(tmp_path / "gw"),
            codex_auth_issuer=backend.base_url,
            **values,
        )
    )


def verdicts(report: DoctorReport) -> list[tuple[str, str]]:
    return [(step.name, step.verdict) for step in report.steps]


async def test_direct_path_to_the_fake(tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin) -> None:
    report = await run_doctor(settings(tmp_path, backend))
    assert verdicts(report) == [("DNS", "ok"), ("TCP", "ok"), ("TLS", "skipped"), ("GET /models", "ok")]
    assert report.ok and report.route == "direct"
    assert report.steps[-1].detail.startswith("HTTP 200, ") and "account user@example.com" in report.steps[-1].detail
    models = [r for r in backend.requests if r.route.endswith("/models")]
    assert models[0].headers["authorization"] == f"Bearer {login.access_token}"
    assert models[0].path.split("?")[1].startswith("client_version=")


async def test_the_report_never_shows_a_token(tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin) -> None:
    text = (await run_doctor(settings(tmp_path, backend))).format()
    assert all(secret not in text for secret in (login.access_token, login.refresh_token, login.account_id))


async def test_through_a_proxy_the_connect_is_a_step(
    tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin, proxy: FakeConnectProxy
) -> None:
    report = await run_doctor(settings(tmp_path, backend, codex_proxy=f"http://alice:s3cret@127.0.0.1:{proxy.port}"))
    assert verdicts(report)[:4] == [("DNS", "ok"), ("TCP", "ok"), ("CONNECT", "ok"), ("TLS", "skipped")]
    assert report.steps[2].detail == f"127.0.0.1:{backend.port}: HTTP/1.1 200 Connection established"
    assert report.route == f"through the upstream proxy http://***@127.0.0.1:{proxy.port} (codex_proxy)"
    assert proxy.connects[0].headers["proxy-authorization"] == "Basic YWxpY2U6czNjcmV0"
    # the GET goes through the proxy too (this fake proxy answers absolute-form requests itself)
    assert [s.method for s in proxy.seen] == ["CONNECT", "GET"]


async def test_a_stopped_proxy_fails_at_tcp_and_skips_the_rest(
    tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin
) -> None:
    port = free_port()
    report = await run_doctor(settings(tmp_path, backend, codex_proxy=f"http://alice:s3cret@127.0.0.1:{port}"))
    assert verdicts(report) == [
        ("DNS", "ok"),
        ("TCP", "FAILED"),
        ("CONNECT", "skipped"),
        ("TLS", "skipped"),
        ("GET /models", "skipped"),
    ]
    assert not report.ok and f"the upstream proxy 127.0.0.1:{port} is unreachable" in report.steps[1].detail
    assert "s3cret" not in report.format()


async def test_a_refused_connect_fails_at_connect(
    tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin, proxy: FakeConnectProxy
) -> None:
    proxy.connect_status = "407 Proxy Authentication Required"
    report = await run_doctor(settings(tmp_path, backend, codex_proxy=f"http://127.0.0.1:{proxy.port}"))
    assert report.failed_step is not None and report.failed_step.name == "CONNECT"
    assert "(HTTP 407 Proxy Authentication Required)" in report.failed_step.detail


async def test_an_unresolvable_backend_fails_at_dns(tmp_path: Path, login: FakeLogin) -> None:
    s = parse_settings(opts(codex_upstream="http://backend.invalid/x", codex_home=str(tmp_path / "codex")))
    report = await run_doctor(s, timeout=5)
    assert report.failed_step is not None and report.failed_step.name == "DNS"


async def test_without_a_login_the_get_fails(tmp_path: Path, backend: FakeCodexBackend) -> None:
    report = await run_doctor(settings(tmp_path, backend))
    assert report.failed_step is not None and report.failed_step.name == "GET /models"
    assert report.failed_step.detail.startswith("no usable login: ")


async def test_a_rejected_token_fails_the_get_with_the_backend_s_reason(
    tmp_path: Path, backend: FakeCodexBackend, login: FakeLogin
) -> None:
    backend.accept_tokens = {"another-token"}
    report = await run_doctor(settings(tmp_path, backend))
    assert report.failed_step is not None and report.failed_step.detail.startswith("HTTP 401 for account ")


def test_the_report_text() -> None:
    report = DoctorReport(
        "https://chatgpt.com/backend-api/codex/models",
        "through the upstream proxy http://***@proxy:3128 (codex_proxy)",
        [
            Step("DNS", True, "proxy → 10.0.0.1", 1.25),
            Step("TCP", True, "the upstream proxy proxy:3128 at 10.0.0.1", 0.5),
            Step("CONNECT", False, "the upstream proxy proxy:3128 refused CONNECT chatgpt.com:443 (HTTP 403)", 3.0),
            Step("TLS", None, "an earlier step failed"),
        ],
    )
    assert report.format().splitlines() == [
        "codex-gateway doctor: https://chatgpt.com/backend-api/codex/models, "
        "through the upstream proxy http://***@proxy:3128 (codex_proxy)",
        "  ok           1.2 ms  DNS      proxy → 10.0.0.1",
        "  ok           0.5 ms  TCP      the upstream proxy proxy:3128 at 10.0.0.1",
        "  FAILED       3.0 ms  CONNECT  the upstream proxy proxy:3128 refused CONNECT chatgpt.com:443 (HTTP 403)",
        "  skipped              TLS      an earlier step failed",
        "verdict: FAILED at CONNECT: the upstream proxy proxy:3128 refused CONNECT chatgpt.com:443 (HTTP 403)",
    ]
