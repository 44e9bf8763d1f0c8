"""Model aliases and `<model>-<effort>` names through a real mitmdump: what the backend gets, what the client sees."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import write_login

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway(
    backend: FakeCodexBackend, issuer: FakeIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    home = tmp_path_factory.mktemp("names")
    write_login(home / "codex", issuer.issue(issuer.add_account("names@example.com")).auth_json())
    aliases = ["--set", "codex_model_aliases=gpt-4o=gpt-5.4,fast=gpt-5.4-mini-low"]
    with GatewayProcess(backend.port, home / "codex", home / "gw", extra=aliases) as gw:
        yield gw


@pytest.fixture
def client(gateway: GatewayProcess) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=20) as c:
        yield c


@pytest.mark.parametrize("stream", [False, True])
def test_an_alias_with_an_effort_is_sent_as_its_model_and_the_answer_says_so(
    client: openai.OpenAI, backend: FakeCodexBackend, stream: bool
) -> None:
    if stream:
        chunks = list(client.chat.completions.create(model="fast", messages=MESSAGES, stream=True))
        served = {c.model for c in chunks}
    else:
        served = {client.chat.completions.create(model="fast", messages=MESSAGES).model}
    sent = backend.responses_requests()[-1].json
    assert sent["model"] == "gpt-5.4-mini"
    assert sent["reasoning"] == {"effort": "low", "summary": "auto"}
    assert served == {"gpt-5.4-mini"}


def test_an_effort_name_on_the_responses_endpoint(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    answer = client.responses.create(model="gpt-5.4-high", input="hi")
    sent = backend.responses_requests()[-1].json
    assert (sent["model"], sent["reasoning"]["effort"]) == ("gpt-5.4", "high")
    assert answer.model == "gpt-5.4"


def test_an_explicit_effort_wins_over_the_name(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    client.chat.completions.create(model="gpt-5.4-high", messages=MESSAGES, reasoning_effort="minimal")
    sent = backend.responses_requests()[-1].json
    assert (sent["model"], sent["reasoning"]["effort"]) == ("gpt-5.4", "minimal")


def test_aliases_are_listed_and_unknown_targets_are_not_found(client: openai.OpenAI, gateway: GatewayProcess) -> None:
    listed = {m.id: m for m in client.models.list()}
    assert {"gpt-4o", "fast", "gpt-5.4"} <= set(listed)
    assert (listed["fast"].model_extra or {})["alias_for"] == "gpt-5.4-mini-low"
    assert client.models.retrieve("gpt-4o").model_extra["alias_for"] == "gpt-5.4"  # type: ignore[index]
    missing = httpx.post(
        gateway.base_url + "/v1/chat/completions", json={"model": "gpt-9-high", "messages": MESSAGES}, timeout=10
    )
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
