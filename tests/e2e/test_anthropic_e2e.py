"""Real mitmdump + addon, the real `anthropic` Python SDK, the fake Codex backend enforcing the backend's rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess

MODEL = "claude-opus-5-5"
TOOLS: list[Any] = [
    {
        "name": "read_file",
        "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
]
HI: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def claude(gateway: GatewayProcess) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=20) as c:
        yield c


def test_non_streamed_message(claude: anthropic.Anthropic, backend: FakeCodexBackend, login: FakeLogin) -> None:
    backend.enqueue(SSEScript(ev.text(["Hel", "lo"], usage=ev.usage(1200, 7, cached=1000))))
    message = claude.messages.create(model=MODEL, max_tokens=1024, system="Be terse.", messages=HI)
    assert (message.type, message.role, message.model) == ("message", "assistant", MODEL)
    assert [b.type for b in message.content] == ["text"] and message.content[0].text == "Hello"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (
        200,
        1000,
        7,
    )
    (rec,) = backend.responses_requests()
    assert rec.status == 200, rec.error
    assert rec.json["instructions"] == "Be terse." and rec.json["model"] == "gpt-5.4"
    assert rec.headers["authorization"] == f"Bearer {login.access_token}"
    assert "x-api-key" not in rec.headers


def test_streamed_message_assembles(claude: anthropic.Anthropic, backend: FakeCodexBackend) -> None:
    backend.enqueue(
        SSEScript(ev.response(ev.reasoning(["**Plan**"])[2:-1], ev.text(["The ", "answer."])[2:-1]), chunks=9)
    )
    kinds: list[str] = []
    with claude.messages.stream(
        model=MODEL, max_tokens=2048, messages=HI, thinking={"type": "enabled", "budget_tokens": 1024}
    ) as stream:
        for event in stream:
            kinds.append(event.type)
        final = stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "**Plan**"  # type: ignore[union-attr]
    assert final.content[1].text == "The answer."  # type: ignore[union-attr]
    (rec,) = backend.responses_requests()
    assert rec.json["reasoning"] == {"effort": "low", "summary": "auto"}
    assert rec.json["include"] == ["reasoning.encrypted_content"]


def test_tool_use_round_trip(claude: anthropic.Anthropic, backend: FakeCodexBackend) -> None:
    turn1 = ev.response(
        ev.reasoning(["**Read it**"], encrypted_content="gAAAAenc1")[2:-1],
        ev.tool_calls([("read_file", '{"path":"notes.txt"}', "call_1")])[2:-1],
    )
    backend.enqueue(SSEScript(turn1), SSEScript(ev.text("It says hello.")))
    thinking: Any = {"type": "adaptive"}
    first = claude.messages.create(model=MODEL, max_tokens=4096, messages=HI, tools=TOOLS, thinking=thinking)
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    assert (use.id, use.name, use.input) == ("call_1", "read_file", {"path": "notes.txt"})
    history: list[Any] = [
        *HI,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "hello"}]},
    ]
    second = claude.messages.create(model=MODEL, max_tokens=4096, messages=history, tools=TOOLS, thinking=thinking)
    assert second.content[0].text == "It says hello."  # type: ignore[union-attr]
    rec = backend.responses_requests()[1]
    assert rec.status == 200, rec.error
    kinds = [(i["type"], i.get("encrypted_content") or i.get("call_id")) for i in rec.json["input"]]
    assert kinds == [
        ("message", None),
        ("reasoning", "gAAAAenc1"),
        ("function_call", "call_1"),
        ("function_call_output", "call_1"),
    ]


def test_beta_messages_and_bearer_key(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    with anthropic.Anthropic(base_url=gateway.base_url, auth_token="unused", max_retries=0, timeout=20) as c:
        message = c.beta.messages.create(
            model=MODEL, max_tokens=10, messages=HI, betas=["interleaved-thinking-2025-05-14"]
        )
    assert message.content[0].text == "Hello from fake Codex"  # type: ignore[union-attr]


def test_count_tokens_is_local(claude: anthropic.Anthropic, backend: FakeCodexBackend) -> None:
    counted = claude.messages.count_tokens(model=MODEL, messages=HI, system="You are a helpful assistant.", tools=TOOLS)
    assert counted.input_tokens > 10
    assert backend.responses_requests() == []


def test_models_in_anthropics_shape(claude: anthropic.Anthropic) -> None:
    ids = [m.id for m in claude.models.list()]
    assert "gpt-5.4" in ids
    assert claude.models.retrieve("gpt-5.4").type == "model"


def test_bad_request_raises_bad_request_error(claude: anthropic.Anthropic, backend: FakeCodexBackend) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": [{"type": "video"}]}])  # type: ignore[list-item]
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert backend.responses_requests() == []


@pytest.mark.parametrize(
    ("script", "exc", "etype"),
    [
        (
            ErrorScript(
                429, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}, headers={"retry-after": "7"}
            ),
            anthropic.RateLimitError,
            "rate_limit_error",
        ),
        (ErrorScript(500, {"detail": "boom"}), anthropic.InternalServerError, "api_error"),
        (ErrorScript(400, {"detail": "Unsupported parameter: x"}), anthropic.BadRequestError, "invalid_request_error"),
    ],
)
def test_upstream_errors_raise_the_sdks_classes(
    claude: anthropic.Anthropic, backend: FakeCodexBackend, script: ErrorScript, exc: type[Exception], etype: str
) -> None:
    backend.enqueue(script)
    with pytest.raises(exc) as caught:
        claude.messages.create(model=MODEL, max_tokens=10, messages=HI)
    assert caught.value.body["error"]["type"] == etype  # type: ignore[attr-defined]
    if etype == "rate_limit_error":
        assert caught.value.response.headers["retry-after"] == "7"  # type: ignore[attr-defined]


def test_mid_stream_failure_raises_and_never_stops_cleanly(
    claude: anthropic.Anthropic, backend: FakeCodexBackend
) -> None:
    backend.enqueue(SSEScript(ev.failed("server_is_overloaded", "try later", after=ev.text("par")[2:-1])))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        with claude.messages.stream(model=MODEL, max_tokens=10, messages=HI) as stream:
            seen += [e.type for e in stream]
    assert "message_stop" not in seen
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_unknown_model_is_not_found(claude: anthropic.Anthropic, backend: FakeCodexBackend) -> None:
    claude.models.list()  # the live catalog is authoritative from now on
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="gpt-nope", max_tokens=10, messages=HI)
    assert backend.responses_requests() == []


def test_unknown_path_and_method_get_anthropic_envelopes(gateway: GatewayProcess) -> None:
    headers = {"anthropic-version": "2023-06-01"}
    missing = httpx.post(gateway.base_url + "/v1/complete", headers=headers, json={})
    wrong = httpx.get(gateway.base_url + "/v1/messages")
    assert (missing.status_code, missing.json()["error"]["type"]) == (404, "not_found_error")
    assert (wrong.status_code, wrong.json()["type"]) == (405, "error")


def test_gateway_key_size_and_media_errors_are_anthropic_envelopes(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path: Path
) -> None:
    extra = ["--set", "gateway_api_key=s3cret", "--set", "gateway_body_limit=2k"]
    with GatewayProcess(backend.port, login_home[0], tmp_path, extra=extra) as gw:
        with anthropic.Anthropic(base_url=gw.base_url, api_key="wrong", max_retries=0) as c:
            with pytest.raises(anthropic.AuthenticationError):
                c.messages.create(model=MODEL, max_tokens=10, messages=HI)
        with anthropic.Anthropic(base_url=gw.base_url, api_key="s3cret", max_retries=0) as c:
            assert c.messages.create(model=MODEL, max_tokens=10, messages=HI).content
        key = {"x-api-key": "s3cret"}
        big = httpx.post(gw.base_url + "/v1/messages", headers=key, content=b"x" * 4096)
        text = httpx.post(gw.base_url + "/v1/messages", headers={**key, "content-type": "text/plain"}, content=b"x")
        assert (big.status_code, big.json()["error"]["type"]) == (413, "request_too_large")
        assert (text.status_code, text.json()["error"]["type"]) == (415, "invalid_request_error")
        assert "s3cret" not in gw.log()
