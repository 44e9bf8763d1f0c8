"""A real `mitmdump -s addons/gateway.py` in a subprocess, started exactly as independent checks start it.

Used by the e2e tests, the benchmark (scripts/bench) and the soak test (scripts/soak.py).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy import io

ROOT = Path(__file__).resolve().parents[1]
ADDONS = ROOT / "addons"
MITMDUMP = Path(sys.executable).with_name("mitmdump")
# The environment's proxy settings would route the gateway's traffic to the loopback fakes through them.
PROXY_VARIABLES = frozenset(f"{n}_proxy" for n in ("http", "https", "all", "no"))


def process_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without OpenAI/Codex settings and proxies, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OPENAI_", "CODEX_")) and k.lower() not in PROXY_VARIABLES
    }
    return {**env, "PYTHONUNBUFFERED": "1", **(extra or {})}


def _b64(obj: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def fake_jwt(claims: dict[str, object]) -> str:
    """An unsigned three-segment JWT, as the fake backend and the gateway only read its claims."""
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}.{secrets.token_urlsafe(16)}"


@dataclass
class FakeLogin:
    access_token: str
    refresh_token: str
    id_token: str
    account_id: str
    email: str


def write_codex_home(home: Path, *, expires_in: int = 3600, email: str = "user@example.com") -> FakeLogin:
    """A `$CODEX_HOME/auth.json` like the Codex CLI writes, with unique random tokens (grep-able in artefacts)."""
    home.mkdir(parents=True, exist_ok=True)
    account_id = "acct-" + secrets.token_hex(8)
    auth_claims = {"chatgpt_account_id": account_id, "chatgpt_plan_type": "plus"}
    now = int(time.time())
    login = FakeLogin(
        access_token=fake_jwt(
            {"exp": now + expires_in, "https://api.openai.com/auth": auth_claims, "n": secrets.token_hex(8)}
        ),
        refresh_token="rt_" + secrets.token_urlsafe(24),
        id_token=fake_jwt({"email": email, "https://api.openai.com/auth": auth_claims}),
        account_id=account_id,
        email=email,
    )
    doc = {
        "auth_mode": "chatgpt",
        "OPENAI_API_KEY": None,
        "tokens": {
            "id_token": login.id_token,
            "access_token": login.access_token,
            "refresh_token": login.refresh_token,
            "account_id": account_id,
        },
        "last_refresh": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
    }
    path = home / "auth.json"
    path.write_text(json.dumps(doc, indent=2))
    path.chmod(0o600)
    return login


def write_login(home: Path, auth_json: dict[str, Any]) -> FakeLogin:
    """Writes an auth.json (e.g. one issued by scripts/fakes/fake_issuer.py) and describes its secrets."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "auth.json"
    path.write_text(json.dumps(auth_json, indent=2))
    path.chmod(0o600)
    tokens = auth_json["tokens"]
    email = json.loads(base64.urlsafe_b64decode(tokens["id_token"].split(".")[1] + "==")).get("email", "")
    return FakeLogin(tokens["access_token"], tokens["refresh_token"], tokens["id_token"], tokens["account_id"], email)


def refused_start(mode: str, confdir: Path, *sets: str, env: dict[str, str] | None = None) -> str:
    """Runs mitmdump with the addon, expecting it to refuse to start; returns what it printed."""
    set_args = [arg for spec in sets for arg in ("--set", spec)]
    args = [str(MITMDUMP), "-s", str(ADDONS / "gateway.py"), "--mode", mode, "--set", f"confdir={confdir}"]
    r = subprocess.run([*args, *set_args], capture_output=True, text=True, timeout=30, cwd=ROOT, env=process_env(env))
    assert r.returncode != 0, f"mitmdump started:\n{r.stdout}{r.stderr}"
    return r.stdout + r.stderr


def read_saved_flows(path: Path, n: int, timeout: float = 15.0) -> list[http.HTTPFlow]:
    """The flows a `-w` file holds, once there are `n` (each is written when it ends, error or not)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with path.open("rb") as f:
                flows = [fl for fl in io.FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)]
        except (exceptions.FlowReadException, FileNotFoundError, ValueError):
            flows = []
        if len(flows) >= n or time.monotonic() > deadline:
            return flows
        time.sleep(0.02)  # polling for a file write, not a timing assertion


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayProcess:
    """mitmdump running the addon in reverse mode in front of a fake backend on `upstream_port`."""

    def __init__(
        self,
        upstream_port: int,
        codex_home: Path,
        workdir: Path,
        *,
        extra: list[str] | None = None,
        tool: str = "mitmdump",
        addons: Path = ADDONS,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = process_env(env)
        self.port = free_port()
        self.workdir = workdir
        self.log_path = workdir / f"{tool}-{self.port}.log"
        confdir = workdir / "confdir"
        confdir.mkdir(parents=True, exist_ok=True)
        up = f"http://127.0.0.1:{upstream_port}"
        self.args = [
            str(MITMDUMP.with_name(tool)),
            "-s",
            str(addons / "gateway.py"),
            "--mode",
            f"reverse:{up}@127.0.0.1:{self.port}",
            "--set",
            f"codex_upstream={up}/backend-api/codex",
            "--set",
            f"codex_home={codex_home}",
            "--set",
            f"codex_auth_issuer={up}",
            "--set",
            "connection_strategy=lazy",
            "--set",
            f"confdir={confdir}",
            "--set",
            f"gateway_home={workdir / 'gateway-home'}",
            *(extra or []),
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmdump exited with {self.proc.returncode}:\n{self.log()}")
            if f"listening at 127.0.0.1:{self.port}" in self.log():
                return self
            time.sleep(0.05)  # start-up polling, not a timing assertion
        self.stop()
        raise RuntimeError(f"mitmdump did not start within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
