"""An upstream event the gateway cannot use, through a real gateway: the client's stream still ends at once.

The upstream here sends an event whose `type` is not a string (`data: {"type": {}}`) and then ends without a
terminal event. The gateway skips the odd event (chat) or passes it on (responses) and ends the client's stream
with the protocol's error event for an incomplete answer. Before the fix, the chat stream callable raised on that
event and the client got its 200 headers and then nothing until its own timeout (the timeout below only bounds
such a hang; nothing here measures time).
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import GatewayProcess
from tests.conftest import DONE
from tests.conftest import check_chat_stream
from tests.conftest import parse_chat_sse

CHAT = {"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]}
ODD_EVENT = 'data: {"type": {}}\n\n'


def odd_then_cut() -> SSEScript:
    """`Hel`, the odd event, `lo`, then the upstream body ends (no response.completed)."""
    events: list[Any] = list(ev.text(["Hel", "lo"], status=None))
    first_delta = next(i for i, e in enumerate(events) if e["type"] == "response.output_text.delta")
    events.insert(first_delta + 1, ODD_EVENT)
    return SSEScript(events)


def post_stream(base_url: str, path: str, body: dict[str, Any]) -> tuple[int, bytes]:
    with httpx.Client(timeout=15) as client:
        with client.stream("POST", base_url + path, json={**body, "stream": True}) as r:
            return r.status_code, b"".join(r.iter_raw())


def test_chat_stream_with_an_odd_event_ends_with_its_error_event(
    gateway: GatewayProcess, backend: FakeCodexBackend
) -> None:
    backend.enqueue(odd_then_cut())
    status, body = post_stream(gateway.base_url, "/v1/chat/completions", CHAT)
    events = parse_chat_sse(body)
    summary = check_chat_stream(events, include_usage=False)
    assert status == 200 and DONE not in events
    assert (summary.content, summary.error and summary.error["code"]) == ("Hello", "stream_incomplete")


def test_responses_stream_with_an_odd_event_ends_with_its_error_event(
    gateway: GatewayProcess, backend: FakeCodexBackend
) -> None:
    backend.enqueue(odd_then_cut())
    status, body = post_stream(gateway.base_url, "/v1/responses", {"model": "gpt-5.4", "input": "hi"})
    events = [orjson.loads(line[len(b"data: ") :]) for line in body.split(b"\n") if line.startswith(b"data: ")]
    assert status == 200 and {"type": {}} in events
    assert (events[-1]["type"], events[-1]["code"]) == ("error", "stream_incomplete")
