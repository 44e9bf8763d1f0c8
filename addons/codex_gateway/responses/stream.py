"""Codex SSE → `/v1/responses` answers: the streaming pass-through and the non-streamed `response` object.

The backend already speaks the Responses API, so a streamed answer is passed through event by event. Two things
are fixed on the way:

- The terminal `response.completed` / `response.incomplete` / `response.failed` event gets its `output` filled
  from the finished items (`response.output_item.done`, in `output_index` order) when the backend sent
  `output: []` (it does with `store: false`); missing `id`, `object`, `created_at`, `model` and `status` are
  filled from `response.created`. Without this, the OpenAI SDK's `responses.stream()` ends with an empty
  `output_text` (it only rebuilds an output that is missing, not an empty one).
- A stream that ends without a terminal event ends with an `error` event (code `stream_incomplete`), carrying
  `code`/`message`/`param` both at the top level (the documented `ResponseErrorEvent`) and nested under `error`
  (what the real API sends, and what makes the OpenAI Python SDK raise `APIError`). Upstream `error` events get
  the missing half of that shape too.

Everything else is re-framed but unchanged: `event: <type>` + `data: <json as received>` + blank line. Events
whose data is not a JSON object (`[DONE]`, junk) are dropped, as Codex itself skips them.

Wiring (addon):

- streamed client, 2xx upstream: `response.stream = ResponsesSSEPassThrough()`; afterwards
  `take_raw_body()` is the upstream SSE for the saved flow, and `outcome()` describes the answer for the flow
  record (`finish_reason`, `summary_usage`, `tool_calls`, `error`, `first_token_at`).
- anything buffered (non-streamed client, upstream error, replayed response):
  `buffered_answer(stream, status, headers, body) -> ClientAnswer` (same machinery: a non-streamed answer is the
  aggregate of exactly what a streamed one would have shown).
- `aggregate_response(body)` → `(http_status, response_dict | error_envelope)` for one whole upstream SSE body.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import orjson

from ..answer import ClientAnswer
from ..answer import Outcome
from ..codex_events import chat_usage
from ..errors import GatewayError
from ..errors import failure_status
from ..errors import upstream_error
from ..sse import RawBodyKeeper
from ..sse import SSEDecoder
from ..sse import SSEEvent

__all__ = [
    "ResponsesSSEPassThrough",
    "aggregate_response",
    "buffered_answer",
    "failure_status",
    "output_text",
    "STREAM_INCOMPLETE",
]

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
STREAM_INCOMPLETE = "The upstream stream ended before response.completed; the answer is incomplete."
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
_TERMINAL_STATUS = {"response.completed": "completed", "response.incomplete": "incomplete", "response.failed": "failed"}


class ResponsesSSEPassThrough(RawBodyKeeper):
    """Stream callable (mitmproxy `response.stream`): called per network read, finally with b"".

    Returns at most one bytes object per call and never b"" (an empty write would end a chunked HTTP/1 body).
    """

    def __init__(
        self, *, keep_raw: bool = True, model: str | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.decoder = SSEDecoder()
        self.raw = bytearray() if keep_raw else None
        self.clock = clock
        self.response_id: str | None = None
        self.model = model
        self.created_at: int | None = None
        self.status: str | None = None  # completed | incomplete | failed, from the terminal event
        self.incomplete_reason: str | None = None
        self.usage: dict[str, Any] | None = None  # Responses usage, as upstream sent it
        self.error: dict[str, Any] | None = None  # {message, type, code, param} when the answer failed
        self.final: dict[str, Any] | None = None  # the terminal `response` object, output filled
        self.first_token_at: float | None = None
        self.events_out = 0
        self.bad_events = 0
        self.filled_output = False
        self._last_seq = -1
        self._done: dict[int, dict[str, Any]] = {}  # output_index → finished item
        self._added: dict[int, dict[str, Any]] = {}  # output_index → item as added (unfinished ones)
        self._index_of: dict[str, int] = {}  # item id → output_index
        self._text: dict[tuple[str, int], list[str]] = {}  # (item id, content index) → text deltas
        self._args: dict[str, list[str]] = {}  # item id → function-call argument deltas
        self._ended = False

    # -- stream callable --------------------------------------------------------------------------------------

    def __call__(self, data: bytes) -> list[bytes]:
        if data:
            if self.raw is not None:
                self.raw += data
            out = self._run(self.decoder.feed(data))
        else:
            out = self._run(self.decoder.close()) + self._end()
        return [out] if out else []

    # -- outcome ----------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """A terminal event (or an upstream `error` event) arrived."""
        return self.status is not None or self.error is not None

    @property
    def finish_reason(self) -> str | None:
        """The chat-style outcome for summaries: stop, tool_calls, length, content_filter; None if it failed."""
        if self.status == "incomplete":
            return _INCOMPLETE_REASONS.get(str(self.incomplete_reason), "length")
        if self.status != "completed":
            return None
        return "tool_calls" if self.tool_calls else "stop"

    @property
    def tool_calls(self) -> list[str]:
        return [str(it.get("name")) for it in self.output_items() if it.get("type") == "function_call"]

    @property
    def summary_usage(self) -> dict[str, Any] | None:
        """Usage in the chat shape the flow summaries use (prompt/completion tokens and their details)."""
        return chat_usage(self.usage)

    def outcome(self) -> Outcome:
        """How the answer ended, for the flow record (see `answer.StreamCallable`)."""
        failed = self.error.get("message") if self.error else None
        return Outcome(self.finish_reason, self.summary_usage, self.tool_calls, self.first_token_at, failed)

    def output_items(self) -> list[dict[str, Any]]:
        """The answer's output items in `output_index` order: finished items, and unfinished ones as far as they
        got (text and argument deltas applied), so a response never claims fewer items than were streamed."""
        out: list[dict[str, Any]] = []
        for index in sorted(self._done.keys() | self._added.keys()):
            item = self._done.get(index)
            out.append(item if item is not None else self._unfinished(self._added[index]))
        return out

    # -- internals --------------------------------------------------------------------------------------------

    def _run(self, events: list[SSEEvent]) -> bytes:
        out: list[bytes] = []
        for ev in events:
            data = ev.data
            if not data or data[0] != "{":
                if data.strip() != "[DONE]":
                    self.bad_events += 1
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                self.bad_events += 1
                continue
            if not isinstance(obj, dict):
                self.bad_events += 1
                continue
            rewritten = self._track(obj)
            name = ev.event or obj.get("type")
            head = b"event: " + name.encode() + b"\n" if isinstance(name, str) and name else b""
            if rewritten is not None:
                payload = orjson.dumps(rewritten)
            elif "\n" in data:
                payload = orjson.dumps(obj)  # multi-line data: one line is enough
            else:
                payload = data.encode()
            out.append(head + b"data: " + payload + b"\n\n")
        self.events_out += len(out)
        return b"".join(out)

    def _track(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Updates the state from one event; returns a replacement event when the event must change."""
        seq = obj.get("sequence_number")
        if isinstance(seq, int) and not isinstance(seq, bool) and seq > self._last_seq:
            self._last_seq = seq
        kind = obj.get("type")
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._adopt(obj.get("response"))
        elif kind == "response.output_item.added":
            item = obj.get("item")
            if isinstance(item, dict):
                self._added[self._index(obj, item)] = item
        elif kind == "response.output_item.done":
            item = obj.get("item")
            if isinstance(item, dict):
                self._done[self._index(obj, item)] = item
        elif kind == "response.output_text.delta":
            self._first_token()
            index = obj.get("content_index")
            key = (str(obj.get("item_id")), index if isinstance(index, int) else 0)
            self._text.setdefault(key, []).append(_str(obj.get("delta")))
        elif kind == "response.function_call_arguments.delta":
            self._first_token()
            self._args.setdefault(str(obj.get("item_id")), []).append(_str(obj.get("delta")))
        elif isinstance(kind, str) and kind.endswith(".delta"):
            self._first_token()
        elif kind in TERMINAL:
            return self._terminal(obj, kind)
        elif kind == "error":
            return self._error_event(obj)
        return None

    def _adopt(self, response: Any) -> None:
        if not isinstance(response, dict):
            return
        rid = response.get("id")
        if isinstance(rid, str) and rid and self.response_id is None:
            self.response_id = rid
        created = response.get("created_at")
        if isinstance(created, int | float) and not isinstance(created, bool) and self.created_at is None:
            self.created_at = int(created)
        model = response.get("model")
        if isinstance(model, str) and model:
            self.model = model

    def _index(self, event: dict[str, Any], item: dict[str, Any]) -> int:
        index = event.get("output_index")
        item_id = item.get("id")
        if not isinstance(index, int) or isinstance(index, bool):
            known = self._index_of.get(item_id) if isinstance(item_id, str) else None
            # Minimal streams (Codex's own fixtures) carry no output_index: items are then in arrival order.
            index = known if known is not None else max(self._done.keys() | self._added.keys(), default=-1) + 1
        if isinstance(item_id, str) and item_id:
            self._index_of[item_id] = index
        return index

    def _first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = self.clock()

    def _terminal(self, obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
        response = obj.get("response")
        response = dict(response) if isinstance(response, dict) else {}
        self._adopt(response)
        status = _TERMINAL_STATUS[kind]
        self.status = status
        usage = response.get("usage")
        self.usage = usage if isinstance(usage, dict) else None
        if status == "incomplete":
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, dict) else details
            self.incomplete_reason = str(reason) if reason is not None else None
        elif status == "failed":
            self.error = _failure(response.get("error"))
        changed = False
        output = response.get("output")
        if not (isinstance(output, list) and output):
            items = self.output_items()
            if items or not isinstance(output, list):
                response["output"] = items
                self.filled_output = changed = True
        for key, value in (
            ("id", self.response_id),
            ("object", "response"),
            ("created_at", self.created_at),
            ("model", self.model),
            ("status", status),
        ):
            if response.get(key) is None and value is not None:
                response[key] = value
                changed = True
        self.final = response
        if not changed:
            return None
        return {**obj, "response": response}

    def _error_event(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        nested = obj.get("error")
        source = nested if isinstance(nested, dict) else obj
        self.error = _failure(source)
        if isinstance(nested, dict) and isinstance(obj.get("message"), str):
            return None  # already carries both shapes
        flat = {k: self.error[k] for k in ("code", "message", "param")}
        return {**obj, **flat, "error": dict(nested) if isinstance(nested, dict) else dict(self.error)}

    def _end(self) -> bytes:
        if self._ended or self.done:
            self._ended = True
            return b""
        self._ended = True
        self.error = {"message": STREAM_INCOMPLETE, "type": "server_error", "code": "stream_incomplete", "param": None}
        event = {
            "type": "error",
            "sequence_number": self._last_seq + 1,
            "code": "stream_incomplete",
            "message": STREAM_INCOMPLETE,
            "param": None,
            "error": dict(self.error),
        }
        self.events_out += 1
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"

    def _unfinished(self, item: dict[str, Any]) -> dict[str, Any]:
        item_id = str(item.get("id"))
        kind = item.get("type")
        if kind == "message":
            parts = {index: "".join(d) for (iid, index), d in self._text.items() if iid == item_id}
            if parts:
                content = [
                    {"type": "output_text", "text": parts[i], "annotations": []} for i in sorted(parts) if i >= 0
                ]
                return {**item, "content": content}
        elif kind == "function_call" and item_id in self._args:
            return {**item, "arguments": _str(item.get("arguments")) + "".join(self._args[item_id])}
        return item


# -- buffered answers -----------------------------------------------------------------------------------------


def aggregate_response(body: bytes, *, model: str | None = None) -> tuple[int, dict[str, Any]]:
    """A whole upstream SSE body → `(200, response object)`, or `(status, OpenAI error envelope)` when the
    answer failed (`response.failed`, an `error` event, or a stream that ended without a terminal event)."""
    machine = ResponsesSSEPassThrough(keep_raw=False, model=model)
    machine(body)
    machine(b"")
    return _aggregate(machine)


def _aggregate(machine: ResponsesSSEPassThrough) -> tuple[int, dict[str, Any]]:
    if machine.error is not None or machine.final is None:
        err = machine.error or {"message": STREAM_INCOMPLETE, "type": "server_error", "code": "stream_incomplete"}
        status, etype = failure_status(err.get("code"), err.get("type"))
        failure = GatewayError(status, err["message"], type=etype, param=err.get("param"), code=err.get("code"))
        return failure.status, failure.payload()
    response = dict(machine.final)
    defaults: dict[str, Any] = {
        "id": machine.response_id or "resp_gateway",
        "object": "response",
        "created_at": machine.created_at if machine.created_at is not None else int(machine.clock()),
        "status": machine.status,
        "error": None,
        "incomplete_details": None,
        "model": machine.model or "unknown",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": None,
    }
    for key, value in defaults.items():
        if response.get(key) is None:
            response[key] = value
    response["output_text"] = output_text(response["output"])
    return 200, response


def output_text(output: Any) -> str:
    """What the SDK's `Response.output_text` computes: every `output_text` part of every message, joined."""
    texts: list[str] = []
    for item in output if isinstance(output, list) else ():
        if isinstance(item, dict) and item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return "".join(texts)


def buffered_answer(stream: bool, status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    """The client's answer for a buffered upstream answer (non-streamed client, upstream error, replay)."""
    if not (200 <= status < 300):
        return ClientAnswer.from_error(upstream_error(status, body, headers))
    machine = ResponsesSSEPassThrough(keep_raw=False)
    out = b"".join(machine(body) + machine(b""))
    if stream:
        answer = ClientAnswer(200, "text/event-stream", out)
        if machine.error is not None:
            answer.error = machine.error["message"]
    else:
        code, payload = _aggregate(machine)
        answer = ClientAnswer(code, "application/json", orjson.dumps(payload))
        if code != 200:
            answer.error = payload["error"]["message"]
    answer.finish_reason = machine.finish_reason
    answer.usage = machine.summary_usage
    answer.tool_calls = machine.tool_calls
    return answer


def _failure(err: Any) -> dict[str, Any]:
    err = err if isinstance(err, Mapping) else {}
    code = err.get("code") if isinstance(err.get("code"), str) else None
    message = err.get("message") if isinstance(err.get("message"), str) and err.get("message") else None
    etype = err.get("type") if isinstance(err.get("type"), str) else None
    _, mapped = failure_status(code, etype)
    return {
        "message": message or "The upstream model failed to produce an answer.",
        "type": mapped,
        "code": code or "upstream_error",
        "param": err.get("param") if isinstance(err.get("param"), str) else None,
    }


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
