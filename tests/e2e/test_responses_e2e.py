"""Issue 6 through the real gateway: /v1/responses, the live model list, images (openai SDK, fake backend)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "codex_cli"


@pytest.fixture
def fresh(backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway with an empty model cache (the catalog is per process and per gateway_home)."""
    with GatewayProcess(backend.port, login_home[0], tmp_path) as gw:
        yield gw


def test_responses_create_non_streamed(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.text(["Hel", "lo"], usage=ev.usage(input_tokens=7, output_tokens=2))))
    resp = client.responses.create(model="gpt-5.4", input="hi", temperature=0.5, max_output_tokens=100)
    assert resp.output_text == "Hello"
    assert resp.usage is not None and (resp.usage.input_tokens, resp.usage.output_tokens) == (7, 2)
    body = backend.responses_requests()[0].json
    assert (body["store"], body["stream"]) == (False, True)
    assert "temperature" not in body and "max_output_tokens" not in body and body["instructions"]


def test_responses_stream_helper_gets_output_text(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.text(["a", "b", "c"])))
    with client.responses.stream(model="gpt-5.4", input="hi") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["a", "b", "c"]
    assert final.output_text == "abc", "response.completed gets its output filled from the finished items"


def test_responses_function_call_round_trip(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.tool_calls([("ls", "{}", "call_1")])))
    resp = client.responses.create(
        model="gpt-5.4",
        input="list",
        tools=[{"type": "function", "name": "ls", "parameters": {"type": "object", "properties": {}}}],
    )
    calls = [o for o in resp.output if o.type == "function_call"]
    assert [(c.name, c.call_id) for c in calls] == [("ls", "call_1")]
    backend.reset()
    follow = [
        *[o.model_dump(exclude_none=True) for o in resp.output],
        {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"},
    ]
    client.responses.create(model="gpt-5.4", input=follow)
    sent = backend.responses_requests()[0]
    assert sent.status == 200, sent.error
    assert all("id" not in item or not item["id"].startswith(("fc_", "rs_")) for item in sent.json["input"])


def test_previous_response_id_is_a_clear_400(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-5.4", input="hi", previous_response_id="resp_123")
    assert info.value.param == "previous_response_id"
    assert backend.requests == []


def test_recorded_codex_cli_request_goes_through(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    for name in ("request.json", "request_tool_turn.json"):
        backend.reset()
        recorded = json.loads((FIXTURES / name).read_text())
        headers = {
            k: v for k, v in recorded["headers"].items() if k not in ("host", "authorization", "accept-encoding")
        }
        r = httpx.post(gateway.base_url + "/v1/responses", json=recorded["body"], headers=headers, timeout=20)
        assert r.status_code == 200, r.text
        assert r.text.rstrip().endswith("}") and "response.completed" in r.text
        (sent,) = backend.responses_requests()
        assert sent.status == 200, sent.error
        assert sent.headers["session-id"] == recorded["headers"]["session-id"]
        assert sent.headers["x-codex-turn-metadata"] == recorded["headers"]["x-codex-turn-metadata"]


def test_compact_is_forwarded(gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    r = httpx.post(gateway.base_url + "/v1/responses/compact", json={"model": "gpt-5.4", "input": []}, timeout=20)
    assert r.status_code == 200
    (sent,) = [q for q in backend.requests if q.route.endswith("/responses/compact")]
    assert sent.json == {"model": "gpt-5.4", "input": []}


def test_models_come_from_the_live_catalog(fresh: GatewayProcess, backend: FakeCodexBackend) -> None:
    with openai.OpenAI(base_url=fresh.base_url + "/v1", api_key="x", max_retries=0) as c:
        models = {m.id: m for m in c.models.list()}
        assert "gpt-5.4" in models and "gpt-5.1-codex-max" not in models, "hidden models are not listed"
        assert models["gpt-5.4"].model_extra and models["gpt-5.4"].model_extra.get("input_modalities")
        assert c.models.retrieve("gpt-5.4").id == "gpt-5.4"
        with pytest.raises(openai.NotFoundError) as info:
            c.chat.completions.create(model="gpt-9-unknown", messages=[{"role": "user", "content": "x"}])
        assert info.value.code == "model_not_found"
    assert [q.route for q in backend.requests] == ["/backend-api/codex/models"]


def test_images_generate(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    backend.enqueue(SSEScript(ev.image_generation()))
    result = client.images.generate(model="gpt-image-1", prompt="a tiny square", size="1024x1024")
    assert result.data and base64.b64decode(result.data[0].b64_json or "") == base64.b64decode(ev.TINY_PNG_B64)
    assert result.data[0].revised_prompt == "A tiny test image."
    body = backend.responses_requests()[0].json
    assert any(t["type"] == "image_generation" for t in body["tools"])


def test_images_edit_with_a_file(client: openai.OpenAI, backend: FakeCodexBackend, tmp_path: Path) -> None:
    png = tmp_path / "in.png"
    png.write_bytes(base64.b64decode(ev.TINY_PNG_B64))
    backend.enqueue(SSEScript(ev.image_generation()))
    with png.open("rb") as f:
        result = client.images.edit(model="gpt-image-1", image=f, prompt="make it blue")
    assert result.data and result.data[0].b64_json
    sent = backend.responses_requests()[0].json
    images = [p for it in sent["input"] if it["type"] == "message" for p in it["content"] if p["type"] == "input_image"]
    assert images and images[0]["image_url"].startswith("data:image/png;base64,")


def test_images_validation_errors_are_envelopes(client: openai.OpenAI, backend: FakeCodexBackend) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.images.generate(model="gpt-image-1", prompt="x", n=2)
    assert info.value.param == "n"
    assert backend.requests == []
