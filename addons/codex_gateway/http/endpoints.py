"""Per-endpoint translation, behind one interface the addon's hooks use (no mitmproxy here).

Every endpoint that reaches the Codex backend is prepared into an `Upstream` (path, body, session headers and
serializable metadata); its successful answer is either streamed through an endpoint-specific callable or
answered from the buffered upstream body. The metadata is all a later hook (or a replay) needs to do that.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson

from ..answer import ClientAnswer
from ..chat.answer import buffered_answer as chat_buffered_answer
from ..chat.answer import machine_for
from ..chat.request import DEFAULT_INSTRUCTIONS
from ..chat.request import translate_chat_request
from ..chat.translator import ChatSSETranslator
from ..codex_request import uuid_key
from ..errors import GatewayError
from ..errors import bad_request
from ..errors import parse_json_object
from ..errors import upstream_error
from ..images import request as images
from ..responses import request as responses_api
from ..responses import stream as responses_stream
from .routes import Route

__all__ = ["Upstream", "prepare_upstream", "stream_translator", "stream_outcome", "buffered_answer"]

StreamCallable = ChatSSETranslator | responses_stream.ResponsesSSEPassThrough


@dataclass
class Upstream:
    path: str  # below codex_upstream
    body: bytes
    session_headers: list[tuple[str, str]]
    meta: dict[str, Any] = field(default_factory=dict)  # merged into the flow's metadata: serializable, no secrets


def prepare_upstream(
    route: Route,
    raw: bytes,
    content_type: str | None,
    client_headers: Iterable[tuple[str, str]],
    *,
    image_orchestrator: str = images.DEFAULT_ORCHESTRATOR,
    parsed: Any = None,
) -> Upstream:
    """Validates and translates a client request. Raises `GatewayError` (4xx) with nothing sent upstream.

    `parsed`: the caller's `orjson.loads(raw)`, if it has one (saves parsing a chat request twice)."""
    if route is Route.CHAT:
        req = translate_chat_request(raw, parsed)
        meta = {
            "endpoint": "chat.completions",
            "model": req.model,
            "stream": req.stream,
            "include_usage": req.include_usage,
            "stop": list(req.stop),
            "dropped": req.dropped,
            "messages": req.message_count,
            "tools": req.tool_count,
            "session_id": req.session_id,
        }
        return Upstream("/responses", _encoded(req.body_bytes), [("session_id", req.session_id)], meta)
    if route is Route.RESPONSES:
        rreq = responses_api.prepare(raw, default_instructions=DEFAULT_INSTRUCTIONS)
        meta = {
            "endpoint": "responses",
            "model": rreq.model,
            "stream": rreq.stream,
            "dropped": rreq.dropped,
            "stripped_ids": rreq.stripped_ids,
            "messages": rreq.input_items,
            "tools": rreq.tool_count,
            "session_id": rreq.session_id,
        }
        headers = responses_api.upstream_session_headers(client_headers, rreq.session_id)
        return Upstream("/responses", _encoded(rreq.body_bytes, rreq.body), headers, meta)
    if route is Route.COMPACT:
        doc = parse_json_object(raw)
        model = doc.get("model")
        session_id = uuid_key(raw)
        headers = responses_api.upstream_session_headers(client_headers, session_id)
        meta = {"endpoint": "responses.compact", "model": model if isinstance(model, str) else "?", "stream": False}
        return Upstream("/responses/compact", raw, headers, meta)
    if route in (Route.IMAGES_GENERATIONS, Route.IMAGES_EDITS):
        prepare = images.prepare_generation if route is Route.IMAGES_GENERATIONS else images.prepare_edit
        body, imeta = prepare(raw, content_type, orchestrator=image_orchestrator)
        meta = {
            "endpoint": imeta.get("endpoint", route.value),
            "model": body.get("model", image_orchestrator),
            "stream": False,
            "images": imeta,
            "session_id": imeta["session_id"],
        }
        return Upstream("/responses", _encoded(lambda: orjson.dumps(body)), [("session_id", imeta["session_id"])], meta)
    raise GatewayError(500, f"No upstream translation for {route.value}.")


def stream_translator(meta: Mapping[str, Any]) -> StreamCallable | None:
    """The incremental translator for a successful answer to a streaming client (None: buffer it)."""
    if not meta.get("stream"):
        return None
    if meta["endpoint"] == "chat.completions":
        return ChatSSETranslator(machine_for(meta))
    if meta["endpoint"] == "responses":
        return responses_stream.ResponsesSSEPassThrough(model=meta.get("model"))
    return None


def stream_outcome(stream: StreamCallable) -> dict[str, Any]:
    """What the summary records about a streamed answer."""
    if isinstance(stream, ChatSSETranslator):
        machine = stream.machine
        error = machine.error["message"] if machine.error else None
        return {
            "finish_reason": machine.finish_reason,
            "usage": machine.usage,
            "tool_calls": machine.tool_call_names,
            "first_token_at": stream.first_token_at,
            **({"error": error} if error else {}),
        }
    failed = stream.error.get("message") if stream.error else None
    return {
        "finish_reason": stream.finish_reason,
        "usage": stream.summary_usage,
        "tool_calls": stream.tool_calls,
        "first_token_at": stream.first_token_at,
        **({"error": failed} if failed else {}),
    }


def buffered_answer(meta: Mapping[str, Any], status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    """The client's answer from a whole upstream body (non-streaming clients, upstream errors, replays)."""
    endpoint = meta.get("endpoint")
    if endpoint == "chat.completions":
        return chat_buffered_answer(meta, status, headers, body)
    if endpoint == "responses":
        return responses_stream.buffered_answer(bool(meta.get("stream")), status, headers, body)
    if endpoint in ("images.generations", "images.edits"):
        return images.buffered_answer(meta["images"], status, headers, body)
    if not (200 <= status < 300):
        return ClientAnswer.from_error(upstream_error(status, body, headers))
    content_type = headers.get("content-type", "application/json")
    return ClientAnswer(status, content_type, body)  # responses/compact: the backend's answer as it is


def _encoded(make: Callable[[], bytes], body: Mapping[str, Any] | None = None) -> bytes:
    """orjson reads 1024 levels of nesting but writes at most 254: a hostile body is a 400, not a crash."""
    try:
        return make()
    except TypeError as e:  # orjson.JSONEncodeError is a TypeError
        message = "The request nests JSON deeper than the gateway can forward (about 250 levels)."
        raise bad_request(message, _unencodable(body) if body is not None else None) from e


def _unencodable(body: Mapping[str, Any]) -> str | None:
    """The top-level field (or `input[i]` item) that cannot be written, to name it in the 400."""
    for key, value in body.items():
        try:
            orjson.dumps(value)
        except TypeError:
            for i, item in enumerate(value if isinstance(value, list) else ()):
                try:
                    orjson.dumps(item)
                except TypeError:
                    return f"{key}[{i}]"
            return str(key)
    return None
