"""`codex-gateway openclaw-config`: OpenClaw model entries from the gateway's model objects, and its refusals."""

from __future__ import annotations

from typing import Any

import pytest
from codex_gateway.cli import main
from codex_gateway.cli.openclaw import model_entry
from codex_gateway.cli.openclaw import openclaw_config

from scripts.gateway_process import free_port

GPT = {
    "id": "gpt-5.4",
    "object": "model",
    "display_name": "GPT-5.4",
    "context_window": 400000,
    "reasoning_efforts": ["low", "medium", "high"],
    "input_modalities": ["text", "image"],
}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            GPT,
            {"name": "GPT-5.4 (codex-gateway)", "reasoning": True, "contextWindow": 400000, "input": ["text", "image"]},
        ),
        (
            {"id": "plain", "reasoning_efforts": [], "input_modalities": ["text"]},
            {"reasoning": False, "input": ["text"]},
        ),
        ({"id": "odd", "input_modalities": ["audio"]}, {"input": ["text"], "contextWindow": 272000}),
    ],
)
def test_model_entries(model: dict[str, Any], expected: dict[str, Any]) -> None:
    entry = model_entry(model)
    assert {k: entry[k] for k in expected} == expected
    assert entry["cost"] == {"input": 0, "output": 0, "cacheRead": 0, "cacheWrite": 0}
    assert ("compat" in entry) is entry["reasoning"]


def test_reasoning_models_let_openclaw_send_their_efforts() -> None:
    assert model_entry(GPT)["compat"] == {
        "supportsReasoningEffort": True,
        "supportedReasoningEfforts": GPT["reasoning_efforts"],
    }


def test_the_configuration_names_the_provider_and_default_model() -> None:
    config = openclaw_config([GPT], "http://127.0.0.1:8787/", "local", "gpt-5.4")
    assert config["agents"]["defaults"]["model"]["primary"] == "codex-gateway/gpt-5.4"
    provider = config["models"]["providers"]["codex-gateway"]
    assert (provider["baseUrl"], provider["api"], provider["apiKey"]) == (
        "http://127.0.0.1:8787/v1",
        "openai-completions",
        "local",
    )


def test_an_unreachable_gateway_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openclaw-config", "--gateway", f"http://127.0.0.1:{free_port()}"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert captured.err.startswith("codex-gateway openclaw-config: error: cannot reach the gateway")
