"""The real OpenClaw CLI through a real mitmdump with the addon and the fake Codex backend, configured with exactly
the README's "OpenClaw" configuration: a plain turn, and a turn in which OpenClaw runs its `read` tool.

OpenClaw and the Node 24 it needs are installed into the repo's ignored `.cache/openclaw` on first use (about
800 MB, a few minutes); the test skips, saying why, only where npm cannot install them. One turn takes OpenClaw
30-60 s on a small machine (most of it its own start-up).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.fakes.codex_models import DEFAULT_MODELS
from scripts.gateway_process import GatewayProcess
from tests import openclaw


@pytest.fixture(scope="module")
def binary() -> Path:
    found, why = openclaw.install()
    if found is None:
        pytest.skip(f"OpenClaw cannot be installed here: {why}")
    return found


def config_for(gateway: GatewayProcess) -> dict[str, Any]:
    """The README's configuration, pointed at this test's gateway (only the port differs)."""
    config = openclaw.readme_config()
    provider = config["models"]["providers"]["codex-gateway"]
    assert provider["baseUrl"] == "http://127.0.0.1:8787/v1"
    provider["baseUrl"] = f"{gateway.base_url}/v1"
    return config


def test_the_readme_configuration_is_what_openclaw_config_prints(
    gateway: GatewayProcess, backend: FakeCodexBackend
) -> None:
    assert [m["slug"] for m in backend.models] == [m["slug"] for m in DEFAULT_MODELS]
    done = subprocess.run(
        [sys.executable, "-m", "codex_gateway.cli", "openclaw-config", "--gateway", gateway.base_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == config_for(gateway)


def test_plain_turn(binary: Path, gateway: GatewayProcess, backend: FakeCodexBackend, tmp_path: Path) -> None:
    backend.enqueue(SSEScript(ev.text(["Hello ", "from the ", "gateway."])))
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    out = openclaw.run(binary, config_for(gateway), "Say hello.", workspace, tmp_path / "home", "plain")
    assert "Hello from the gateway." in out
    (rec,) = backend.responses_requests()
    assert rec.status == 200, rec.error
    assert rec.json["model"] == "gpt-5.4"
    assert rec.json["reasoning"]["effort"] == "medium"  # OpenClaw's default thinking level, as configured
    assert rec.json["tool_choice"] == "auto" and len(rec.json["tools"]) > 5
    user_text = json.dumps([i for i in rec.json["input"] if i.get("role") == "user"])
    assert "Say hello." in user_text


def test_tool_turn_runs_read(binary: Path, gateway: GatewayProcess, backend: FakeCodexBackend, tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "HELLO.txt").write_text("the secret word is PINEAPPLE\n")
    call = ev.tool_calls([("read", json.dumps({"path": "HELLO.txt"}), "call_read_1")])
    backend.enqueue(SSEScript(call), SSEScript(ev.text(["The secret word ", "is PINEAPPLE."])))
    question = "What is the secret word in HELLO.txt?"
    out = openclaw.run(binary, config_for(gateway), question, workspace, tmp_path / "home", "tool")
    assert "The secret word is PINEAPPLE." in out
    first, second = backend.responses_requests()
    assert (first.status, second.status) == (200, 200), (first.error, second.error)
    calls = [i for i in second.json["input"] if i.get("type") == "function_call"]
    outputs = [i for i in second.json["input"] if i.get("type") == "function_call_output"]
    assert [c["name"] for c in calls] == ["read"]
    assert len(outputs) == 1 and outputs[0]["call_id"] == calls[0]["call_id"]  # OpenClaw rewrites the id: still paired
    assert "PINEAPPLE" in str(outputs[0]["output"])
    assert second.json["prompt_cache_key"] == first.json["prompt_cache_key"]  # one conversation, one cache key
