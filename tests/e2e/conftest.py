"""End-to-end fixtures: a fake Codex backend, a real mitmdump running the addon, and the real openai SDK."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import RecordedRequest
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import write_login

ISSUER_ROUTES = [
    ("POST", "/oauth/token"),
    ("GET", "/oauth/authorize"),
    ("POST", "/api/accounts/deviceauth/usercode"),
    ("POST", "/api/accounts/deviceauth/token"),
]


@pytest.fixture(scope="session")
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture(scope="session")
def backend(issuer: FakeIssuer) -> Iterator[FakeCodexBackend]:
    """The fake Codex backend, also serving the fake issuer's OAuth routes (one origin, as the checks use)."""
    with FakeCodexBackend() as fake:
        for method, path in ISSUER_ROUTES:

            def route(rec: RecordedRequest, method: str = method) -> tuple[int, dict[str, str], bytes]:
                path, _, query = rec.path.partition("?")
                return issuer._route(method, path, query, rec.headers, rec.body)

            fake.extra_routes[(method, path)] = route
        yield fake


@pytest.fixture(scope="session")
def login_home(issuer: FakeIssuer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FakeLogin]:
    home = tmp_path_factory.mktemp("codex-home")
    return home, write_login(home, issuer.issue(issuer.add_account("user@example.com")).auth_json())


@pytest.fixture(scope="session")
def login(login_home: tuple[Path, FakeLogin]) -> FakeLogin:
    return login_home[1]


@pytest.fixture(scope="session")
def gateway(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    with GatewayProcess(backend.port, login_home[0], tmp_path_factory.mktemp("gw")) as gw:
        yield gw


@pytest.fixture(autouse=True)
def _fresh_backend(backend: FakeCodexBackend) -> None:
    backend.reset()


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=20) as c:
        yield c
