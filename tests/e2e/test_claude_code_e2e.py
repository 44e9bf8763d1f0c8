"""The real Claude Code CLI against a real mitmdump with the addon and the fake Codex backend, fully offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import GatewayProcess
from tests import claude_code


@pytest.fixture(scope="module")
def claude() -> Path:
    binary, why = claude_code.install()
    if binary is None:
        pytest.skip(f"Claude Code cannot be installed here: {why}")
    return binary


def test_plain_turn(claude: Path, gateway: GatewayProcess, backend: FakeCodexBackend, tmp_path: Path) -> None:
    backend.enqueue(SSEScript(ev.text(["PO", "NG"], usage=ev.usage(5000, 3, cached=4096))))
    result = claude_code.run(claude, gateway.base_url, "say PONG", tmp_path, tmp_path / "home")
    assert (result["is_error"], result["result"], result["stop_reason"]) == (False, "PONG", "end_turn")
    assert result["usage"]["cache_read_input_tokens"] == 4096
    (rec,) = backend.responses_requests()
    assert rec.status == 200, rec.error
    assert not any(item.get("role") == "system" for item in rec.json["input"])
    assert rec.json["prompt_cache_key"] == rec.headers["session_id"]


def test_tool_turn_runs_a_real_tool(
    claude: Path, gateway: GatewayProcess, backend: FakeCodexBackend, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "HELLO.txt").write_text("the secret word is PAPAYA\n")
    call = ev.tool_calls([("Read", json.dumps({"file_path": str(work / "HELLO.txt")}), "call_read1")])
    first = ev.response(ev.reasoning(["**Reading the file**"], encrypted_content="gAAAAencReason1")[2:-1], call[2:-1])
    backend.enqueue(SSEScript(first, chunks=17), SSEScript(ev.text("The secret word is PAPAYA.")))
    result = claude_code.run(claude, gateway.base_url, "What does HELLO.txt say?", work, tmp_path / "home")
    assert (result["is_error"], result["result"], result["num_turns"]) == (False, "The secret word is PAPAYA.", 2)
    first_rec, second = backend.responses_requests()
    assert (first_rec.status, second.status) == (200, 200), (first_rec.error, second.error)
    items = second.json["input"]
    outputs = [i for i in items if i["type"] == "function_call_output"]
    assert len(outputs) == 1 and outputs[0]["call_id"] == "call_read1" and "PAPAYA" in str(outputs[0]["output"])
    # Claude Code kept the thinking block and sent its signature back: the reasoning goes upstream again.
    assert [i["encrypted_content"] for i in items if i["type"] == "reasoning"] == ["gAAAAencReason1"]
