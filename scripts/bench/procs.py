"""The benchmark's processes: the bench backend, plain mitmdump pass-throughs, the gateway; /proc readings.

A `Proxy` is the gateway (kind "gateway"), the gateway of another checkout (kind "compare", started from that
checkout's addons/), a streaming pass-through (kind "passthrough", `stream_large_bodies=1`) or a buffered one
(kind "buffered", mitmproxy's defaults: whole request and response read before forwarding).

Every process is started in the benchmark's own process group, registered, and stopped (SIGTERM, then SIGKILL)
by `stop_all`, which cli.py calls in a `finally` and at exit. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..gateway_process import ADDONS
from ..gateway_process import MITMDUMP
from ..gateway_process import ROOT
from ..gateway_process import GatewayProcess
from ..gateway_process import free_port
from .report import GATEWAYS

CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.005
BACKEND_HEADERS = {"Authorization": "Bearer bench-token", "ChatGPT-Account-ID": "acct-bench"}

_RUNNING: list[subprocess.Popen[bytes]] = []


def _register(proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    _RUNNING.append(proc)
    return proc


def stop_proc(proc: subprocess.Popen[bytes] | None, timeout: float = 5.0) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _RUNNING:
        _RUNNING.remove(proc)


def stop_all() -> None:
    for proc in list(_RUNNING):
        stop_proc(proc)


atexit.register(stop_all)


# ---------------------------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of `pid` (not its children), from /proc/<pid>/stat."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status, e.g. VmHWM (peak RSS) or VmRSS."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# ---------------------------------------------------------------------------------------------- processes


class Backend:
    """The bench backend (backend.py, `python -m scripts.bench backend`) in a subprocess."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 20.0) -> Backend:
        args = [sys.executable, "-m", "scripts.bench", "backend", "--port", "0"]
        self.proc = _register(subprocess.Popen(args, stdout=subprocess.PIPE, cwd=ROOT))
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"bench backend did not start within {timeout}s: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_proc(self.proc)


class Proxy:
    """A mitmdump subprocess: a gateway (args from scripts/gateway_process.py) or a plain pass-through.

    The kinds in report.GATEWAYS run the addon from `addons` (default: this checkout's); any other kind is a plain
    reverse proxy. Every kind but "buffered" streams bodies.
    """

    def __init__(
        self,
        kind: str,
        upstream_port: int,
        codex_home: Path,
        workdir: Path,
        *,
        quiet: bool,
        addons: Path | None = None,
    ) -> None:
        self.kind = kind
        workdir.mkdir(parents=True, exist_ok=True)
        extra = ["-q"] if quiet else []
        if kind in GATEWAYS:
            gp = GatewayProcess(upstream_port, codex_home, workdir, extra=extra, addons=addons or ADDONS)
            self.port, self.args = gp.port, gp.args
            self.ready_path = "/v1/models"
            self.ready_headers: dict[str, str] = {}
        else:
            self.port = free_port()
            confdir = workdir / "confdir"
            confdir.mkdir(parents=True, exist_ok=True)
            # stream_large_bodies=1 forwards the request body before the request hooks run, so mitmproxy's own
            # request work overlaps the backend's; "buffered" leaves it out to show that work on the critical path.
            streaming = [] if kind == "buffered" else ["--set", "stream_large_bodies=1"]
            self.args = [
                str(MITMDUMP),
                "--mode",
                f"reverse:http://127.0.0.1:{upstream_port}@127.0.0.1:{self.port}",
                *streaming,
                "--set",
                "connection_strategy=lazy",
                "--set",
                f"confdir={confdir}",
                *extra,
            ]
            self.ready_path = "/backend-api/codex/models"
            self.ready_headers = BACKEND_HEADERS
        self.log_path = workdir / f"{kind}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> float:
        """Start and poll `ready_path` every 5 ms until it answers 200; return the seconds that took."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEX_"))}
        env["PYTHONUNBUFFERED"] = "1"
        url = self.base_url + self.ready_path
        with open(self.log_path, "ab") as log, httpx.Client(trust_env=False, timeout=2.0) as client:
            t0 = time.perf_counter()
            self.proc = _register(subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT))
            server_errors = 0
            while time.perf_counter() - t0 < timeout and server_errors < 20:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
                try:
                    status = client.get(url, headers=self.ready_headers).status_code
                except httpx.TransportError:
                    status = 0
                if status == 200:
                    return time.perf_counter() - t0
                server_errors = server_errors + 1 if status >= 500 else 0  # a broken addon will not get better
                time.sleep(POLL_S)
        self.stop()
        raise RuntimeError(
            f"{self.kind} did not answer {self.ready_path} with 200 in {timeout}s:\n{self.log()[-3000:]}"
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        stop_proc(self.proc)
        self.proc = None
