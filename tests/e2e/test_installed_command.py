"""`pip install .` into a fresh venv outside the checkout, then the installed `codex-gateway run` answers `/v1/models`.

To stay fast and offline-safe the package is installed with `--no-deps`; its dependencies come from this project's
own venv through a `.pth` file added after the install (so pip never sees, let alone touches, the project's venv).
Building needs setuptools, which pip takes from its index or cache; where it can get none the test says so and skips.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import free_port
from scripts.gateway_process import write_login

ROOT = Path(__file__).resolve().parents[2]


def _copy_project(dest: Path) -> Path:
    """What `pip install .` needs (pyproject, README, the package), without caches, egg-info or the venv."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(ROOT / "addons" / "codex_gateway", dest / "addons" / "codex_gateway", ignore=ignore)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv's bin directory, with `codex-gateway` installed from a copy of the checkout."""
    base = tmp_path_factory.mktemp("installed")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    source = _copy_project(base / "src")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-input", "-q", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=base,
    )
    if pip.returncode != 0:
        why = (pip.stderr.strip().splitlines() or ["no output"])[-1]
        if "setuptools" in pip.stderr and ("No matching distribution" in pip.stderr or "connection" in pip.stderr):
            pytest.skip(f"pip could not get setuptools to build the package (no index or cache here): {why}")
        pytest.fail(f"pip install . failed: {pip.stderr}")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(purelib) / "codex_gateway_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def test_the_package_comes_from_the_new_venv(installed: Path, tmp_path: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "python"),
            "-c",
            "import codex_gateway.cli, codex_gateway.script.gateway as s; print(s.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed.parent)), where.stdout
    version = subprocess.run(
        [str(installed / "codex-gateway"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("codex-gateway ")


@pytest.fixture
def running(installed: Path, tmp_path: Path) -> Iterator[tuple[str, FakeCodexBackend]]:
    with FakeIssuer() as issuer, FakeCodexBackend() as backend:
        write_login(tmp_path / "codex", issuer.issue(issuer.add_account("installed@example.com")).auth_json())
        port = free_port()
        up = backend.base_url
        args = [
            str(installed / "codex-gateway"),
            "run",
            "--mode",
            f"reverse:{up}@127.0.0.1:{port}",
            "--set",
            f"codex_upstream={up}/backend-api/codex",
            "--set",
            f"codex_home={tmp_path / 'codex'}",
            "--set",
            f"gateway_home={tmp_path / 'gateway'}",
            "--set",
            f"confdir={tmp_path / 'confdir'}",
            "--set",
            "codex_model_aliases=fast=gpt-5.4-mini-low",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_", "VIRTUAL_ENV"))}
        log = tmp_path / "run.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(args, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, env=env)
            try:
                deadline = time.monotonic() + 60
                while f"listening at 127.0.0.1:{port}" not in log.read_text(errors="replace"):
                    assert proc.poll() is None, log.read_text(errors="replace")
                    assert time.monotonic() < deadline, log.read_text(errors="replace")
                    time.sleep(0.05)  # start-up polling, not a timing assertion
                yield f"http://127.0.0.1:{port}", backend
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def test_codex_gateway_run_answers_models_and_chat(running: tuple[str, FakeCodexBackend]) -> None:
    base, backend = running
    models = httpx.get(f"{base}/v1/models", timeout=20)
    assert models.status_code == 200, models.text
    ids = [m["id"] for m in models.json()["data"]]
    assert "gpt-5.4" in ids and "fast" in ids
    chat = httpx.post(
        f"{base}/v1/chat/completions",
        json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
        timeout=20,
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["choices"][0]["message"]["content"] == "Hello from fake Codex"
    assert json.loads(backend.responses_requests()[-1].body)["model"] == "gpt-5.4-mini"
