"""Per-endpoint translation, behind one interface the addon's hooks use (no mitmproxy here).

Every endpoint that reaches the Codex backend is prepared into an `Upstream` (path, body, session headers), and
what the translation decided goes into the flow's record (`flow_record.FlowRecord`: model, stream, counts, ...);
its successful answer is either streamed through an endpoint-specific callable or answered from the buffered
upstream body. The record is all a later hook (or a replay of a saved flow) needs to do that; everything here
dispatches on its `Route`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import orjson

from ..answer import ClientAnswer
from ..answer import StreamCallable
from ..anthropic.errors import anthropic_error_answer
from ..anthropic.errors import is_anthropic_request
from ..chat.answer import ChatOptions
from ..chat.answer import buffered_answer as chat_buffered_answer
from ..chat.answer import machine_for
from ..chat.request import translate_chat_request
from ..chat.translator import ChatSSETranslator
from ..codex_request import DEFAULT_INSTRUCTIONS
from ..codex_request import uuid_key
from ..errors import GatewayError
from ..errors import bad_request
from ..errors import parse_json_object
from ..errors import upstream_error
from ..flow_record import FlowRecord
from ..flow_record import Route
from ..images import request as images
from ..model_names import ModelChoice
from ..model_names import apply_choice
from ..responses import request as responses_api
from ..responses import stream as responses_stream

if TYPE_CHECKING:
    from ..anthropic.answer import MessagesOptions

__all__ = [
    "Upstream",
    "prepare_upstream",
    "stream_translator",
    "buffered_answer",
    "chat_options",
    "messages_options",
    "count_message_tokens",
    "error_answer",
]


@dataclass
class Upstream:
    path: str  # below codex_upstream
    body: bytes
    session_headers: list[tuple[str, str]]


def prepare_upstream(
    route: Route,
    raw: bytes,
    content_type: str | None,
    client_headers: Iterable[tuple[str, str]],
    record: FlowRecord,
    *,
    image_orchestrator: str = images.DEFAULT_ORCHESTRATOR,
    parsed: Any = None,
    claude_models: tuple[tuple[str, str], ...] = (),
    model_choice: Callable[[str], ModelChoice] | None = None,
) -> Upstream:
    """Validates and translates a client request, and records what the translation decided in `record` (model,
    stream, counts, dropped parameters, session id). Raises `GatewayError` (4xx) with nothing sent upstream.

    `parsed`: the caller's `orjson.loads(raw)`, if it has one (saves parsing a chat request twice).
    `model_choice`: what a requested model name stands for (aliases, `<model>-<effort>`; chat and responses)."""
    match route:
        case Route.CHAT:
            return _chat(raw, parsed, record, model_choice)
        case Route.RESPONSES:
            return _responses(raw, client_headers, record, model_choice)
        case Route.COMPACT:
            return _compact(raw, client_headers, record)
        case Route.IMAGES_GENERATIONS | Route.IMAGES_EDITS:
            return _images(route, raw, content_type, image_orchestrator, record)
        case Route.MESSAGES:
            return _messages(raw, parsed, client_headers, claude_models, record)
    raise GatewayError(500, f"No upstream translation for {route.value}.")


# Each records the translation only once the request is fully translated: a request refused half-way (e.g. a
# body nested too deep to write) is recorded like any other bad request.


def _chat(raw: bytes, parsed: Any, record: FlowRecord, choose: Callable[[str], ModelChoice] | None) -> Upstream:
    req = translate_chat_request(raw, parsed)
    choice = _chosen_model(req.body, req.model, choose)
    body = _encoded(req.body_bytes)
    _record_choice(record, req.model, choice)
    record.record_request(req)
    record.include_usage = req.include_usage
    record.stop = list(req.stop)
    return Upstream("/responses", body, [("session_id", req.session_id)])


def _responses(
    raw: bytes,
    client_headers: Iterable[tuple[str, str]],
    record: FlowRecord,
    choose: Callable[[str], ModelChoice] | None,
) -> Upstream:
    req = responses_api.prepare(raw, default_instructions=DEFAULT_INSTRUCTIONS)
    choice = _chosen_model(req.body, req.model, choose)
    body = _encoded(req.body_bytes, req.body)
    _record_choice(record, req.model, choice)
    record.record_request(req)
    record.stripped_ids = req.stripped_ids
    return Upstream("/responses", body, responses_api.upstream_session_headers(client_headers, req.session_id))


def _compact(raw: bytes, client_headers: Iterable[tuple[str, str]], record: FlowRecord) -> Upstream:
    model = parse_json_object(raw).get("model")
    record.model = model if isinstance(model, str) else "?"
    record.stream = False
    session_id = uuid_key(raw)
    return Upstream("/responses/compact", raw, responses_api.upstream_session_headers(client_headers, session_id))


def _images(route: Route, raw: bytes, content_type: str | None, orchestrator: str, record: FlowRecord) -> Upstream:
    prepare = images.prepare_generation if route is Route.IMAGES_GENERATIONS else images.prepare_edit
    doc, job = prepare(raw, content_type, orchestrator=orchestrator)
    body = _encoded(lambda: orjson.dumps(doc))
    record.model = doc.get("model", orchestrator)
    record.stream = False
    record.images = job
    record.session_id = job.session_id
    return Upstream("/responses", body, [("session_id", job.session_id)])


# -- the Anthropic Messages route ------------------------------------------------------------------------------
# These five functions import the Anthropic translation on first use instead of at start-up: its pydantic schema
# and state machine hold about 3 MiB resident, a gateway no Anthropic client talks to never needs them, and the
# gateway process has a memory goal (README, Performance). Its small parts (errors, model names) load eagerly.


def _messages(
    raw: bytes,
    parsed: Any,
    client_headers: Iterable[tuple[str, str]],
    claude_models: tuple[tuple[str, str], ...],
    record: FlowRecord,
) -> Upstream:
    from ..anthropic.request import translate_messages_request

    req = translate_messages_request(raw, parsed, {k.lower(): v for k, v in client_headers}, claude_models)
    body = _encoded(req.body_bytes, req.body)
    record.model = req.model
    record.codex_model = req.body["model"]
    record.record_request(req)
    record.stop = list(req.stop)
    record.thinking = req.thinking
    record.tool_names = req.tool_names
    record.betas = req.betas
    return Upstream("/responses", body, [("session_id", req.session_id)])


def messages_options(record: FlowRecord) -> MessagesOptions:
    """How a Messages flow's answer is translated, from its record."""
    from ..anthropic.answer import MessagesOptions

    return MessagesOptions(
        model=record.model or "unknown",
        stream=bool(record.stream),
        stop=tuple(record.stop or ()),
        thinking=record.thinking or "off",
        tool_names=dict(record.tool_names or {}),
    )


