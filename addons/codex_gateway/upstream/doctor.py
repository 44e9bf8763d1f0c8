"""`doctor`: the path to the Codex backend checked step by step, each with its timing and verdict.

Through a proxy: DNS of the proxy, TCP to it, (TLS to it,) CONNECT to the backend, TLS with the backend through
the tunnel, then an authenticated `GET {codex_upstream}/models?client_version=…` over the same httpx client the
side requests use. Direct: DNS, TCP and TLS of the backend, then the same GET. A failed step skips the rest.
Nothing here prints a token: the GET step names the account by its label.

`run_doctor(settings)` is what the `codex.doctor` command and a command-line `doctor` call.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import httpx
import orjson

from ..accounts.upstream_access import UpstreamAccess
from ..errors import GatewayError
from ..http.headers import upstream_headers
from ..model_catalog import ModelCatalog
from ..settings import Settings
from .proxy import ProxyURL
from .tunnel import Connection
from .tunnel import PathError
from .tunnel import connect
from .tunnel import hostport
from .tunnel import resolve
from .tunnel import send_connect
from .tunnel import start_tls

__all__ = ["Step", "DoctorReport", "run_doctor"]

SKIPPED_AFTER_FAILURE = "an earlier step failed"


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool | None  # None: skipped
    detail: str
    ms: float | None = None

    @property
    def verdict(self) -> str:
        return "skipped" if self.ok is None else "ok" if self.ok else "FAILED"


@dataclass
class DoctorReport:
    upstream: str  # the models URL checked, without its query
    route: str  # "direct" or "through the upstream proxy http://***@host:port (codex_proxy)"
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok is not False for step in self.steps)

    @property
    def failed_step(self) -> Step | None:
        return next((step for step in self.steps if step.ok is False), None)

    def format(self) -> str:
        width = max(len(step.name) for step in self.steps) if self.steps else 0
        lines = [f"codex-gateway doctor: {self.upstream}, {self.route}"]
        for step in self.steps:
            ms = f"{step.ms:8.1f} ms" if step.ms is not None else " " * 11
            lines.append(f"  {step.verdict:<7} {ms}  {step.name:<{width}}  {step.detail}")
        failed = self.failed_step
        if failed is None:
            lines.append("verdict: ok, the Codex backend answers")
        else:
            lines.append(f"verdict: FAILED at {failed.name}: {failed.detail}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "route": self.route,
            "ok": self.ok,
            "steps": [{"name": s.name, "verdict": s.verdict, "ms": s.ms, "detail": s.detail} for s in self.steps],
        }


class _Steps:
    """Runs timed steps into a report; after the first failure every further step is recorded as skipped."""

    def __init__(self, report: DoctorReport) -> None:
        self.report = report
        self.failed = False

    async def run(self, name: str, action: Callable[[], Awaitable[str]]) -> bool:
        if self.failed:
            self.skip(name, SKIPPED_AFTER_FAILURE)
            return False
        started = time.perf_counter()
        try:
            detail, ok = await action(), True
        except PathError as e:
            detail, ok = str(e), False
        self.report.steps.append(Step(name, ok, detail, (time.perf_counter() - started) * 1000))
        self.failed = not ok
        return ok

    def skip(self, name: str, why: str) -> None:
        self.report.steps.append(Step(name, None, why))


async def run_doctor(
    settings: Settings, *, access: UpstreamAccess | None = None, timeout: float = 10.0
) -> DoctorReport:
    """Checks the path to `settings.upstream`. `access` is the running gateway's `UpstreamAccess` (its accounts
    and httpx client); without one (a command-line `doctor`), a temporary one is made and closed."""
    up = settings.upstream
    host, scheme = up.hostname or "", up.scheme
    port = up.port or (443 if scheme == "https" else 80)
    proxy = settings.proxy.for_target(scheme, host)
    route = f"through the upstream proxy {proxy.display} ({settings.proxy.source})" if proxy else "direct"
    models_url = ModelCatalog(settings.codex_home, settings.gateway_home, settings.upstream_url("")).url
    report = DoctorReport(models_url.split("?")[0], route)
    steps = _Steps(report)
    conn = await _open(steps, proxy, host, port, timeout)
    try:
        if scheme == "https":
            await steps.run("TLS", lambda: _tls(conn, host, timeout))
        else:
            steps.skip("TLS", f"{scheme}:// upstream")
    finally:
        if conn is not None:
            await conn.close()
    own = UpstreamAccess(settings) if access is None else None
    try:
        await steps.run("GET /models", lambda: _get_models(settings, access or own, models_url, timeout))
    finally:
        if own is not None:
            await own.aclose()
    return report


async def _open(steps: _Steps, proxy: ProxyURL | None, host: str, port: int, timeout: float) -> Connection | None:
    """DNS and TCP of the first hop, and the CONNECT when that hop is a proxy: the open connection, or None."""
    first_host, first_port = (proxy.host, proxy.port) if proxy else (host, port)
    what = "the upstream proxy" if proxy else "the backend"
    opened: list[Connection] = []

    async def dns() -> str:
        return f"{first_host} → {', '.join(await resolve(first_host, first_port, timeout))}"

    async def tcp() -> str:
        opened.append(await connect(first_host, first_port, timeout, what=what))
        peer = opened[0].writer.get_extra_info("peername")
        return f"{what} {hostport(first_host, first_port)}" + (f" at {peer[0]}" if peer else "")

    await steps.run("DNS", dns)
    await steps.run("TCP", tcp)
    conn = opened[0] if opened else None
    if proxy is not None:
        if proxy.scheme == "https":
            await steps.run("proxy TLS", lambda: _tls(conn, proxy.host, timeout))
        await steps.run("CONNECT", lambda: _connect(conn, proxy, host, port, timeout))
    return conn


async def _tls(conn: Connection | None, server_name: str, timeout: float) -> str:
    assert conn is not None  # the step runs only after TCP succeeded
    version = await start_tls(conn, server_name, timeout)
    return f"{version}, certificate of {server_name} verified"


async def _connect(conn: Connection | None, proxy: ProxyURL, host: str, port: int, timeout: float) -> str:
    assert conn is not None
    status = await send_connect(conn, proxy, host, port, timeout)
    return f"{hostport(host, port)}: {status}"


async def _get_models(settings: Settings, access: UpstreamAccess | None, url: str, timeout: float) -> str:
    assert access is not None
    try:
        lease = await access.pool.acquire()
    except GatewayError as e:
        raise PathError(f"no usable login: {e.message}") from None
    headers = {"Accept": "application/json", **dict(upstream_headers(settings, lease.credentials, []))}
    del headers["Host"]
    try:
        response = await access.client().get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as e:
        raise PathError(settings_mask(settings, f"{type(e).__name__}: {e}")) from None
    account = f"account {lease.credentials.label}"
    if response.status_code != 200:
        raise PathError(f"HTTP {response.status_code} for {account}: {_error_text(response.content)}")
    try:
        models = orjson.loads(response.content).get("models")
    except (orjson.JSONDecodeError, AttributeError):
        models = None
    count = f"{len(models)} models" if isinstance(models, list) else "no model list in the answer"
    return f"HTTP 200, {count}, {account}"


def settings_mask(settings: Settings, text: str) -> str:
    for proxy in settings.proxy.proxies():
        text = proxy.mask(text)
    return text


def _error_text(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:120].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(doc, dict):
        error = doc.get("error")
        message = error.get("message") if isinstance(error, dict) else doc.get("detail") or error
        if message:
            return str(message)[:160]
    return str(doc)[:160]
