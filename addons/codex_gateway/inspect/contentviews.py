"""mitmproxy content views for gateway flows (mitmproxy 12 `Contentview` API).

- **Chat**: a gateway response as the client saw it: text, reasoning, refusal, tool calls with parsed
  arguments, usage, error. A gateway flow's response body is the *raw upstream SSE* for streamed answers (and in
  saved flows for every answer), but the client's JSON for buffered answers still in memory; raw upstream bodies
  are run through the same state machine the gateway uses (`ChatStream`), so the view shows what was sent.
  Picked automatically for gateway flows; usable by name on any chat.completion(.chunk) answer.
- **Codex SSE**: any `text/event-stream` body as a readable event list: one line per event with the bulky parts
  (instructions, tool schemas, encrypted reasoning) summarised, and runs of text/argument deltas joined into one
  block. Picked automatically for event streams outside the gateway; selectable by name on gateway flows, where
  it shows the upstream Codex stream (also for buffered answers still in memory).

`register()` adds both to mitmproxy's registry. Everything else here is pure and testable without mitmproxy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from mitmproxy import contentviews
from mitmproxy import http
from mitmproxy.contentviews import Metadata
from mitmproxy.contentviews import SyntaxHighlight

from ..chat.completion import FoldedChunks
from ..chat.completion import ToolCall
from ..chat.completion import fold_chunks
from ..chat.stream import ChatStream
from ..chat.translator import run_body
from ..errors import failure_status
from ..errors import upstream_error
from ..flow_record import FlowRecord
from ..sse import SSEDecoder
from ..sse import SSEEvent
from .summary import chat_record_of
from .summary import upstream_body

__all__ = [
    "ChatAnswer",
    "ChatContentview",
    "CodexSSEContentview",
    "chat_answer",
    "render_answer",
    "render_event_list",
    "register",
]

CHAT_PRIORITY = 2.5  # above every built-in view (0-1) and above the SSE view's 2
SSE_PRIORITY = 2.0
_MAX_STRING = 400
_PLAIN = re.compile(r"^[A-Za-z0-9_./:@+-]+$")
_RESPONSE_KEYS = ("id", "status", "model", "error", "incomplete_details", "usage")


# -- the client's answer -----------------------------------------------------------------------------------


@dataclass(kw_only=True)
class ChatAnswer(FoldedChunks):
    """What a chat client ends up with, whichever way the answer travelled: the answer itself, plus how it came."""

    source: str
    streamed: bool | None = None
    done: bool = False
    usage_sent: bool | None = None


def chat_answer(data: bytes, status: int, headers: Mapping[str, str], record: FlowRecord | None) -> ChatAnswer:
    """The client's answer, from a gateway (or plain chat) response body. Raises ValueError for other bodies.

    `record` is the flow's gateway record (None for non-gateway flows); it says how a raw upstream body was
    translated (model, stream, include_usage, stop).
    """
    events = _sse_events(data)
    if events:
        docs = [_json(e.data) for e in events if e.data != "[DONE]"]
        if any(isinstance(d, dict) and (d.get("object") == "chat.completion.chunk" or _is_envelope(d)) for d in docs):
            answer = _answer_from_chunks([d for d in docs if isinstance(d, dict)], source="as sent")
            answer.done = any(e.data == "[DONE]" for e in events)
            answer.streamed = True
            return answer
        if any(isinstance(d, dict) and isinstance(d.get("type"), str) for d in docs):
            if status >= 300 and record is not None:
                return _upstream_error_answer(data, status, headers)
            return _from_codex_sse(data, record)
        raise ValueError("an event stream, but neither chat chunks nor Codex events")
    doc = _json(data)
    if isinstance(doc, dict) and doc.get("object") == "chat.completion":
        return _from_completion(doc)
    if status >= 300 and record is not None and not _is_envelope(doc):
        return _upstream_error_answer(data, status, headers)
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        err = doc["error"]
        return ChatAnswer(source="as sent", error={"status": status, **err})
    raise ValueError("not a chat completion answer")


def _answer_from_chunks(chunks: list[dict[str, Any]], *, source: str) -> ChatAnswer:
    folded = fold_chunks(chunks)
    return ChatAnswer(source=source, streamed=True, usage_sent=True if folded.usage else None, **vars(folded))


def _from_completion(doc: dict[str, Any]) -> ChatAnswer:
    choice = (doc.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    return ChatAnswer(
        source="as sent",
        streamed=False,
        chunks=0,
        done=True,
        id=doc.get("id"),
        model=doc.get("model"),
        finish_reason=choice.get("finish_reason"),
        content=msg.get("content") or "",
        reasoning=msg.get("reasoning_content") or "",
        refusal=msg.get("refusal") or "",
        tool_calls=[
            ToolCall(
                c.get("id", ""),
                (c.get("function") or {}).get("name", ""),
                (c.get("function") or {}).get("arguments", ""),
            )
            for c in msg.get("tool_calls") or ()
        ],
        usage=doc.get("usage"),
        usage_sent=doc.get("usage") is not None,
    )


def _from_codex_sse(data: bytes, record: FlowRecord | None) -> ChatAnswer:
    """Runs a raw upstream body through the state machine configured as it was for the client."""
    known = record is not None
    record = record or FlowRecord()
    streamed = record.stream is not False  # a record without `stream` is from a streamed flow
    include_usage = bool(record.include_usage) or not streamed or not known
    machine = ChatStream(model=record.model or "unknown", include_usage=include_usage, stop=tuple(record.stop or ()))
    answer = _answer_from_chunks(run_body(machine, data), source="rebuilt from the raw upstream SSE")
    answer.streamed = streamed if known else None
    answer.done = machine.error is None
    if not include_usage:  # the client got no usage chunk; show what upstream reported anyway
        answer.usage = machine.usage
    answer.usage_sent = include_usage if known else None
    if not streamed:
        answer.chunks = 0
        if answer.error is not None:  # a non-streaming client gets only the failure, as an HTTP error
            answer.error["status"] = failure_status(answer.error.get("code"), answer.error.get("type"))[0]
            answer.content = answer.reasoning = answer.refusal = ""
            answer.tool_calls = []
            answer.usage = None
    return answer


def _upstream_error_answer(data: bytes, status: int, headers: Mapping[str, str]) -> ChatAnswer:
    err = upstream_error(status, data, headers)
    return ChatAnswer(
        source="translated from the upstream error",
        error={"status": err.status, "message": err.message, "type": err.type, "param": err.param, "code": err.code},
    )


def render_answer(answer: ChatAnswer) -> str:
    """A YAML-shaped, human-first rendering of a chat answer."""
    if answer.streamed:
        how = "streamed"
    elif answer.error is not None:
        how = "an error"  # a non-streaming client gets a failure as an HTTP error, whatever came before
    else:
        how = "one chat.completion" if answer.streamed is False else "a chat answer"
    if answer.streamed and answer.chunks:
        how += f", {answer.chunks} chunks" + (" + [DONE]" if answer.done else "")
    lines = [f"# The client's answer ({how}); {answer.source}"]
    for key in ("id", "model", "finish_reason"):
        value = getattr(answer, key)
        if value is not None:
            lines.append(f"{key}: {_scalar(value)}")
    if answer.reasoning:
        lines += _block("reasoning", answer.reasoning)
    if answer.refusal:
        lines += _block("refusal", answer.refusal)
    if answer.content:
        lines += _block("content", answer.content)
    elif not answer.tool_calls and answer.error is None:
        lines.append('content: ""')
    if answer.tool_calls:
        lines.append("tool_calls:")
        for call in answer.tool_calls:
            lines.append(f"  - id: {_scalar(call.id)}")
            lines.append(f"    name: {_scalar(call.name)}")
            lines += _arguments(call.arguments)
    if answer.usage:
        lines += _usage(answer.usage, answer.usage_sent)
    if answer.error is not None:
        lines.append("error:")
        for key in ("status", "type", "code", "param"):
            if answer.error.get(key) is not None:
                lines.append(f"  {key}: {_scalar(answer.error[key])}")
        lines += ["  " + line for line in _block("message", str(answer.error.get("message") or ""))]
    return "\n".join(lines) + "\n"


def _arguments(arguments: str) -> list[str]:
    try:
        parsed = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return ["    " + line for line in _block("arguments (not valid JSON)", arguments)]
    pretty = orjson.dumps(parsed, option=orjson.OPT_INDENT_2).decode()
    first, *rest = pretty.split("\n")
    return [f"    arguments: {first}", *("      " + line for line in rest)]


def _usage(usage: dict[str, Any], sent: bool | None) -> list[str]:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    lines = [
        "usage:",
        f"  prompt_tokens: {usage.get('prompt_tokens', 0)}",
        f"  cached_tokens: {prompt_details.get('cached_tokens', 0)}",
        f"  completion_tokens: {usage.get('completion_tokens', 0)}",
        f"  reasoning_tokens: {completion_details.get('reasoning_tokens', 0)}",
        f"  total_tokens: {usage.get('total_tokens', 0)}",
    ]
    if sent is False:
        lines.append("  sent_to_client: false  # stream_options.include_usage was not set")
    return lines


# -- event lists ---------------------------------------------------------------------------------------------


def render_event_list(data: bytes) -> str:
    """Any SSE body as one line per event, with consecutive text/argument deltas joined. Raises ValueError."""
    events = _sse_events(data)
    if not events:
        raise ValueError("no server-sent events in this body")
    lines: list[str] = [f"# {len(events)} events in {len(data):,} bytes; runs of deltas are joined"]
    run: tuple[tuple[Any, ...], str] | None = None  # (key, label) of the run of deltas being joined
    run_text: list[str] = []

    def flush() -> None:
        if run is not None:
            lines.extend(_block(f"{run[1]} ×{len(run_text)}", "".join(run_text)))

    for event in events:
        name, doc = _event_name(event)
        piece = _delta_piece(name, doc)
        if piece is not None and run is not None and piece[0] == run[0]:
            run_text.append(piece[2])
            continue
        flush()
        run, run_text = ((piece[0], piece[1]), [piece[2]]) if piece is not None else (None, [])
        if piece is not None:
            continue
        if event.data == "[DONE]":
            lines.append("[DONE]")
        elif name == "chunk" and isinstance(doc, dict):
            if not any(line.startswith("# chat.completion.chunk") for line in lines):
                lines.append(f"# chat.completion.chunk id {doc.get('id')}, model {doc.get('model')}")
            lines.append(f"chunk: {_compact_chunk(doc)}")
        else:
            lines.append(f"{name}: {_compact(doc)}" if doc is not None else f"{name}: {_scalar(event.data)}")
    flush()
    return "\n".join(lines) + "\n"


def _event_name(event: SSEEvent) -> tuple[str, Any]:
    if event.data == "[DONE]":
        return "[DONE]", None
    doc = _json(event.data)
    if event.event:
        return event.event, doc
    if isinstance(doc, dict):
        if isinstance(doc.get("type"), str):
            return str(doc["type"]), doc
        if doc.get("object") == "chat.completion.chunk":
            return "chunk", doc
    return "data", doc


def _delta_piece(name: str, doc: Any) -> tuple[tuple[Any, ...], str, str] | None:
    """(run key, label, text) when the event is one piece of a longer text, else None."""
    if not isinstance(doc, dict):
        return None
    if name.endswith(".delta") and isinstance(doc.get("delta"), str):
        part = doc.get("content_index", doc.get("summary_index"))
        item = doc.get("item_id") or ""
        label = f"{name} ({item})" if item else name
        return (name, item, doc.get("output_index"), part), label, doc["delta"]
    choices = doc.get("choices")
    if doc.get("object") != "chat.completion.chunk" or doc.get("usage") or not isinstance(choices, list):
        return None
    if len(choices) != 1 or choices[0].get("finish_reason"):
        return None
    delta = {k: v for k, v in (choices[0].get("delta") or {}).items() if v is not None}
    if len(delta) != 1:
        return None
    key, value = next(iter(delta.items()))
    if key in ("content", "reasoning_content", "refusal") and isinstance(value, str):
        return ("chunk", key), f"chunk {key}", value
    if key == "tool_calls" and isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        tc = value[0]
        fn = tc.get("function") or {}
        if set(tc) == {"index", "function"} and set(fn) == {"arguments"}:
            label = f"chunk tool_calls[{tc['index']}].arguments"
            return ("chunk", label), label, str(fn["arguments"])
    return None


def _compact_chunk(doc: dict[str, Any]) -> str:
    """A chat chunk without its repeated envelope (id, model, created...) and null fields."""
    out: dict[str, Any] = {}
    if doc.get("choices") or "usage" not in doc or doc.get("usage") is None:
        out["choices"] = [_compact_choice(c) for c in doc.get("choices") or ()]
    if doc.get("usage") is not None:
        out["usage"] = doc["usage"]
    return orjson.dumps(_clip(out)).decode()


def _compact_choice(choice: Any) -> Any:
    if not isinstance(choice, dict):
        return choice
    out = {k: v for k, v in choice.items() if v is not None and k not in ("index", "logprobs")}
    if isinstance(out.get("delta"), dict):
        out["delta"] = {k: v for k, v in out["delta"].items() if v is not None}
    return out


def _compact(doc: Any) -> str:
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in ("type", "sequence_number")}
        if isinstance(doc.get("response"), dict):
            doc["response"] = _response_summary(doc["response"])
    return orjson.dumps(_clip(doc)).decode()


def _response_summary(response: dict[str, Any]) -> dict[str, Any]:
    out = {k: response[k] for k in _RESPONSE_KEYS if response.get(k) is not None}
    if response.get("output"):
        out["output"] = [item.get("type") if isinstance(item, dict) else item for item in response["output"]]
    return out


def _clip(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _MAX_STRING:
        return value[:_MAX_STRING] + f"… ({len(value):,} chars)"
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


# -- mitmproxy views -----------------------------------------------------------------------------------------


class ChatContentview(contentviews.Contentview):
    """The client's side of a gateway answer (see the module docstring)."""

    name = "Chat"
    syntax_highlight: SyntaxHighlight = "yaml"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        response = metadata.http_message
        status = response.status_code if isinstance(response, http.Response) else 200
        headers: Mapping[str, str] = response.headers if response is not None else {}
        return render_answer(chat_answer(data, status, headers, _chat_record(metadata)))

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        return CHAT_PRIORITY if _chat_record(metadata) is not None else -1


