"""One declared record of what the gateway knows about a flow (pure: no mitmproxy here).

`flow.metadata["codex_gateway"]` (key `META`) holds it. Every reader and writer goes through `record_of(flow)`
and the typed fields of `FlowRecord`; nothing else in the package indexes the metadata by string.

In memory the key holds a `FlowRecord`. Saved, it is plain JSON: mitmproxy writes a flow (`-w`, mitmweb's
save, `flow.copy()`) from `flow.get_state()`, which deep-copies `flow.metadata`, and `FlowRecord.__deepcopy__`
answers that copy with `to_json()`. mitmproxy's file format (tnetstring) could not hold the object anyway. A
flow read back from a file holds the JSON dict, and so do flows saved before this module existed: `record_of`
turns it into a `FlowRecord` on first use (same keys, see `FlowRecord.to_json`). `str(record)` is the JSON form's
too, so mitmproxy's `~meta` filter matches live and loaded flows alike. tests/test_flow_record.py fails when a
mitmproxy release changes how it saves or copies metadata.

JSON keys (each one a field of the same name; a key is left out while its field is None, except where a null
says something, see `_NULL_KEPT`):

| key | meaning |
|---|---|
| `endpoint`, `started` | the `Route` value (`chat.completions`, `responses`, ...); request start (unix seconds) |
| `client`, `trace`, `cors_origin` | the client's name; the `traceparent` trace id; the allowed CORS origin |
| `original_request` | the client's request (`OriginalRequest`): method, path, headers (credentials redacted), body |
| `model`, `stream`, `include_usage`, `stop` | the model that serves (see `model_names`); as requested (chat) |
| `requested_model`, `name_effort` | the client's model name, if it stood for another; the effort the name set |
| `model_served` | the model the upstream says answered, when it says (the request log keeps it) |
| `messages`, `tools`, `dropped`, `stripped_ids` | counts; parameters dropped; item ids stripped (responses) |
| `session_id`, `session_headers` | the `prompt_cache_key` sent as `session_id`; the session headers sent upstream |
| `images` | the images request (`images.job.ImageJob`) |
| `account`, `retries` | the account used; notes on retries |
| `client_status`, `upstream_status` | the status the client got; the upstream's, when it was not 2xx |
| `finish_reason`, `tool_calls`, `usage`, `first_token_at` | how the answer ended (see `answer.Outcome`) |
| `error`, `finished_at` | the error message; when the flow finished (unix seconds) |
| `failure`, `failure_reason` | the failure kind and the line the flow's comment starts with (`inspect.summary`) |
| `models_source` | where a `/v1/models` answer came from (`live`, `gateway-cache`, `codex-cache`, `builtin`) |
| `codex_model`, `thinking` | messages: the Codex model a Claude name became; the thinking blocks the answer carries |
| `tool_names`, `betas` | messages: shortened upstream tool name → the client's; the `anthropic-beta` flags |
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from enum import Enum
from typing import Any
from typing import Protocol

from .answer import Outcome
from .images.job import ImageJob

__all__ = ["META", "Route", "OriginalRequest", "FlowRecord", "record_of", "set_record"]

META = "codex_gateway"


class Route(Enum):
    """The endpoint a client request is for (`http.routes.route_for` picks it)."""

    CHAT = "chat.completions"
    RESPONSES = "responses"
    COMPACT = "responses.compact"
    MODELS = "models"
    MODEL = "models.retrieve"
    IMAGES_GENERATIONS = "images.generations"
    IMAGES_EDITS = "images.edits"
    MESSAGES = "messages"  # Anthropic's Messages API
    COUNT_TOKENS = "messages.count_tokens"


@dataclass(slots=True)
class OriginalRequest:
    """The client's request before translation, credentials redacted (`inspect.summary.sanitized_request`)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: str | None  # None once dropped (mitmdump keeps no flows: `http.answer_writer.shed_bodies`)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"method": self.method, "path": self.path, "headers": [list(h) for h in self.headers]}
        if self.body is not None:
            out["body"] = self.body
        return out

    @classmethod
    def from_json(cls, doc: Any) -> OriginalRequest | None:
        if not isinstance(doc, dict):
            return None
        headers = _pairs(doc.get("headers")) or []
        body = doc.get("body")
        return cls(
            str(doc.get("method", "")), str(doc.get("path", "")), headers, body if isinstance(body, str) else None
        )


