"""What mitmdump keeps of a finished gateway flow for the addons that read it after the gateway: a HAR export
(`hardump`) gets whole flows, and printing bodies (`flow_detail=3`) shows a streamed answer as the gateway's
content view rebuilds it from the raw upstream SSE. Save (`-w`) is covered by test_capture_replay.py; plain
mitmdump keeps neither, which only memory shows (tests/http/test_endpoints.py pins that a callable told so keeps
nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import openai

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_backend import SSEScript
from scripts.gateway_process import FakeLogin
from scripts.gateway_process import GatewayProcess

DELTAS = ["Kept ", "for ", "the ", "reader"]


def _streamed_chat(gateway: GatewayProcess, backend: FakeCodexBackend) -> str:
    backend.enqueue(SSEScript(ev.text(DELTAS, usage=ev.usage(9, 4))))
    with openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=20) as client:
        chunks = client.chat.completions.create(
            model="gpt-5.4", messages=[{"role": "user", "content": "keep it"}], stream=True
        )
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_har_export_holds_the_streamed_answer_s_upstream_sse_and_the_request_sent(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path: Path
) -> None:
    har_path = tmp_path / "session.har"
    gateway = GatewayProcess(backend.port, login_home[0], tmp_path, extra=["--set", f"hardump={har_path}"])
    with gateway:
        assert _streamed_chat(gateway, backend) == "".join(DELTAS)
    # mitmproxy writes the HAR when it shuts down
    har = har_path.read_text()
    login = login_home[1]
    assert login.access_token not in har and login.account_id not in har  # redacted before any addon saves a flow
    (entry,) = [e for e in json.loads(har)["log"]["entries"] if "/responses" in e["request"]["url"]]
    sent = json.loads(entry["request"]["postData"]["text"])
    assert sent["input"][0]["content"][0]["text"] == "keep it"
    sse = entry["response"]["content"]["text"]
    assert [json.loads(d)["delta"] for d in _data_lines(sse, "response.output_text.delta")] == DELTAS


def test_flow_detail_3_prints_the_streamed_answer_rebuilt_from_its_upstream_sse(
    backend: FakeCodexBackend, login_home: tuple[Path, FakeLogin], tmp_path: Path
) -> None:
    with GatewayProcess(backend.port, login_home[0], tmp_path, extra=["--set", "flow_detail=3"]) as gateway:
        assert _streamed_chat(gateway, backend) == "".join(DELTAS)
        gateway.stop()  # mitmdump prints a flow as it ends; stopping flushes its output
        log = gateway.log()
    answer = log.partition("(streamed, 6 chunks + [DONE]); rebuilt from the raw upstream SSE")[2]
    assert 'content: "Kept for the reader"' in answer


def _data_lines(sse: str, event: str) -> list[str]:
    """The `data:` payloads of the SSE events named `event`."""
    out = []
    for block in sse.split("\n\n"):
        lines = block.splitlines()
        if f"event: {event}" in lines:
            out += [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
    return out
