"""Real mitmdump + addon, real openai SDK, fake Codex backend that enforces the real backend's rules."""

from __future__ import annotations

import threading

import httpx
import openai
import orjson
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    },
    {"type": "function", "function": {"name": "ls", "parameters": {"type": "object", "properties": {}}}},
]


def test_non_streamed_answer_is_one_chat_completion(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.text(["Hel", "lo ", "world"], usage=ev.usage(input_tokens=12, output_tokens=3))))
    done = client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "hi"}])
    assert done.object == "chat.completion"
    assert done.choices[0].message.content == "Hello world"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and (done.usage.prompt_tokens, done.usage.completion_tokens) == (12, 3)


def test_upstream_request_follows_backend_rules(
    client: openai.OpenAI, backend: FakeCodexBackend, login: FakeLogin
) -> None:
    client.chat.completions.create(
        model="gpt-5.4",
        messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": "Answer in English."},
            {"role": "user", "content": "hi"},
        ],
        max_completion_tokens=100,
        temperature=0.2,
    )
    (rec,) = backend.responses_requests()
    assert rec.status == 200, rec.error
    body = rec.json
    assert body["instructions"] == "Be terse.\n\nAnswer in English."
    assert body["input"] == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]
    assert (body["store"], body["stream"]) == (False, True)
    assert "max_completion_tokens" not in body and "temperature" not in body
    assert rec.headers["authorization"] == f"Bearer {login.access_token}"
    assert rec.headers["chatgpt-account-id"] == login.account_id
    assert rec.headers["accept"] == "text/event-stream"
    assert rec.headers["accept-encoding"] == "identity"
    assert rec.headers["session_id"] == body["prompt_cache_key"]
    assert rec.headers["originator"] == "codex_gateway"


def test_client_key_is_never_forwarded(gateway: GatewayProcess, backend: FakeCodexBackend, login: FakeLogin) -> None:
    r = httpx.post(
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": "Bearer client-secret-key", "Cookie": "a=b"},
    )
    assert r.status_code == 200
    (rec,) = backend.responses_requests()
    assert "client-secret-key" not in str(rec.headers)
    assert "cookie" not in rec.headers


def test_stream_is_incremental(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    # The fake holds the rest of the answer until the test has seen the first content chunk via the gateway.
    release = threading.Event()
    events = ev.text(["first", " second"])
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.delta")
    backend.enqueue(SSEScript(events, hold_after=first_delta + 1, release=release))
    stream = client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "hi"}], stream=True)
    contents = []
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            contents.append(chunk.choices[0].delta.content)
            release.set()
    assert contents == ["first", " second"]
    (rec,) = backend.responses_requests()
    assert not rec.disconnected.is_set()


def test_stream_wire_format(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.text(["a", "b"])))
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}], "stream": True},
    ) as r:
        assert r.headers["content-type"] == "text/event-stream"
        assert r.headers["transfer-encoding"] == "chunked"
        assert "set-cookie" not in r.headers and "alt-svc" not in r.headers and "cf-ray" not in r.headers
        assert "access-control-allow-origin" not in r.headers
        body = r.read().decode()
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events), "no event: lines on chat streams"
    assert events[-1] == "data: [DONE]"
    chunks = [orjson.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]] == ["a", "b"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1
    assert all("usage" not in c for c in chunks), "no usage field unless include_usage"


def test_stream_helper_with_serialized_tool_calls(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    calls = [("read", '{"path": "HELLO.txt"}', "call_a"), ("ls", "{}", "call_b")]
    backend.enqueue(SSEScript(ev.tool_calls(calls, interleave=True, split=3)))
    with client.chat.completions.stream(
        model="gpt-5.4", messages=[{"role": "user", "content": "read it"}], tools=TOOLS
    ) as stream:
        done_events = [e for e in stream if e.type == "tool_calls.function.arguments.done"]
        final = stream.get_final_completion()
    assert [(e.name, e.arguments) for e in done_events] == [("read", '{"path": "HELLO.txt"}'), ("ls", "{}")]
    msg = final.choices[0].message
    assert final.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, c.function.arguments) for c in msg.tool_calls or []] == [
        ("call_a", "read", '{"path": "HELLO.txt"}'),
        ("call_b", "ls", "{}"),
    ]
    body = backend.responses_requests()[0].json
    assert body["tools"][0] == {
        "type": "function",
        "name": "read",
        "description": "Read a file",
        "parameters": TOOLS[0]["function"]["parameters"],
        "strict": False,
    }


def test_tool_result_round_trip(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    client.chat.completions.create(
        model="gpt-5.4",
        messages=[
            {"role": "user", "content": "read it"},
            {
                "role": "assistant",
                "content": "Reading.",
                "tool_calls": [{"id": "callabc", "type": "function", "function": {"name": "read", "arguments": "{}"}}],
            },
            {"role": "tool", "tool_call_id": "callabc", "content": "file body"},
        ],
        tools=TOOLS,
        tool_choice="auto",
    )
    (rec,) = backend.responses_requests()
    assert rec.status == 200, rec.error
    assert rec.json["input"][1:] == [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Reading."}]},
        {"type": "function_call", "name": "read", "arguments": "{}", "call_id": "callabc"},
        {"type": "function_call_output", "call_id": "callabc", "output": "file body"},
    ]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/chat/completions", 405), ("POST", "/v1/embeddings", 404), ("GET", "/backend-api/codex/models", 404)],
)
def test_unserved_requests_are_never_forwarded(
    gateway: GatewayProcess, backend: FakeCodexBackend, method: str, path: str, status: int
) -> None:
    r = httpx.request(method, gateway.base_url + path, json={})
    assert r.status_code == status
    assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    assert backend.requests == []


def test_bad_request_is_an_envelope_and_nothing_goes_upstream(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": "x"}], n=2)
    assert info.value.param == "n"
    assert backend.requests == []
