"""Every request OpenClaw really sent (tests/fixtures/openclaw, copied from shared/captures) through the gateway.

The fake backend answers each one with the Codex equivalent of what the recording provider answered (same text,
same tool calls, same errors), so the client's answer must have the recorded shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from codex_gateway.chat.shape import shape_of_answer
from codex_gateway.sse import SSEDecoder
from mitmproxy import io

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import GatewayProcess

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openclaw"
_DROP_HEADERS = {"host", "content-length", "connection", "accept-encoding"}


@dataclass
class Recorded:
    session: str
    index: int
    headers: dict[str, str]
    body: bytes
    status: int
    content_type: str
    answer: bytes
    retry_after: str | None

    @property
    def request(self) -> dict[str, Any]:
        return orjson.loads(self.body)

    def codex_script(self) -> SSEScript | ErrorScript:
        """What the Codex backend would have answered for the recorded provider answer."""
        if self.status == 429:
            body = {"error": {"type": "rate_limit_exceeded", "message": "Rate limit reached. Please try again in 2s."}}
            return ErrorScript(429, body, headers={"retry-after": self.retry_after or "2"})
        if self.status >= 500:
            return ErrorScript(self.status, {"detail": "Internal server error"})
        text, calls = _recorded_content(self.answer)
        if calls:
            return SSEScript(ev.tool_calls(calls, text_before=text or None, split=3))
        return SSEScript(ev.text(_pieces(text)))


def _pieces(text: str, n: int = 4) -> list[str]:
    step = max(1, len(text) // n)
    return [text[i : i + step] for i in range(0, len(text), step)] or [""]


def _recorded_content(answer: bytes) -> tuple[str, list[tuple[str, str, str]]]:
    decoder = SSEDecoder()
    text: list[str] = []
    calls: dict[int, list[str]] = {}
    for event in decoder.feed(answer) + decoder.close():
        if event.data == "[DONE]":
            continue
        for choice in orjson.loads(event.data).get("choices") or ():
            delta = choice.get("delta") or {}
            text.append(delta.get("content") or "")
            for tc in delta.get("tool_calls") or ():
                entry = calls.setdefault(tc["index"], ["", "", tc.get("id", "")])
                entry[0] += tc["function"].get("name") or ""
                entry[1] += tc["function"].get("arguments") or ""
    return "".join(text), [(n, a, i) for n, a, i in calls.values()]


def _load() -> list[Recorded]:
    out = []
    for path in sorted(CAPTURES.glob("session-*.mitm")):
        with path.open("rb") as f:
            for i, flow in enumerate(io.FlowReader(f).stream()):
                assert flow.response is not None
                out.append(
                    Recorded(
                        session=path.stem,
                        index=i,
                        headers={k: v for k, v in flow.request.headers.items() if k.lower() not in _DROP_HEADERS},
                        body=flow.request.get_content() or b"",
                        status=flow.response.status_code,
                        content_type=flow.response.headers.get("content-type", ""),
                        answer=flow.response.get_content() or b"",
                        retry_after=flow.response.headers.get("retry-after"),
                    )
                )
    return out


RECORDINGS = _load()


@pytest.fixture(scope="module")
def answers(gateway: GatewayProcess, backend: FakeCodexBackend) -> dict[tuple[str, int], tuple[httpx.Response, Any]]:
    """Sends every recorded request once; returns the gateway's answer and what reached the backend."""
    results = {}
    with httpx.Client(base_url=gateway.base_url, timeout=20) as http:
        for rec in RECORDINGS:
            backend.reset()
            backend.enqueue(rec.codex_script())
            response = http.post("/v1/chat/completions", content=rec.body, headers=rec.headers)
            upstream = backend.responses_requests()
            results[(rec.session, rec.index)] = (response, upstream[0] if upstream else None)
    return results


def _ids(rec: Recorded) -> str:
    return f"{rec.session}#{rec.index}"


@pytest.mark.parametrize("rec", RECORDINGS, ids=_ids)
def test_backend_accepts_the_translation(rec: Recorded, answers: dict[tuple[str, int], Any]) -> None:
    _, upstream = answers[(rec.session, rec.index)]
    assert upstream is not None and upstream.status == rec.status, upstream and upstream.error
    body = upstream.json
    assert "max_completion_tokens" not in body and "stream_options" not in body
    system = [m["content"] for m in rec.request["messages"] if m["role"] == "system"]
    if system:
        assert body["instructions"] == system[0]
        assert body["instructions"].startswith("<!-- openclaw:attempt:")


@pytest.mark.parametrize("rec", RECORDINGS, ids=_ids)
def test_answer_has_the_recorded_shape(rec: Recorded, answers: dict[tuple[str, int], Any]) -> None:
    response, _ = answers[(rec.session, rec.index)]
    include_usage = bool((rec.request.get("stream_options") or {}).get("include_usage"))
    got = shape_of_answer(
        response.status_code,
        response.headers.get("content-type", ""),
        response.content,
        include_usage=include_usage if response.status_code == 200 else None,
    )
    recorded = shape_of_answer(rec.status, rec.content_type, rec.answer)
    assert response.status_code == rec.status
    assert got.valid, got.problems
    if rec.status == 200:
        assert got.done
        assert got.same_as(recorded) == []
    else:
        assert response.json()["error"]["message"]
        if rec.status == 429:
            assert response.headers["retry-after"] == rec.retry_after


def test_first_tool_call_keeps_its_call_id(answers: dict[tuple[str, int], Any]) -> None:
    _, upstream = answers[("session-1", 1)]
    items = upstream.json["input"]
    call = next(it for it in items if it["type"] == "function_call")
    output = next(it for it in items if it["type"] == "function_call_output")
    assert call["call_id"] == output["call_id"] == "calli8xl5ykjUIqoEiv1FGNFOI02"
    assert (call["name"], call["arguments"]) == ("read", '{"path":"HELLO.txt"}')


def test_tool_image_arrives_as_input_image_data_url(answers: dict[tuple[str, int], Any]) -> None:
    _, upstream = answers[("session-3", 1)]
    images = [
        part
        for item in upstream.json["input"]
        if item["type"] == "message"
        for part in item["content"]
        if part["type"] == "input_image"
    ]
    assert len(images) == 1
    assert isinstance(images[0]["image_url"], str) and images[0]["image_url"].startswith("data:image/png;base64,")


def test_session_without_stream_options_gets_no_usage_chunk(answers: dict[tuple[str, int], Any]) -> None:
    response, _ = answers[("session-6", 0)]
    assert b'"usage"' not in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")


def test_prompt_cache_key_is_stable_across_turns(answers: dict[tuple[str, int], Any]) -> None:
    keys = {answers[("session-2", i)][1].json["prompt_cache_key"] for i in (0, 1)}
    assert len(keys) == 1