class TranslatedRequest(Protocol):
    """What each endpoint's request translator gives back, as far as the record keeps it."""

    stream: bool
    session_id: str
    message_count: int  # messages, or input items
    tool_count: int
    dropped: list[str]


@dataclass(slots=True)
class FlowRecord:
    """What the gateway knows about one flow. Fields are None until known; see the module docstring."""

    endpoint: Route | None = None
    started: float | None = None
    client: str | None = None
    trace: str | None = None
    cors_origin: str | None = None
    original_request: OriginalRequest | None = None
    model: str | None = None
    requested_model: str | None = None
    name_effort: str | None = None
    model_served: str | None = None
    stream: bool | None = None
    include_usage: bool | None = None
    stop: list[str] | None = None
    dropped: list[str] | None = None
    stripped_ids: int | None = None
    messages: int | None = None
    tools: int | None = None
    session_id: str | None = None
    session_headers: list[tuple[str, str]] | None = None
    images: ImageJob | None = None
    account: str | None = None
    retries: list[str] | None = None
    client_status: int | None = None
    upstream_status: int | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    tool_calls: list[str] | None = None  # set (maybe empty) once an answer's outcome is recorded
    first_token_at: float | None = None
    error: str | None = None
    finished_at: float | None = None
    failure: str | None = None
    failure_reason: str | None = None
    models_source: str | None = None
    codex_model: str | None = None
    thinking: str | None = None
    tool_names: dict[str, str] | None = None
    betas: list[str] | None = None
    # What this record does not model, as it was read from a saved flow (kept for saving it again): keys of
    # another version, values of an unexpected type, and nulls `to_json` would not write.
    extra: dict[str, Any] = field(default_factory=dict)

    # -- what readers ask --------------------------------------------------------------------------------------

    @property
    def endpoint_name(self) -> str | None:
        """The endpoint as recorded: the route's value, or an endpoint this version does not know."""
        if self.endpoint is not None:
            return self.endpoint.value
        other = self.extra.get("endpoint")
        return other if isinstance(other, str) else None

    @property
    def is_chat(self) -> bool:
        """A chat.completions flow whose request was parsed (records from before endpoints existed are chat)."""
        return self.original_request is not None and (
            self.endpoint is Route.CHAT or (self.endpoint is None and "endpoint" not in self.extra)
        )

    @property
    def answered(self) -> bool:
        """The client's answer is recorded (the flow was answered or its answer translated)."""
        return self.client_status is not None

    @property
    def translated(self) -> bool:
        """An answer's outcome is recorded (finish reason, usage, tool calls)."""
        return self.tool_calls is not None

    # -- what writers record -----------------------------------------------------------------------------------

    def record_request(self, request: TranslatedRequest) -> None:
        """What every translated request has: streaming or not, its session, counts, parameters dropped."""
        self.stream = request.stream
        self.session_id = request.session_id
        self.messages = request.message_count
        self.tools = request.tool_count
        self.dropped = request.dropped

    def record_answer(self, status: int, outcome: Outcome | None = None) -> None:
        """The status the client got and, for a translated answer, how it ended."""
        self.client_status = status
        if outcome is None:
            return
        self.finish_reason = outcome.finish_reason
        self.usage = outcome.usage
        self.tool_calls = list(outcome.tool_calls)
        if outcome.first_token_at is not None:
            self.first_token_at = outcome.first_token_at
        if outcome.error:
            self.error = outcome.error
        if outcome.model:
            self.model_served = outcome.model

    # -- saved form --------------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON (what a saved flow holds), with the keys the metadata always had."""
        out = copy.deepcopy(self.extra)
        for name in _FIELDS:
            value = getattr(self, name)
            if value is None:
                anchor = _NULL_KEPT.get(name)
                if anchor is None or getattr(self, anchor) is None:
                    continue
            out[name] = _plain(value)
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> FlowRecord:
        """A record from its saved form, this version's or an older one's. Never raises: what it cannot read goes
        to `extra` unchanged, so saving the flow again writes it back."""
        record = cls()
        for key, value in doc.items():
            parse = _PARSERS.get(key)
            parsed = parse(value) if parse is not None and value is not None else None
            if parsed is not None or (value is None and doc.get(_NULL_KEPT.get(key, "")) is not None):
                setattr(record, key, parsed)
            else:
                record.extra[key] = copy.deepcopy(value)
        return record

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        # `Flow.get_state()` deep-copies the metadata: flows are saved and copied with the JSON form.
        return self.to_json()

    def __str__(self) -> str:
        # mitmproxy's `~meta` filter matches `str()` of each metadata value: the same text as for a saved flow.
        return str(self.to_json())


