"""A running mitmdump follows `codex-gateway accounts use/auto/exclude` at its next request, without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openai

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import write_login

MESSAGES = [{"role": "user", "content": "hi"}]


def accounts(home: Path, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODEX_", "OPENAI_"))}
    env.update(CODEX_HOME=str(home / "codex"), CODEX_GATEWAY_HOME=str(home / "gw" / "gateway-home"))
    result = subprocess.run(
        [sys.executable, "-m", "codex_gateway.cli", "accounts", *args], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_pin_and_exclusion_reach_a_running_gateway(
    backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path: Path
) -> None:
    a = write_login(tmp_path / "codex", issuer.issue(issuer.add_account("a@example.com")).auth_json())
    b_tokens = issuer.issue(issuer.add_account("b@example.com"))
    b_file = tmp_path / "gw" / "gateway-home" / "accounts" / f"{b_tokens.account_id}.json"
    b_file.parent.mkdir(parents=True)
    b_file.write_text(json.dumps(b_tokens.auth_json()))

    def served_by(client: openai.OpenAI) -> set[str]:
        backend.reset()
        for n in range(3):
            client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": f"hi {n}"}])
        return {r.headers["chatgpt-account-id"] for r in backend.responses_requests()}

    with GatewayProcess(backend.port, tmp_path / "codex", tmp_path / "gw") as gw:
        with openai.OpenAI(base_url=gw.base_url + "/v1", api_key="unused", max_retries=0, timeout=20) as client:
            accounts(tmp_path, "use", "b@example.com")
            assert served_by(client) == {b_tokens.account_id}
            accounts(tmp_path, "use", "a@example.com")
            assert served_by(client) == {a.account_id}
            accounts(tmp_path, "auto")
            accounts(tmp_path, "exclude", "a@example.com")
            assert served_by(client) == {b_tokens.account_id}
