"""Token refresh and account rotation through the real gateway (fake issuer mounted on the fake backend)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import write_login

MESSAGES = [{"role": "user", "content": "hi"}]
EXPIRED = {
    "error": {
        "message": "Provided authentication token is expired. Please try signing in again.",
        "type": "invalid_request_error",
        "code": "token_expired",
        "param": None,
    }
}


def _usage_limit(resets_in: int) -> dict[str, object]:
    return {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_in_seconds": resets_in,
        }
    }


@pytest.fixture
def home(issuer: FakeIssuer, tmp_path: Path) -> Path:
    write_login(tmp_path / "codex", issuer.issue(issuer.add_account("a@example.com")).auth_json())
    return tmp_path


@pytest.fixture
def client(backend: FakeCodexBackend, home: Path) -> Iterator[openai.OpenAI]:
    with GatewayProcess(backend.port, home / "codex", home / "gw") as gw:
        with openai.OpenAI(base_url=gw.base_url + "/v1", api_key="unused", max_retries=0) as c:
            yield c


def test_401_refreshes_once_and_retries(
    client: openai.OpenAI, backend: FakeCodexBackend, issuer: FakeIssuer, home: Path
) -> None:
    before = issuer.count("refresh_token")
    old = json.loads((home / "codex" / "auth.json").read_text())["tokens"]
    backend.enqueue(ErrorScript(401, EXPIRED))
    done = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert done.choices[0].message.content == "Hello from fake Codex"
    assert issuer.count("refresh_token") == before + 1
    new = json.loads((home / "codex" / "auth.json").read_text())["tokens"]
    first, retry = backend.responses_requests()
    assert first.headers["authorization"] == f"Bearer {old['access_token']}"
    assert retry.headers["authorization"] == f"Bearer {new['access_token']}" != first.headers["authorization"]
    assert (home / "codex" / "auth.json").stat().st_mode & 0o777 == 0o600


def test_second_401_tells_the_user_to_log_in(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(ErrorScript(401, EXPIRED), ErrorScript(401, EXPIRED))
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, stream=True)
    assert "log in" in info.value.message.lower() or "login" in info.value.message.lower()
    assert len(backend.responses_requests()) == 2


def test_usage_limit_moves_to_another_account(
    client: openai.OpenAI, backend: FakeCodexBackend, issuer: FakeIssuer, home: Path
) -> None:
    second = issuer.issue(issuer.add_account("b@example.com"))
    accounts = home / "gw" / "gateway-home" / "accounts"
    accounts.mkdir(parents=True, exist_ok=True)
    write_login(accounts, second.auth_json())
    (accounts / "auth.json").rename(accounts / f"{second.account_id}.json")
    backend.enqueue(ErrorScript(429, _usage_limit(3600)))
    first_answer = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert first_answer.choices[0].message.content == "Hello from fake Codex"
    limited, retried = backend.responses_requests()
    assert retried.headers["chatgpt-account-id"] == second.account_id != limited.headers["chatgpt-account-id"]
    backend.reset()
    client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "another conversation"}])
    (later,) = backend.responses_requests()
    assert later.headers["chatgpt-account-id"] == second.account_id, "the limited account is skipped until reset"


def test_all_accounts_limited_is_a_local_429(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(ErrorScript(429, _usage_limit(7200)))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    backend.reset()
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert backend.requests == [], "answered locally, without calling upstream"
    assert 7000 < int(info.value.response.headers["retry-after"]) <= 7200


def test_streaming_client_gets_the_retried_answer_whole(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(ErrorScript(401, EXPIRED))
    chunks = list(client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake Codex"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert len(backend.responses_requests()) == 2
