"""images: `/v1/images/generations` and `/v1/images/edits` → Codex image_generation requests, and back.

Request bodies are produced by the real OpenAI SDK (captured with an in-memory transport), so the JSON and
multipart shapes are exactly what clients send. Prepared Codex bodies are checked against the fake backend's
rules, and two tests run SDK → prepare → FakeCodexBackend → answer → SDK end to end.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import httpx2
import openai
import orjson
import pytest
from codex_gateway.errors import GatewayError
from codex_gateway.images.request import DEFAULT_ORCHESTRATOR
from codex_gateway.images.request import IMAGE_INSTRUCTIONS
from codex_gateway.images.request import ImageJob
from codex_gateway.images.request import answer_from_body
from codex_gateway.images.request import answer_from_events
from codex_gateway.images.request import buffered_answer
from codex_gateway.images.request import parse_multipart
from codex_gateway.images.request import prepare_edit
from codex_gateway.images.request import prepare_generation

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_rules import validate_responses_body
from scripts.fakes.codex_scripts import SSEScript

PNG = base64.b64decode(ev.TINY_PNG_B64)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 8
GIF = b"GIF89a" + b"\x00" * 10
PNG_URL = "data:image/png;base64," + ev.TINY_PNG_B64


def png_url(data: bytes = PNG, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


# -- capturing what the SDK sends ---------------------------------------------------------------------------


def sdk_request(call: Callable[[openai.OpenAI], Any]) -> httpx2.Request:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"created": 1, "data": [{"b64_json": "aGk="}]})

    client = openai.OpenAI(
        api_key="k",
        base_url="http://gateway.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    call(client)
    return seen[0]


def sdk_generate(**kw: Any) -> tuple[bytes, str]:
    request = sdk_request(lambda c: c.images.generate(**kw))
    return request.content, request.headers["content-type"]


def sdk_edit(**kw: Any) -> tuple[bytes, str]:
    request = sdk_request(lambda c: c.images.edit(**kw))
    return request.content, request.headers["content-type"]


def accepted(body: dict[str, Any]) -> dict[str, Any]:
    rejection = validate_responses_body(body)
    assert rejection is None, rejection
    return body


def tool_of(body: dict[str, Any]) -> dict[str, Any]:
    tools: list[dict[str, Any]] = body["tools"]
    assert len(tools) == 1
    return tools[0]


# -- generations --------------------------------------------------------------------------------------------


# (id, SDK kwargs, expected image_generation tool)
GENERATIONS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("minimal", {"prompt": "a cat"}, {"type": "image_generation", "output_format": "png"}),
    (
        "all-options",
        {
            "prompt": "a cat",
            "model": "gpt-image-1",
            "n": 1,
            "size": "1536x1024",
            "quality": "high",
            "background": "transparent",
            "output_format": "webp",
            "output_compression": 80,
            "moderation": "low",
            "response_format": "b64_json",
        },
        {
            "type": "image_generation",
            "output_format": "webp",
            "model": "gpt-image-1",
            "size": "1536x1024",
            "quality": "high",
            "background": "transparent",
            "output_compression": 80,
            "moderation": "low",
        },
    ),
    (
        "auto-values",
        {"prompt": "x", "size": "auto", "quality": "auto", "background": "auto"},
        {"type": "image_generation", "output_format": "png", "size": "auto", "quality": "auto", "background": "auto"},
    ),
    (
        "gpt-image-2-custom-size",
        {"prompt": "x", "model": "gpt-image-2", "size": "1536x864"},
        {"type": "image_generation", "output_format": "png", "model": "gpt-image-2", "size": "1536x864"},
    ),
    (
        "jpeg-compression",
        {"prompt": "x", "output_format": "jpeg", "output_compression": 0},
        {"type": "image_generation", "output_format": "jpeg", "output_compression": 0},
    ),
]


@pytest.mark.parametrize(("kwargs", "tool"), [g[1:] for g in GENERATIONS], ids=[g[0] for g in GENERATIONS])
def test_generation_request(kwargs: dict[str, Any], tool: dict[str, Any]) -> None:
    body, job = prepare_generation(*sdk_generate(**kwargs))
    accepted(body)
    assert tool_of(body) == tool
    assert body["model"] == DEFAULT_ORCHESTRATOR
    assert body["instructions"] == IMAGE_INSTRUCTIONS
    assert body["tool_choice"] == {"type": "image_generation"}
    assert body["input"] == [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": kwargs["prompt"]}]}
    ]
    assert (body["store"], body["stream"], body["parallel_tool_calls"]) == (False, True, False)
    assert (job.endpoint, job.images) == ("images.generations", 0)
    assert job.model == kwargs.get("model") and job.dropped == []
    assert ImageJob.from_json(json.loads(json.dumps(job.to_json()))) == job  # saved with the flow as JSON


def test_orchestrator_and_model_forwarding_options() -> None:
    raw, ctype = sdk_generate(prompt="x", model="gpt-image-1")
    body, job = prepare_generation(raw, ctype, orchestrator="gpt-5.4", forward_model=False)
    assert body["model"] == "gpt-5.4" and "model" not in tool_of(body)
    assert job.model == "gpt-image-1" and job.dropped == ["model"]


def test_equal_requests_give_equal_bodies() -> None:
    raw, ctype = sdk_generate(prompt="a cat", size="1024x1024")
    first, job1 = prepare_generation(raw, ctype)
    second, job2 = prepare_generation(raw, ctype)
    assert orjson.dumps(first) == orjson.dumps(second) and job1 == job2


# (id, body, dropped)
DROPPED: list[tuple[str, dict[str, Any], list[str]]] = [
    ("user", {"prompt": "x", "user": "u1", "safety_identifier": "s"}, ["user", "safety_identifier"]),
    ("style", {"prompt": "x", "style": "vivid"}, ["style"]),
    ("partial-images", {"prompt": "x", "partial_images": 2}, ["partial_images"]),
    ("unknown", {"prompt": "x", "frame_count": 3}, ["frame_count"]),
]


@pytest.mark.parametrize(("request_", "dropped"), [d[1:] for d in DROPPED], ids=[d[0] for d in DROPPED])
def test_dropped_parameters(request_: dict[str, Any], dropped: list[str]) -> None:
    _, job = prepare_generation(json.dumps(request_).encode(), "application/json")
    assert job.dropped == dropped


# (id, body, param, code)
INVALID: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("no-prompt", {}, "prompt", "missing_required_parameter"),
    ("empty-prompt", {"prompt": ""}, "prompt", "missing_required_parameter"),
    ("prompt-not-string", {"prompt": 5}, "prompt", "invalid_type"),
    ("prompt-too-long", {"prompt": "x" * 32001}, "prompt", "string_above_max_length"),
    ("n-2", {"prompt": "x", "n": 2}, "n", "unsupported_value"),
    ("n-0", {"prompt": "x", "n": 0}, "n", "invalid_value"),
    ("n-string", {"prompt": "x", "n": "two"}, "n", "invalid_type"),
    ("url-format", {"prompt": "x", "response_format": "url"}, "response_format", "unsupported_value"),
    ("dall-e-3", {"prompt": "x", "model": "dall-e-3"}, "model", "model_not_found"),
    ("other-model", {"prompt": "x", "model": "gpt-5.4"}, "model", "model_not_found"),
    ("dall-e-size", {"prompt": "x", "size": "1792x1024"}, "size", "invalid_value"),
    ("small-size", {"prompt": "x", "size": "256x256"}, "size", "invalid_value"),
    ("not-multiple-of-16", {"prompt": "x", "size": "1000x1000"}, "size", "invalid_value"),
    ("too-wide", {"prompt": "x", "size": "3840x1024"}, "size", "invalid_value"),
    ("too-many-pixels", {"prompt": "x", "size": "3840x3840"}, "size", "invalid_value"),
    ("size-garbage", {"prompt": "x", "size": "big"}, "size", "invalid_value"),
    ("size-number", {"prompt": "x", "size": 1024}, "size", "invalid_type"),
    (
        "custom-size-on-gpt-image-1",
        {"prompt": "x", "model": "gpt-image-1", "size": "1536x864"},
        "size",
        "invalid_value",
    ),
    ("quality-hd", {"prompt": "x", "quality": "hd"}, "quality", "invalid_value"),
    ("quality-standard", {"prompt": "x", "quality": "standard"}, "quality", "invalid_value"),
    ("format-gif", {"prompt": "x", "output_format": "gif"}, "output_format", "invalid_value"),
    ("format-jpg", {"prompt": "x", "output_format": "jpg"}, "output_format", "invalid_value"),
    ("compression-png", {"prompt": "x", "output_compression": 50}, "output_compression", "invalid_value"),
    (
        "compression-range",
        {"prompt": "x", "output_format": "webp", "output_compression": 101},
        "output_compression",
        "invalid_value",
    ),
    (
        "transparent-jpeg",
        {"prompt": "x", "background": "transparent", "output_format": "jpeg"},
        "background",
        "invalid_value",
    ),
    ("background-bad", {"prompt": "x", "background": "white"}, "background", "invalid_value"),
    ("moderation-bad", {"prompt": "x", "moderation": "high"}, "moderation", "invalid_value"),
    ("stream", {"prompt": "x", "stream": True}, "stream", "invalid_value"),
]


@pytest.mark.parametrize(("request_", "param", "code"), [i[1:] for i in INVALID], ids=[i[0] for i in INVALID])
def test_invalid_generation(request_: dict[str, Any], param: str | None, code: str) -> None:
    with pytest.raises(GatewayError) as info:
        prepare_generation(json.dumps(request_).encode(), "application/json")
    err = info.value
    assert (err.status, err.param, err.code, err.type) == (400, param, code, "invalid_request_error")
    assert err.message


@pytest.mark.parametrize(
    ("raw", "ctype", "status", "code"),
    [
        (b"{", "application/json", 400, "invalid_json"),
        (b"[]", "application/json", 400, "invalid_type"),
        (b"prompt=x", "text/plain", 415, "unsupported_media_type"),
        (b'{"prompt":"x"}', None, 200, None),
    ],
    ids=["bad-json", "not-object", "text-plain", "no-content-type-is-json"],
)
def test_body_types(raw: bytes, ctype: str | None, status: int, code: str | None) -> None:
    if status == 200:
        prepare_generation(raw, ctype)
        return
    with pytest.raises(GatewayError) as info:
        prepare_generation(raw, ctype)
    assert (info.value.status, info.value.code) == (status, code)


# -- edits --------------------------------------------------------------------------------------------------


def images_of(body: dict[str, Any]) -> list[str]:
    return [p["image_url"] for p in body["input"][0]["content"] if p["type"] == "input_image"]


# (id, SDK kwargs for images.edit, expected input images, expected extra tool keys)
EDITS: list[tuple[str, dict[str, Any], list[str], dict[str, Any]]] = [
    ("one-bytesio-file", {"image": io.BytesIO(PNG), "prompt": "blue"}, [PNG_URL], {}),
    (
        "file-list-image[]",
        {"image": [("a.png", PNG, "image/png"), ("b.jpg", JPEG, "image/jpeg")], "prompt": "blue"},
        [PNG_URL, png_url(JPEG, "image/jpeg")],
        {},
    ),
    (
        "octet-stream-webp-sniffed",
        {"image": ("w.bin", WEBP, "application/octet-stream"), "prompt": "blue"},
        [png_url(WEBP, "image/webp")],
        {},
    ),
    (
        "mask-and-fidelity",
        {
            "image": ("a.png", PNG, "image/png"),
            "mask": ("m.png", PNG, "image/png"),
            "prompt": "x",
            "input_fidelity": "high",
        },
        [PNG_URL],
        {"input_image_mask": {"image_url": PNG_URL}, "input_fidelity": "high"},
    ),
    (
        "form-options",
        {
            "image": ("a.png", PNG, "image/png"),
            "prompt": "x",
            "n": 1,
            "size": "1024x1536",
            "output_compression": 70,
            "output_format": "jpeg",
        },
        [PNG_URL],
        {"size": "1024x1536", "output_compression": 70, "output_format": "jpeg"},
    ),
]


@pytest.mark.parametrize(("kwargs", "images", "extra"), [e[1:] for e in EDITS], ids=[e[0] for e in EDITS])
def test_edit_multipart_from_the_sdk(kwargs: dict[str, Any], images: list[str], extra: dict[str, Any]) -> None:
    raw, ctype = sdk_edit(**kwargs)
    assert ctype.startswith("multipart/form-data; boundary=")
    body, job = prepare_edit(raw, ctype)
    accepted(body)
    assert images_of(body) == images
    tool = tool_of(body)
    assert tool["action"] == "edit"
    for key, value in extra.items():
        assert tool[key] == value
    assert job.endpoint == "images.edits" and job.images == len(images)
    assert job.mask is ("mask" in kwargs)


# (id, JSON edit body, expected input images)
JSON_EDITS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("images-data-url", {"images": [{"image_url": PNG_URL}]}, [PNG_URL]),
    ("images-http-url", {"images": [{"image_url": "https://example.test/cat.png"}]}, ["https://example.test/cat.png"]),
    ("images-strings", {"images": ["https://example.test/a.png", PNG_URL]}, ["https://example.test/a.png", PNG_URL]),
    ("image-string", {"image": PNG_URL}, [PNG_URL]),
    ("image-object-url-object", {"image": {"image_url": {"url": PNG_URL}}}, [PNG_URL]),
    ("bare-base64-sniffed", {"image": base64.b64encode(JPEG * 4).decode()}, [png_url(JPEG * 4, "image/jpeg")]),
    ("declared-type-corrected", {"image": png_url(JPEG, "image/png")}, [png_url(JPEG, "image/jpeg")]),
]


@pytest.mark.parametrize(("request_", "images"), [j[1:] for j in JSON_EDITS], ids=[j[0] for j in JSON_EDITS])
def test_edit_json(request_: dict[str, Any], images: list[str]) -> None:
    body, _ = prepare_edit(json.dumps({"prompt": "x", **request_}).encode(), "application/json")
    accepted(body)
    assert images_of(body) == images


def test_edit_json_mask() -> None:
    request_ = {"prompt": "x", "images": [{"image_url": PNG_URL}], "mask": {"image_url": PNG_URL}}
    body, job = prepare_edit(json.dumps(request_).encode(), "application/json")
    assert tool_of(body)["input_image_mask"] == {"image_url": PNG_URL} and job.mask is True


# (id, JSON edit body (prompt added), param, code)
INVALID_EDITS: list[tuple[str, dict[str, Any], str, str]] = [
    ("no-image", {}, "image", "missing_required_parameter"),
    ("file-id", {"images": [{"file_id": "file_1"}]}, "images[0].file_id", "unsupported_parameter"),
    ("gif", {"image": png_url(GIF, "image/gif")}, "image", "invalid_image_format"),
    (
        "not-an-image",
        {"image": "data:image/png;base64," + base64.b64encode(b"hello world").decode()},
        "image",
        "invalid_image_format",
    ),
    ("ftp-url", {"image": "ftp://x/a.png"}, "image", "invalid_value"),
    ("data-url-not-base64", {"image": "data:image/png,abc"}, "image", "invalid_value"),
    ("too-many", {"images": [PNG_URL] * 17}, "image", "invalid_value"),
    ("mask-jpeg", {"image": PNG_URL, "mask": png_url(JPEG, "image/jpeg")}, "mask", "invalid_value"),
    ("image-number", {"image": 5}, "image", "invalid_type"),
    ("bad-fidelity", {"image": PNG_URL, "input_fidelity": "max"}, "input_fidelity", "invalid_value"),
]


@pytest.mark.parametrize(
    ("request_", "param", "code"), [i[1:] for i in INVALID_EDITS], ids=[i[0] for i in INVALID_EDITS]
)
def test_invalid_edit(request_: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(GatewayError) as info:
        prepare_edit(json.dumps({"prompt": "x", **request_}).encode(), "application/json")
    assert (info.value.status, info.value.param, info.value.code) == (400, param, code)


def test_invalid_multipart_upload() -> None:
    raw, ctype = sdk_edit(image=("a.gif", GIF, "image/gif"), prompt="x")
    with pytest.raises(GatewayError) as info:
        prepare_edit(raw, ctype)
    assert (info.value.param, info.value.code) == ("image[0]", "invalid_image_format")
    assert "image/gif" in info.value.message


def test_multipart_n_is_text_and_still_checked() -> None:
    raw, ctype = sdk_edit(image=("a.png", PNG, "image/png"), prompt="x", n=3)
    with pytest.raises(GatewayError) as info:
        prepare_edit(raw, ctype)
    assert info.value.param == "n"


@pytest.mark.parametrize(
    ("ctype", "raw"),
    [
        ("multipart/form-data", b"--x\r\n\r\n--x--"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhi'),
        ("multipart/form-data; boundary=x", b"--x\r\nno header end--x--"),
    ],
    ids=["no-boundary", "truncated", "no-header-block"],
)
def test_malformed_multipart(ctype: str, raw: bytes) -> None:
    with pytest.raises(GatewayError) as info:
        prepare_edit(raw, ctype)
    assert info.value.status == 400


def test_parse_multipart_is_binary_safe() -> None:
    data = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    raw, ctype = sdk_edit(image=("a.bin", data, "application/octet-stream"), prompt='say "hi"; ok')
    parts = {p.name: p for p in parse_multipart(ctype, raw)}
    assert parts["image"].data == data and parts["image"].filename == "a.bin"
    assert parts["prompt"].data == b'say "hi"; ok' and parts["prompt"].filename is None


# -- answers ------------------------------------------------------------------------------------------------


def upstream(events: list[Any]) -> bytes:
    return b"".join(SSEScript(events).encoded())


JOB = ImageJob(edit=False, orchestrator=DEFAULT_ORCHESTRATOR, session_id="s", size="auto", output_format="png")


def test_answer_with_image() -> None:
    status, payload = answer_from_body(upstream(ev.image_generation(revised_prompt="A cat, watercolour")), JOB)
    assert status == 200
    assert payload == {
        "created": 1760000000,
        "data": [{"b64_json": ev.TINY_PNG_B64, "revised_prompt": "A cat, watercolour"}],
        "background": "opaque",
        "output_format": "png",
        "quality": "high",
        "size": "1024x1024",
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"image_tokens": 0, "text_tokens": 50},
            "output_tokens": 4160,
            "total_tokens": 4210,
        },
    }


def test_answer_without_tool_usage_reports_the_orchestrator_usage() -> None:
    events = ev.image_generation(tool_usage=None, usage=ev.usage(30, 12), size=None, quality=None, background=None)
    status, payload = answer_from_events(events, dataclasses.replace(JOB, size="1536x1024"))
    assert status == 200
    assert payload["usage"] == {
        "input_tokens": 30,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 30},
        "output_tokens": 12,
        "total_tokens": 42,
    }
    assert payload["size"] == "1536x1024" and "quality" not in payload and "background" not in payload


def test_answer_with_commentary_and_no_revised_prompt() -> None:
    status, payload = answer_from_events(ev.image_generation(revised_prompt=None, text_before="Here you go."), JOB)
    assert status == 200 and payload["data"] == [{"b64_json": ev.TINY_PNG_B64}]


def test_partial_image_is_the_fallback() -> None:
    events = ev.image_generation(None, partial_images=["cGFydDE=", "cGFydDI="])
    status, payload = answer_from_events(events, JOB)
    assert status == 200 and payload["data"][0]["b64_json"] == "cGFydDI="


# (id, events, status, type, code)
FAILURES: list[tuple[str, list[Any], int, str, str | None]] = [
    (
        "moderation",
        ev.image_generation(
            None,
            call_status="failed",
            call_error={
                "code": "moderation_blocked",
                "message": "Rejected by the safety system.",
                "type": "image_generation_user_error",
            },
        ),
        400,
        "image_generation_user_error",
        "moderation_blocked",
    ),
    ("text-only", ev.text("I cannot draw that."), 502, "server_error", "image_generation_failed"),
    ("rate-limit", ev.failed("rate_limit_exceeded", "Slow down"), 429, "rate_limit_error", "rate_limit_exceeded"),
    ("server-error", ev.failed("server_error", "boom"), 502, "server_error", "server_error"),
    ("cut", ev.image_generation(status=None), 502, "server_error", "stream_incomplete"),
    (
        "error-event",
        [*ev.text("x", status=None), *ev.error_event("server_error", "bad")],
        502,
        "server_error",
        "server_error",
    ),
]


@pytest.mark.parametrize(("events", "status", "etype", "code"), [f[1:] for f in FAILURES], ids=[f[0] for f in FAILURES])
def test_failures(events: list[Any], status: int, etype: str, code: str | None) -> None:
    got, payload = answer_from_events(events, JOB)
    assert got == status
    assert (payload["error"]["type"], payload["error"]["code"]) == (etype, code)
    assert payload["error"]["message"]


def test_text_only_failure_quotes_the_model() -> None:
    _, payload = answer_from_events(ev.text("I cannot draw that."), JOB)
    assert "I cannot draw that." in payload["error"]["message"]


def test_buffered_answer() -> None:
    ok = buffered_answer(JOB, 200, {}, upstream(ev.image_generation()))
    assert ok.status == 200 and ok.content_type == "application/json" and ok.error is None
    assert json.loads(ok.body)["data"][0]["b64_json"] == ev.TINY_PNG_B64
    assert ok.usage is not None and ok.usage["prompt_tokens"] == 50 and ok.usage["completion_tokens"] == 4160
    refused = buffered_answer(JOB, 400, {}, b'{"detail":"Unsupported parameter: tools[0].model"}')
    assert refused.status == 400 and refused.error == "Unsupported parameter: tools[0].model"
    failed = buffered_answer(JOB, 200, {}, upstream(ev.text("no")))
    assert failed.status == 502 and failed.error


# -- end to end: SDK → prepare → fake backend → answer → SDK ----------------------------------------------


def mini_gateway(backend: FakeCodexBackend) -> openai.OpenAI:
    """Just the image path of the gateway: enough to prove the pieces fit."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        prepare = prepare_edit if request.url.path.endswith("/edits") else prepare_generation
        try:
            body, job = prepare(request.content, request.headers.get("content-type"))
        except GatewayError as e:
            return httpx2.Response(e.status, content=e.body(), headers={"content-type": "application/json"})
        up = httpx.post(
            f"{backend.codex_base}/responses",
            json=body,
            headers={"authorization": "Bearer t", "chatgpt-account-id": "a", "session_id": job.session_id},
        )
        answer = buffered_answer(job, up.status_code, up.headers, up.content)
        return httpx2.Response(answer.status, content=answer.body, headers={"content-type": answer.content_type})

    return openai.OpenAI(
        api_key="k",
        base_url="http://gateway.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


def test_sdk_generate_and_edit_end_to_end() -> None:
    with FakeCodexBackend() as backend:
        client = mini_gateway(backend)
        backend.enqueue(ev.image_generation(revised_prompt="A small cat"), ev.image_generation())
        made = client.images.generate(model="gpt-image-1", prompt="a small cat", size="1024x1024")
        edited = client.images.edit(image=("cat.png", PNG, "image/png"), prompt="make it blue")
        with pytest.raises(openai.BadRequestError, match="n > 1"):
            client.images.generate(prompt="x", n=2)
        sent = backend.responses_requests()
    assert [r.status for r in sent] == [200, 200], [r.error for r in sent]
    assert made.data is not None and base64.b64decode(made.data[0].b64_json or "") == PNG
    assert made.data[0].revised_prompt == "A small cat"
    assert made.usage is not None and made.usage.total_tokens == 4210 and made.size == "1024x1024"
    assert edited.data is not None and edited.data[0].b64_json == ev.TINY_PNG_B64
    assert sent[1].json["tools"][0]["action"] == "edit"
    assert sent[1].json["input"][0]["content"][1] == {"type": "input_image", "image_url": PNG_URL}


def test_fake_rejects_image_tool_choice_without_the_tool() -> None:
    body, _ = prepare_generation(b'{"prompt":"x"}', "application/json")
    body["tools"] = []
    rejection = validate_responses_body(body)
    assert rejection is not None and rejection.body["error"]["param"] == "tool_choice"