def _messages_stream(record: FlowRecord, keep_raw: bool) -> StreamCallable:
    from ..anthropic.answer import machine_for
    from ..anthropic.translator import MessagesSSETranslator

    return MessagesSSETranslator(machine_for(messages_options(record)), keep_raw=keep_raw)


def _messages_buffered(record: FlowRecord, status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    from ..anthropic.answer import buffered_answer as messages_buffered_answer

    return messages_buffered_answer(messages_options(record), status, headers, body)


def count_message_tokens(
    raw: bytes, parsed: Any, headers: Mapping[str, str], claude_models: tuple[tuple[str, str], ...]
) -> dict[str, int]:
    """`POST /v1/messages/count_tokens`: the local estimate (raises `GatewayError` 400 for what `/v1/messages`
    would refuse)."""
    from ..anthropic.count import count_tokens

    return count_tokens(raw, parsed, headers, claude_models)


# -- every route ------------------------------------------------------------------------------------------------


def error_answer(err: GatewayError, path: str, headers: Mapping[str, str]) -> ClientAnswer:
    """An error in the envelope the client speaks: Anthropic's for Anthropic clients, else OpenAI's."""
    return anthropic_error_answer(err) if is_anthropic_request(path, headers) else ClientAnswer.from_error(err)


def _chosen_model(
    body: dict[str, Any], requested: str, choose: Callable[[str], ModelChoice] | None
) -> tuple[ModelChoice, str | None] | None:
    """Rewrites the translated body for the model the requested name stands for (the one place for chat and
    responses); the choice and the effort applied from the name."""
    if choose is None:
        return None
    choice = choose(requested)
    return choice, apply_choice(body, choice)


def _record_choice(record: FlowRecord, requested: str, chosen: tuple[ModelChoice, str | None] | None) -> None:
    """The record names the model that serves, and what the client asked for when that differs."""
    if chosen is None:
        record.model = requested
        return
    choice, effort = chosen
    record.model = choice.model
    if choice.renamed:
        record.requested_model = choice.requested
    if effort is not None:
        record.name_effort = effort


def chat_options(record: FlowRecord) -> ChatOptions:
    """How a chat flow's answer is translated, from its record."""
    return ChatOptions(
        model=record.model or "unknown",
        stream=bool(record.stream),
        include_usage=bool(record.include_usage),
        stop=tuple(record.stop or ()),
    )


def stream_translator(record: FlowRecord, *, keep_raw: bool = True) -> StreamCallable | None:
    """The incremental translator for a successful answer to a streaming client (None: buffer it). `keep_raw`:
    it keeps the upstream SSE as read, for the flow (`take_raw_body`)."""
    if not record.stream:
        return None
    if record.endpoint is Route.CHAT:
        return ChatSSETranslator(machine_for(chat_options(record)), keep_raw=keep_raw)
    if record.endpoint is Route.RESPONSES:
        return responses_stream.ResponsesSSEPassThrough(keep_raw=keep_raw, model=record.model)
    if record.endpoint is Route.MESSAGES:
        return _messages_stream(record, keep_raw)
    return None


def buffered_answer(record: FlowRecord, status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    """The client's answer from a whole upstream body (non-streaming clients, upstream errors, replays)."""
    match record.endpoint:
        case Route.CHAT:
            return chat_buffered_answer(chat_options(record), status, headers, body)
        case Route.RESPONSES:
            return responses_stream.buffered_answer(bool(record.stream), status, headers, body)
        case Route.IMAGES_GENERATIONS | Route.IMAGES_EDITS if record.images is not None:
            return images.buffered_answer(record.images, status, headers, body)
        case Route.MESSAGES:
            return _messages_buffered(record, status, headers, body)
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