class CodexSSEContentview(contentviews.Contentview):
    """Server-sent events as a readable list; on gateway flows, the upstream Codex stream."""

    name = "Codex SSE"
    syntax_highlight: SyntaxHighlight = "yaml"

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        flow = metadata.flow
        if _chat_record(metadata) is not None and isinstance(flow, http.HTTPFlow):
            data = upstream_body(flow) or data
        return render_event_list(data)

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        if _chat_record(metadata) is not None:
            return 0.5  # the Chat view is the default there
        return SSE_PRIORITY if metadata.content_type == "text/event-stream" else -1


def register() -> None:
    """Adds both views to mitmproxy (idempotent: a re-registration replaces the previous instance)."""
    contentviews.add(ChatContentview)
    contentviews.add(CodexSSEContentview)


def _chat_record(metadata: Metadata) -> FlowRecord | None:
    """The flow's record when `metadata` describes the response of a gateway chat flow."""
    flow = metadata.flow
    if not isinstance(flow, http.HTTPFlow) or flow.response is None or metadata.http_message is not flow.response:
        return None
    return chat_record_of(flow)


# -- small helpers -------------------------------------------------------------------------------------------


def _sse_events(data: bytes) -> list[SSEEvent]:
    head = data[:64].lstrip()
    if not head.startswith((b"data:", b"event:", b":", b"id:", b"retry:")):
        return []
    decoder = SSEDecoder()
    return decoder.feed(data) + decoder.close()


def _json(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _is_envelope(doc: Any) -> bool:
    """Exactly the OpenAI error envelope the gateway sends: `{"error": {message, type, param, code}}`."""
    return (
        isinstance(doc, dict)
        and set(doc) == {"error"}
        and isinstance(doc["error"], dict)
        and set(doc["error"]) == {"message", "type", "param", "code"}
    )


def _scalar(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return orjson.dumps(value).decode()
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return text if _PLAIN.match(text) else orjson.dumps(text).decode()


def _block(key: str, text: str) -> list[str]:
    if "\n" not in text and len(text) <= 100:
        return [f"{key}: {_scalar(text)}" if text else f'{key}: ""']
    return [f"{key}: |-", *(("  " + line) if line else "" for line in text.split("\n"))]
