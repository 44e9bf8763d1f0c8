"""Shared helpers for the unit tests.

`addons/` is not installed into the venv, so it is put on `sys.path` here (`import codex_gateway` then works in
every test module). The helpers below are plain functions, imported as `from tests.conftest import ...`:
recorded upstream streams, a strict parser for the gateway's chat SSE output, and one checker that states
everything a strict Chat Completions client (the OpenAI SDKs) relies on: one id, `chat.completion.chunk`
objects, tool calls opened in order and then only extended, one finish chunk, a usage chunk only when asked
for, `[DONE]` last, and a failure reported as an `{"error": ...}` event instead of a finish.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADDONS = ROOT / "addons"
if str(ADDONS) not in sys.path:
    sys.path.insert(0, str(ADDONS))

from codex_gateway.chat.stream import ChatStream  # noqa: E402
from codex_gateway.chat.translator import ChatSSETranslator  # noqa: E402

STREAMS = Path(__file__).resolve().parent / "fixtures" / "streams"

# Fixed before any upstream event is seen, so two runs over the same events are byte-identical even for
# streams that carry no response id / created_at (then these values show through).
FALLBACK_ID = "chatcmpl-fallback"
FALLBACK_CREATED = 1234567890

DONE = "[DONE]"
FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter"}
DELTA_KEYS = {"role", "content", "reasoning_content", "refusal", "tool_calls"}


def stream_names() -> list[str]:
    return sorted(p.name for p in STREAMS.glob("*.sse"))


def load_stream(name: str) -> bytes:
    return (STREAMS / name).read_bytes()


def sse_events(body: bytes) -> list[dict[str, Any]]:
    """The JSON events of a recorded upstream stream, in order (via the gateway's own decoder)."""
    from codex_gateway.sse import SSEDecoder

    dec = SSEDecoder()
    return [json.loads(e.data) for e in dec.feed(body) + dec.close()]


def encode_upstream(events: list[dict[str, Any]]) -> bytes:
    """Upstream-style framing of event dicts: `event: <type>` + `data: <json>` + blank line."""
    out = []
    for ev in events:
        kind = ev.get("type")
        head = f"event: {kind}\n" if isinstance(kind, str) else ""
        out.append(f"{head}data: {json.dumps(ev, ensure_ascii=False)}\n\n")
    return "".join(out).encode()


def new_machine(*, include_usage: bool = False, stop: tuple[str, ...] = (), model: str = "gpt-5-codex") -> ChatStream:
    machine = ChatStream(model=model, include_usage=include_usage, stop=stop)
    machine.id = FALLBACK_ID
    machine.created = FALLBACK_CREATED
    return machine


def translate(pieces: list[bytes], *, include_usage: bool = False, stop: tuple[str, ...] = ()) -> bytes:
    """Feeds upstream bytes read by read through a fresh translator, then the end of the body (b"").

    Empty pieces are skipped: mitmproxy calls the stream callable with b"" only once, at the end of the body.
    """
    translator = ChatSSETranslator(new_machine(include_usage=include_usage, stop=stop))
    out: list[bytes] = []
    for piece in [*(p for p in pieces if p), b""]:
        written = translator(piece)
        assert all(written), "a stream callable must never return b'' (it ends a chunked HTTP/1 body)"
        out += written
    return b"".join(out)


class Boom(RuntimeError):
    """A fault injected into the gateway (`raising_after`)."""


def raising_after(call: Callable[..., Any], calls: int) -> Callable[..., Any]:
    """`call`, except that every call after the first `calls` raises `Boom`: a bug inside the gateway."""
    made = 0

    def wrapper(*args: Any) -> Any:
        nonlocal made
        made += 1
        if made > calls:
            raise Boom("a bug")
        return call(*args)

    return wrapper


def parse_chat_sse(body: bytes) -> list[Any]:
    """Strict parse of the gateway's output: only `data: <json>` / `data: [DONE]` frames, LF-only, no `event:`."""
    assert body, "the gateway wrote nothing"
    assert body.endswith(b"\n\n"), body[-80:]
    frames = body.split(b"\n\n")
    assert frames[-1] == b""
    out: list[Any] = []
    for frame in frames[:-1]:
        assert frame.startswith(b"data: "), frame[:80]
        assert b"\n" not in frame and b"\r" not in frame, frame[:80]
        payload = frame[len(b"data: ") :]
        out.append(DONE if payload == b"[DONE]" else json.loads(payload))
    return out


@dataclass
class ChatSummary:
    """What a client ends up with after reading a (valid) chat stream."""

    ok: bool
    id: str
    created: int
    model: str
    finish_reason: str | None = None
    error: dict[str, Any] | None = None
    content: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[dict[str, str]] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)