# A null that says something is written while its anchor is set: the parsed request had no trace id or CORS
# origin; a retry ended in a 2xx; a translated answer had no finish reason or usage.
_NULL_KEPT = {
    "trace": "original_request",
    "cors_origin": "original_request",
    "upstream_status": "retries",
    "finish_reason": "tool_calls",
    "usage": "tool_calls",
}


def _plain(value: Any) -> Any:
    if isinstance(value, Route):
        return value.value
    if isinstance(value, OriginalRequest | ImageJob):
        return value.to_json()
    if isinstance(value, list):
        return [list(v) if isinstance(v, tuple) else v for v in value]
    if isinstance(value, dict):
        return copy.deepcopy(value)
    return value


# -- reading saved values: None when a value is not what the field holds ------------------------------------


def _route(value: Any) -> Route | None:
    try:
        return Route(value)
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _texts(value: Any) -> list[str] | None:
    ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    return list(value) if ok else None


def _pairs(value: Any) -> list[tuple[str, str]] | None:
    if not isinstance(value, list):
        return None
    pairs = [tuple(p) for p in value if isinstance(p, list | tuple) and len(p) == 2]
    ok = len(pairs) == len(value) and all(isinstance(a, str) and isinstance(b, str) for a, b in pairs)
    return [(str(a), str(b)) for a, b in pairs] if ok else None


def _object(value: Any) -> dict[str, Any] | None:
    return copy.deepcopy(value) if isinstance(value, dict) else None


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "endpoint": _route,
    "started": _time,
    "client": _text,
    "trace": _text,
    "cors_origin": _text,
    "original_request": OriginalRequest.from_json,
    "model": _text,
    "requested_model": _text,
    "name_effort": _text,
    "model_served": _text,
    "stream": _flag,
    "include_usage": _flag,
    "stop": _texts,
    "dropped": _texts,
    "stripped_ids": _count,
    "messages": _count,
    "tools": _count,
    "session_id": _text,
    "session_headers": _pairs,
    "images": ImageJob.from_json,
    "account": _text,
    "retries": _texts,
    "client_status": _count,
    "upstream_status": _count,
    "finish_reason": _text,
    "usage": _object,
    "tool_calls": _texts,
    "first_token_at": _time,
    "error": _text,
    "finished_at": _time,
    "failure": _text,
    "failure_reason": _text,
    "models_source": _text,
    "codex_model": _text,
    "thinking": _text,
    "tool_names": _object,
    "betas": _texts,
}
_FIELDS = tuple(f.name for f in fields(FlowRecord) if f.name != "extra")


# -- the record in a flow ------------------------------------------------------------------------------------


class _HasMetadata(Protocol):
    metadata: dict[str, Any]


def record_of(flow: object) -> FlowRecord | None:
    """The gateway's record of a flow, or None for flows the gateway did not handle. A flow read from a file holds
    the saved JSON: it is read into a record once, which then replaces it in the flow."""
    metadata = getattr(flow, "metadata", None)
    if not isinstance(metadata, dict):
        return None
    value = metadata.get(META)
    if type(value) is FlowRecord:
        return value
    if not isinstance(value, dict) or not value:
        return None
    record = FlowRecord.from_json(value)
    metadata[META] = record
    return record


def set_record(flow: _HasMetadata, record: FlowRecord) -> FlowRecord:
    """Makes `record` the flow's record (replacing any other)."""
    flow.metadata[META] = record
    return record
