"""Answer shapes a strict client relies on, and upstream failures, through the real gateway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess

MESSAGES = [{"role": "user", "content": "hi"}]


def _stream(gateway: GatewayProcess, **body: object) -> tuple[httpx.Response, list[dict]]:
    payload = {"model": "gpt-5.4", "messages": MESSAGES, "stream": True, **body}
    r = httpx.post(gateway.base_url + "/v1/chat/completions", json=payload, timeout=20)
    events = [e[6:] for e in r.text.split("\n\n") if e.startswith("data: ")]
    return r, [orjson.loads(e) if e != "[DONE]" else {"DONE": True} for e in events]


def test_usage_chunk_exactly_when_asked(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    usage = ev.usage(input_tokens=900, output_tokens=120, cached=768, reasoning=64)
    backend.enqueue(SSEScript(ev.text("ok", usage=usage)))
    _, chunks = _stream(gateway, stream_options={"include_usage": True})
    assert chunks[-1] == {"DONE": True}
    last = chunks[-2]
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 900,
        "completion_tokens": 120,
        "total_tokens": 1020,
        "prompt_tokens_details": {"cached_tokens": 768},
        "completion_tokens_details": {"reasoning_tokens": 64},
    }
    assert all(c["usage"] is None for c in chunks[:-2])


def test_reasoning_summary_is_reasoning_content_not_content(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.response(ev.reasoning(["**Plan**", "Then act"]), ev.text("Answer"))))
    done = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, reasoning_effort="high")
    msg = done.choices[0].message
    assert msg.content == "Answer"
    assert msg.model_extra is not None and msg.model_extra["reasoning_content"] == "**Plan**\n\nThen act"
    body = backend.responses_requests()[0].json
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]


@pytest.mark.parametrize(("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")])
def test_incomplete_answers_finish_with_the_reason(
    client: openai.OpenAI, backend: FakeCodexBackend, reason: str, finish: str
) -> None:
    backend.enqueue(SSEScript(ev.incomplete(reason, after=ev.text("Partial"))))
    done = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert (done.choices[0].message.content, done.choices[0].finish_reason) == ("Partial", finish)


def test_stop_sequence_cuts_across_deltas(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.text(["one two EN", "D three"])))
    stream = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, stream=True, stop=["END"])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two "
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "stop" not in backend.responses_requests()[0].json


def test_refusal_is_a_refusal_delta(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.refusal("I can't help with that.")))
    done = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert done.choices[0].message.refusal == "I can't help with that."
    assert not done.choices[0].message.content


def test_failure_mid_stream_is_an_error_event_without_done(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.failed("server_is_overloaded", "Try again later.", after=ev.text(["Hel"]))))
    _, chunks = _stream(gateway)
    assert {"DONE": True} not in chunks
    assert chunks[-1] == {
        "error": {"message": "Try again later.", "type": "server_error", "param": None, "code": "server_is_overloaded"}
    }
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["Hel"]


def test_sdk_raises_on_mid_stream_failure(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.failed("context_length_exceeded", "Your input exceeds the context window.")))
    with pytest.raises(openai.APIError, match="exceeds the context window"):
        list(client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, stream=True))


def test_stream_without_completed_event_is_reported(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.response(ev.text(["Hel", "lo"]), status=None)))
    _, chunks = _stream(gateway)
    assert chunks[-1]["error"]["code"] == "stream_incomplete"
    assert {"DONE": True} not in chunks


def test_cut_upstream_connection_cuts_the_client_stream(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    events = ev.text(["a", "b", "c"])
    backend.enqueue(SSEScript(events, cut_after=4))
    payload = {"model": "gpt-5.4", "messages": MESSAGES, "stream": True}
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.post(gateway.base_url + "/v1/chat/completions", json=payload, timeout=20)


def test_non_streamed_failure_is_an_http_error(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.failed("server_is_overloaded", "Overloaded.")))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert info.value.code == "server_is_overloaded"


@pytest.fixture
def lone_client(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path: Path
) -> Iterator[openai.OpenAI]:
    """A gateway of its own: a usage limit cools its only account down for hours."""
    with GatewayProcess(backend.port, login_home[0], tmp_path) as gw:
        with openai.OpenAI(base_url=gw.base_url + "/v1", api_key="unused", max_retries=0) as c:
            yield c


def test_usage_limit_is_429_with_retry_after(lone_client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    client = lone_client
    body = {
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": 1777936568,
            "eligible_promo": None,
            "resets_in_seconds": 13872,
        }
    }
    backend.enqueue(ErrorScript(429, body, headers={"x-codex-primary-used-percent": "100"}))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, stream=True)
    assert info.value.code == "usage_limit_reached"
    headers = info.value.response.headers
    assert (headers["retry-after"], headers["x-should-retry"]) == ("13872", "false")
    assert headers["x-codex-primary-used-percent"] == "100"


def test_detail_400_is_rewrapped(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(ErrorScript(400, {"detail": "The 'gpt-9' model is not supported."}))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES)
    assert info.value.body == {
        "message": "The 'gpt-9' model is not supported.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize("status", [500, 502, 503])
def test_upstream_5xx_stays_5xx(client: openai.OpenAI, backend: FakeCodexBackend, status: int) -> None:
    backend.enqueue(ErrorScript(status, "<html><title>Bad gateway</title></html>"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)
    assert info.value.status_code == status
    assert "<html" not in info.value.message


def test_client_disconnect_closes_upstream(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    release = threading.Event()
    backend.enqueue(SSEScript(ev.text(["first", " second"]), hold_after=3, release=release))
    payload = {"model": "gpt-5.4", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", gateway.base_url + "/v1/chat/completions", json=payload, timeout=20) as r:
        next(r.iter_raw())  # the role chunk arrived: the stream is open
    (rec,) = backend.wait_for_requests(1)
    assert rec.disconnected.wait(10), "the gateway kept the upstream request open after the client left"
    release.set()
