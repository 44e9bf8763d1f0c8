"""The gateway behind a real forward proxy: a second mitmdump in regular mode on loopback, requiring proxy
credentials (mitmproxy's `proxyauth`) and recording what it saw (tests/e2e/proxy_recorder.py).

With the plain-http fake backend the gateway's flows reach it through a CONNECT tunnel (mitmproxy's reverse mode
always tunnels through `via`) and its httpx side requests as absolute-form requests, so the proxy sees every
request. With the fake serving https (a CA made here, trusted by the gateway) everything is a CONNECT tunnel the
proxy passes through untouched, as real proxies do, and TLS is end to end.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import re
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import httpx
import pytest
from codex_gateway.settings import settings_from
from codex_gateway.upstream.doctor import run_doctor
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from mitmproxy import certs
from mitmproxy import http

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import RecordedRequest
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import MITMDUMP
from scripts.gateway_process import ROOT
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import free_port
from scripts.gateway_process import process_env
from scripts.gateway_process import read_saved_flows
from scripts.gateway_process import refused_start
from scripts.gateway_process import write_login
from tests.scripts.test_accounts import Running

USER, PASSWORD = "alice", "pr0xy-" + base64.b32encode(time.time_ns().to_bytes(8, "big")).decode().strip("=")
SECRETS = (PASSWORD, base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
CHAT = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}


class ProxyProcess:
    """`mitmdump --mode regular` on loopback with `proxyauth` and the recorder script."""

    def __init__(self, workdir: Path, *, auth: bool = True, passthrough: bool = False) -> None:
        self.port = free_port()
        self.records_path = workdir / f"proxy-{self.port}.jsonl"
        self.log_path = workdir / f"proxy-{self.port}.log"
        confdir = workdir / "proxy-confdir"
        confdir.mkdir(parents=True, exist_ok=True)
        self.args = [
            str(MITMDUMP),
            "--mode",
            f"regular@127.0.0.1:{self.port}",
            "-s",
            str(ROOT / "tests" / "e2e" / "proxy_recorder.py"),
            "--set",
            f"recorder_out={self.records_path}",
            "--set",
            f"confdir={confdir}",
            *(("--set", f"proxyauth={USER}:{PASSWORD}") if auth else ()),
            *(("--set", "ignore_hosts=.*") if passthrough else ()),  # tunnels TLS as it is, like most proxies
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ProxyProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=process_env(), cwd=ROOT)
        deadline = time.monotonic() + 30
        while f"listening at 127.0.0.1:{self.port}" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not start:\n{self.log_path.read_text(errors='replace')}")
            time.sleep(0.05)  # start-up polling, not a timing assertion
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self._log.close()

    def records(self) -> list[dict[str, Any]]:
        if not self.records_path.exists():
            return []
        return [json.loads(line) for line in self.records_path.read_text().splitlines()]

    def url(self, password: str = PASSWORD) -> str:
        return f"http://{USER}:{password}@127.0.0.1:{self.port}"

    def refusing(self) -> Path:
        """The flag file that makes the recorder refuse every CONNECT while it exists."""
        return self.records_path.with_name(self.records_path.name + ".refuse")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    p = ProxyProcess(tmp_path_factory.mktemp("proxy")).start()
    yield p
    p.stop()


def proxied_gateway(
    backend: FakeCodexBackend, home: Path, workdir: Path, proxy_url: str, *extra: str
) -> GatewayProcess:
    return GatewayProcess(backend.port, home, workdir, extra=["--set", f"codex_proxy={proxy_url}", *extra])


def fresh_login(issuer: FakeIssuer, home: Path, *, expires_in: int | None = None) -> FakeLogin:
    """A login; with `expires_in` below the refresh margin, and refreshed long ago, it is refreshed before use."""
    tokens = issuer.issue(issuer.add_account("proxy@example.com"), expires_in=expires_in)
    return write_login(home, tokens.auth_json(last_refresh="2025-01-01T00:00:00.000Z"))


# -- one run through the proxy: models, a refresh, chat (buffered and streamed) ---------------------------------------


@dataclass
class Run:
    backend_saw: list[RecordedRequest]
    proxy_saw: list[dict[str, Any]]
    log: str
    saved: bytes
    flows: list[http.HTTPFlow]
    answers: list[httpx.Response] = field(default_factory=list)


@pytest.fixture(scope="module")
def run(
    proxy: ProxyProcess, backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    workdir = tmp_path_factory.mktemp("proxied")
    fresh_login(issuer, workdir / "codex", expires_in=60)  # within the refresh margin: refreshed before use
    saved = workdir / "flows.mitm"
    backend.reset()
    since = len(proxy.records())
    with proxied_gateway(backend, workdir / "codex", workdir, proxy.url(), "-w", str(saved)) as gw:
        answers = [
            httpx.get(gw.base_url + "/v1/models", timeout=20),
            httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20),
            httpx.post(gw.base_url + "/v1/chat/completions", json={**CHAT, "stream": True}, timeout=20),
        ]
        flows = read_saved_flows(saved, 3)
    return Run(list(backend.requests), proxy.records()[since:], gw.log(), saved.read_bytes(), flows, answers)


def test_the_answers_arrive_through_the_proxy(run: Run) -> None:
    assert [a.status_code for a in run.answers] == [200, 200, 200]
    assert run.answers[1].json()["choices"][0]["message"]["content"] == "Hello from fake Codex"


def test_the_chat_flows_went_through_connect_tunnels_with_the_credentials(run: Run, backend: FakeCodexBackend) -> None:
    tunnelled = [r for r in run.proxy_saw if r["kind"] == "request" and r["tunnelled"]]
    assert [(r["method"], r["url"]) for r in tunnelled] == [
        ("POST", f"http://127.0.0.1:{backend.port}/backend-api/codex/responses")
    ] * 2
    connects = [r for r in run.proxy_saw if r["kind"] == "connect"]
    assert connects and {(r["target"], r["user"]) for r in connects} == {(f"127.0.0.1:{backend.port}", USER)}


def test_the_side_requests_went_through_the_proxy(run: Run, backend: FakeCodexBackend) -> None:
    direct = [(r["method"], r["url"].split("?")[0], r["user"]) for r in run.proxy_saw if r.get("tunnelled") is False]
    base = f"http://127.0.0.1:{backend.port}"
    assert (("POST", f"{base}/oauth/token", USER)) in direct  # the token refresh
    assert (("GET", f"{base}/backend-api/codex/models", USER)) in direct  # the model catalog


def test_the_backend_saw_what_the_proxy_passed_on(run: Run) -> None:
    routes = [(r.method, r.route) for r in run.backend_saw]
    assert ("POST", "/oauth/token") in routes and ("GET", "/backend-api/codex/models") in routes
    assert routes.count(("POST", "/backend-api/codex/responses")) == 2


def test_one_start_up_line_names_the_proxy_without_its_credentials(run: Run, proxy: ProxyProcess) -> None:
    lines = [line for line in run.log.splitlines() if "upstream connections" in line]
    assert len(lines) == 1
    assert f"through the proxy http://***@127.0.0.1:{proxy.port} (from codex_proxy)" in lines[0]


@pytest.mark.parametrize("where", ["log", "saved flows"])
def test_the_proxy_password_is_nowhere(run: Run, where: str) -> None:
    text = run.log.encode() if where == "log" else run.saved
    assert not [s for s in SECRETS if s.encode() in text]


def test_no_saved_flow_carries_a_proxy_authorization(run: Run) -> None:
    assert [f.request.headers.get("proxy-authorization") for f in run.flows] == [None] * 3


# -- failures -----------------------------------------------------------------------------------------------------


def test_a_stopped_proxy_is_a_502_envelope_naming_it(
    backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    own = ProxyProcess(tmp_path, auth=False).start()
    fresh_login(issuer, tmp_path / "codex")
    try:
        with proxied_gateway(backend, tmp_path / "codex", tmp_path, f"http://127.0.0.1:{own.port}") as gw:
            assert httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20).status_code == 200
            own.stop()
            answer = httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20)
    finally:
        own.stop()
    assert (answer.status_code, answer.headers["content-type"]) == (502, "application/json")
    error = answer.json()["error"]
    assert error["code"] == "upstream_proxy_error"
    assert f"the upstream proxy 127.0.0.1:{own.port} is unreachable" in error["message"]


def test_wrong_proxy_credentials_are_a_502_envelope(
    proxy: ProxyProcess, backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    fresh_login(issuer, tmp_path / "codex")
    with proxied_gateway(backend, tmp_path / "codex", tmp_path, proxy.url("wrong-password")) as gw:
        answer = httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20)
        log = gw.log()
    assert answer.status_code == 502
    message = answer.json()["error"]["message"]
    assert f"the upstream proxy 127.0.0.1:{proxy.port} refused CONNECT" in message and "407" in message
    assert "wrong-password" not in log + message


def test_a_connect_refused_after_the_check_names_the_proxy_then_the_next_request_is_an_envelope(
    proxy: ProxyProcess, backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    """The window the check cannot close (README, "Behind a proxy"): the proxy starts refusing between the
    gateway's check and the flow's own CONNECT. mitmproxy answers that flow itself; the flow's comment names the
    proxy, and the next request checks the whole tunnel again and gets the envelope."""
    fresh_login(issuer, tmp_path / "codex")
    saved = tmp_path / "flows.mitm"
    with proxied_gateway(backend, tmp_path / "codex", tmp_path, proxy.url(), "-w", str(saved)) as gw:
        assert httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20).status_code == 200
        proxy.refusing().touch()
        try:
            caught = httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20)
            after = httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20)
        finally:
            proxy.refusing().unlink()
        flows = read_saved_flows(saved, 3)
    assert (caught.status_code, caught.headers["content-type"]) == (502, "text/html")
    assert flows[1].comment and f"via the upstream proxy 127.0.0.1:{proxy.port}" in flows[1].comment
    assert (after.status_code, after.json()["error"]["code"]) == (502, "upstream_proxy_error")


# -- configuration --------------------------------------------------------------------------------------------------


def test_without_codex_proxy_the_environment_s_proxy_is_used(
    proxy: ProxyProcess, backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    fresh_login(issuer, tmp_path / "codex")
    since = len(proxy.records())
    gw = GatewayProcess(backend.port, tmp_path / "codex", tmp_path, env={"HTTP_PROXY": proxy.url()})
    with gw:
        assert httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20).status_code == 200
        log = gw.log()
    assert f"through the proxy http://***@127.0.0.1:{proxy.port} (from HTTP_PROXY in the environment)" in log
    assert any(r["kind"] == "connect" and r["user"] == USER for r in proxy.records()[since:])


def test_no_proxy_sends_the_backend_direct(
    proxy: ProxyProcess, backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    fresh_login(issuer, tmp_path / "codex")
    since = len(proxy.records())
    with proxied_gateway(backend, tmp_path / "codex", tmp_path, proxy.url(), "--set", "codex_no_proxy=127.0.0.1") as gw:
        assert httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20).status_code == 200
    assert proxy.records()[since:] == []


@pytest.mark.parametrize(
    "sets, env, message",
    [
        (("codex_proxy=socks5://alice:s3cret@127.0.0.1:1080",), None, "codex_proxy is a SOCKS proxy"),
        (("codex_proxy=http://127.0.0.1:notaport",), None, "codex_proxy has an invalid port"),
        ((), {"HTTPS_PROXY": "socks5h://127.0.0.1:1080"}, "HTTPS_PROXY is a SOCKS proxy"),
    ],
)
def test_an_unusable_proxy_refuses_to_start(
    tmp_path: Path, sets: tuple[str, ...], env: dict[str, str] | None, message: str
) -> None:
    printed = refused_start("reverse:https://chatgpt.com@127.0.0.1:0", tmp_path, *sets, env=env)
    assert message in printed and "s3cret" not in printed


# -- codex.doctor in mitmweb's command bar ----------------------------------------------------------------------------


def test_codex_doctor_from_mitmweb_checks_the_path_through_the_proxy(
    proxy: ProxyProcess, backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    fresh_login(issuer, tmp_path / "codex")
    web_port, web_password = free_port(), "web-" + PASSWORD[-8:]
    web_sets = [
        "--set",
        f"web_port={web_port}",
        "--set",
        "web_open_browser=false",
        "--set",
        f"web_password={web_password}",
    ]
    gw = GatewayProcess(
        backend.port,
        tmp_path / "codex",
        tmp_path,
        extra=["--set", f"codex_proxy={proxy.url()}", *web_sets],
        tool="mitmweb",
    )
    with gw, httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as web:
        web.headers.update({"Authorization": f"Bearer {web_password}", "X-XSRFToken": "t0k"})
        web.cookies.set("_mitmproxy_xsrf", "t0k")  # tornado compares the header with this cookie
        started = web.post("/commands/codex.doctor", json={"arguments": []}).json()["value"]
        report = _wait_for_event(web, "verdict:")
        log = gw.log()
    assert started.startswith("codex.doctor: checking the path to http://127.0.0.1:")
    steps = [re.match(r"\s+(\w+)\s+(?:[\d.]+ ms)?\s+(\S+)", line) for line in report.splitlines()[1:-1]]
    assert [m.groups() if m else None for m in steps] == [
        ("ok", "DNS"),
        ("ok", "TCP"),
        ("ok", "CONNECT"),
        ("skipped", "TLS"),
        ("ok", "GET"),
    ]
    assert report.splitlines()[-1] == "verdict: ok, the Codex backend answers"
    assert not [s for s in SECRETS if s in report + log]


def _wait_for_event(web: httpx.Client, needle: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for event in web.get("/events").json():
            if needle in event["message"]:
                return str(event["message"])
        time.sleep(0.05)  # polling the event log, not a timing assertion
    raise AssertionError(f"no event with {needle!r}")


# -- the command line's sign-in ---------------------------------------------------------------------------------------


def test_a_device_login_goes_through_the_proxy(proxy: ProxyProcess, issuer: FakeIssuer, tmp_path: Path) -> None:
    issuer.add_account("cli@example.com")
    env = process_env({"CODEX_AUTH_ISSUER": issuer.url, "CODEX_GATEWAY_HOME": str(tmp_path / "gw")})
    since = len(proxy.records())
    login = Running(env, "login", "--device", "--poll-interval", "0.02", "--proxy", proxy.url())
    login.wait_for("/codex/device")
    issuer.approve(login.wait_for("-").strip())
    code, out, err = login.finish()
    assert code == 0, err
    paths = {(r["method"], r["url"].removeprefix(issuer.url), r["user"]) for r in proxy.records()[since:]}
    assert {
        ("POST", "/api/accounts/deviceauth/usercode", USER),
        ("POST", "/api/accounts/deviceauth/token", USER),
        ("POST", "/oauth/token", USER),
    } <= paths
    assert f"through the proxy http://***@127.0.0.1:{proxy.port}" in out and PASSWORD not in out + err


# -- an https backend: TLS end to end through the tunnel -----------------------------------------------------------


@dataclass
class TlsBackend:
    fake: FakeCodexBackend
    ca: Path  # the CA certificate that signed the fake's

    @property
    def codex_base(self) -> str:
        return self.fake.codex_base


@pytest.fixture(scope="module")
def tls_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBackend]:
    tmp = tmp_path_factory.mktemp("tls")
    certs.CertStore.create_store(tmp, "fake-ca", 2048)
    entry = certs.CertStore.from_store(tmp, "fake-ca", 2048).get_cert(
        "127.0.0.1", [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    (tmp / "leaf.pem").write_bytes(entry.cert.to_pem())
    (tmp / "leaf.key").write_bytes(
        entry.privatekey.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")
    with FakeCodexBackend(tls=context) as fake:
        yield TlsBackend(fake, tmp / "fake-ca-ca-cert.pem")


@pytest.fixture(scope="module")
def tunnel_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    p = ProxyProcess(tmp_path_factory.mktemp("tunnel-proxy"), passthrough=True).start()
    yield p
    p.stop()


def test_an_https_backend_is_reached_through_connect_tunnels_only(
    tls_backend: TlsBackend, tunnel_proxy: ProxyProcess, issuer: FakeIssuer, tmp_path: Path
) -> None:
    fresh_login(issuer, tmp_path / "codex")
    port = tls_backend.fake.port
    gw = proxied_gateway(
        tls_backend.fake,
        tmp_path / "codex",
        tmp_path,
        tunnel_proxy.url(),
        "--set",
        f"ssl_verify_upstream_trusted_ca={tls_backend.ca}",
    )
    gw.args = [a.replace(f"http://127.0.0.1:{port}", f"https://127.0.0.1:{port}") for a in gw.args]
    gw.env["SSL_CERT_FILE"] = str(tls_backend.ca)  # the side requests' trust (httpx reads it)
    with gw:
        answers = [
            httpx.get(gw.base_url + "/v1/models", timeout=20),
            httpx.post(gw.base_url + "/v1/chat/completions", json=CHAT, timeout=20),
        ]
    assert [a.status_code for a in answers] == [200, 200]
    seen = {(r["kind"], r.get("target"), r["user"]) for r in tunnel_proxy.records()}
    assert seen == {("connect", f"127.0.0.1:{port}", USER)}  # the proxy saw tunnels, nothing inside them
    routes = {(r.method, r.route) for r in tls_backend.fake.requests}
    assert {("GET", "/backend-api/codex/models"), ("POST", "/backend-api/codex/responses")} <= routes


async def test_doctor_checks_tls_with_the_backend_through_the_tunnel(
    tls_backend: TlsBackend,
    tunnel_proxy: ProxyProcess,
    issuer: FakeIssuer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_backend.ca))
    fresh_login(issuer, tmp_path / "codex")
    settings = settings_from(
        codex_upstream=tls_backend.codex_base,
        codex_home=str(tmp_path / "codex"),
        gateway_home=str(tmp_path / "gw"),
        codex_proxy=tunnel_proxy.url(),
    )
    report = await run_doctor(settings)
    assert [(s.name, s.verdict) for s in report.steps] == [
        ("DNS", "ok"),
        ("TCP", "ok"),
        ("CONNECT", "ok"),
        ("TLS", "ok"),
        ("GET /models", "ok"),
    ], report.format()
    assert report.steps[3].detail.endswith("certificate of 127.0.0.1 verified")


def test_a_quota_refresh_goes_through_the_proxy(
    proxy: ProxyProcess, backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    fresh_login(issuer, tmp_path / "codex")
    env = process_env({"CODEX_HOME": str(tmp_path / "codex"), "CODEX_GATEWAY_HOME": str(tmp_path / "gw")})
    since = len(proxy.records())
    args = ["accounts", "quota", "--refresh", "--upstream", backend.codex_base, "--proxy", proxy.url()]
    done = subprocess.run(
        [sys.executable, "-m", "codex_gateway.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )
    seen = [(r["method"], r["url"], r["user"]) for r in proxy.records()[since:]]
    assert ("GET", f"{backend.base_url}/backend-api/wham/usage", USER) in seen, done.stderr
    assert PASSWORD not in done.stdout + done.stderr