def check_chat_stream(events: list[Any], *, include_usage: bool) -> ChatSummary:
    """Asserts that `events` is a valid chat.completion.chunk stream (see the module docstring) and summarises it."""
    assert events, "empty chat stream"
    ok = events[-1] == DONE
    errors = [e for e in events if isinstance(e, dict) and "error" in e]
    chunks = [e for e in events if isinstance(e, dict) and "error" not in e]
    if ok:
        assert events.count(DONE) == 1, "exactly one [DONE]"
        assert not errors, "a successful stream carries no error event"
    else:
        assert DONE not in events, "a failed stream must not end with [DONE]"
        assert len(errors) == 1 and events[-1] is errors[0], "a failed stream ends with exactly one error event"
        err = errors[0]
        assert set(err) == {"error"}
        assert set(err["error"]) == {"message", "type", "param", "code"}
        assert isinstance(err["error"]["message"], str) and err["error"]["message"]
        assert isinstance(err["error"]["type"], str) and err["error"]["type"]

    assert chunks, "at least the role chunk is sent"
    for c in chunks:
        assert c["object"] == "chat.completion.chunk"
        assert {"id", "object", "created", "model", "choices"} <= set(c)
        if include_usage:
            assert "usage" in c
        else:
            assert "usage" not in c
    assert len({c["id"] for c in chunks}) == 1, [c["id"] for c in chunks]
    assert len({c["created"] for c in chunks}) == 1, [c["created"] for c in chunks]
    summary = ChatSummary(ok=ok, id=chunks[0]["id"], created=chunks[0]["created"], model=chunks[0]["model"])
    summary.chunks = chunks
    summary.error = errors[0]["error"] if errors else None
    assert summary.id.startswith("chatcmpl-")
    assert isinstance(summary.created, int) and not isinstance(summary.created, bool)

    assert chunks[0]["choices"] == [
        {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
    ]
    choice_chunks = [c for c in chunks if c["choices"]]
    usage_chunks = [c for c in chunks if not c["choices"]]
    finish_at = [i for i, c in enumerate(choice_chunks) if c["choices"][0]["finish_reason"] is not None]

    open_index = -1  # tool-call index currently being streamed
    for i, c in enumerate(choice_chunks):
        assert len(c["choices"]) == 1
        choice = c["choices"][0]
        assert choice["index"] == 0
        if include_usage:
            assert c["usage"] is None, "only the final usage chunk carries usage"
        delta = choice["delta"]
        assert set(delta) <= DELTA_KEYS, delta
        if i > 0:
            assert "role" not in delta, "a repeated role is concatenated by the SDK"
        for key in ("content", "reasoning_content", "refusal"):
            if key in delta:
                assert isinstance(delta[key], str)
        summary.content += delta.get("content", "")
        summary.reasoning += delta.get("reasoning_content", "")
        summary.refusal += delta.get("refusal", "")
        for tc in delta.get("tool_calls", ()):
            index = tc["index"]
            if index == open_index + 1:
                # First delta of a call: dense index, and the only one carrying id/type/name.
                assert set(tc) == {"index", "id", "type", "function"}, tc
                assert tc["type"] == "function"
                assert isinstance(tc["id"], str) and tc["id"]
                assert set(tc["function"]) == {"name", "arguments"}, tc
                assert isinstance(tc["function"]["name"], str) and isinstance(tc["function"]["arguments"], str)
                open_index = index
                summary.tool_calls.append(
                    {"id": tc["id"], "name": tc["function"]["name"], "arguments": tc["function"]["arguments"]}
                )
            else:
                # Later deltas: only argument fragments, and only for the call opened last (never interleaved).
                assert index == open_index, f"tool call index {index} while call {open_index} is open"
                assert set(tc) == {"index", "function"}, tc
                assert set(tc["function"]) == {"arguments"}, tc
                summary.tool_calls[index]["arguments"] += tc["function"]["arguments"]

    if ok:
        assert len(finish_at) == 1, "exactly one finish chunk"
        assert finish_at[0] == len(choice_chunks) - 1, "the finish chunk is the last choice chunk"
        finish = choice_chunks[-1]["choices"][0]
        assert finish["delta"] == {}
        summary.finish_reason = finish["finish_reason"]
        assert summary.finish_reason in FINISH_REASONS
        if summary.finish_reason == "tool_calls":
            assert summary.tool_calls
        if include_usage:
            assert len(usage_chunks) == 1 and chunks[-1] is usage_chunks[0], "one usage chunk, right before [DONE]"
            summary.usage = usage_chunks[0]["usage"]
        else:
            assert not usage_chunks
    else:
        assert not finish_at, "a failed answer has no finish_reason"
        assert not usage_chunks
    return summary


def chat_result(pieces: list[bytes], *, include_usage: bool = False, stop: tuple[str, ...] = ()) -> ChatSummary:
    body = translate(pieces, include_usage=include_usage, stop=stop)
    return check_chat_stream(parse_chat_sse(body), include_usage=include_usage)
