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
whose data is not a JSON object (`[DONE]`, junk) are dropped, as Codex itself skips them. Should the gateway
itself fail on an event, the stream ends at once with an `error` event of the same shape (see `GuardedStream`).

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
from ..codex_events import STREAM_INCOMPLETE
from ..codex_events import TERMINAL_STATUS
from ..codex_events import chat_usage
from ..codex_events import incomplete_finish_reason
from ..codex_events import incomplete_reason
from ..codex_events import stream_incomplete
from ..codex_events import unix_time
from ..codex_events import upstream_failure
from ..errors import GatewayError
from ..errors import failure_status
from ..errors import upstream_error
from ..sse import GuardedStream
from ..sse import SSEDecoder
from ..sse import SSEEvent
from ..sse import frame
from ..sse import translation_failure

__all__ = [
    "ResponsesSSEPassThrough",
    "aggregate_response",
    "buffered_answer",
    "failure_status",
    "output_text",
    "STREAM_INCOMPLETE",
]

_LAST_SEQ = 2**53  # numbers at or above it are ignored: one past them may not be writable (see unix_time)


class ResponsesSSEPassThrough(GuardedStream):
    """Stream callable (mitmproxy `response.stream`): called per network read, finally with b"" (see
    `GuardedStream` for what every call promises)."""

    protocol = "responses"

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
        self._ended = False  # the end of the upstream body was handled
        self._closed = False  # a terminal or error event was framed: the client's answer is over
        self._framed: list[bytes] = []  # events of the current read, until they are written

    # -- stream callable --------------------------------------------------------------------------------------

    def _broken(self, exc: Exception) -> bytes:
        """The events framed before the fault, then an `error` event, unless the client's answer was already over
        (its terminal or error event framed)."""
        if not self._closed:
            self.status = "failed"
            self.error = translation_failure(exc)
            self._error_frame()
        return self._written()

    def _written(self) -> bytes:
        framed, self._framed = self._framed, []
        self.events_out += len(framed)
        return b"".join(framed)

    # -- outcome ----------------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """A terminal event (or an upstream `error` event) arrived."""
        return self.status is not None or self.error is not None

    @property
    def finish_reason(self) -> str | None:
        """The chat-style outcome for summaries: stop, tool_calls, length, content_filter; None if it failed."""
        if self.status == "incomplete":
            return incomplete_finish_reason(self.incomplete_reason)
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
        return Outcome(self.finish_reason, self.summary_usage, self.tool_calls, self.first_token_at, failed, self.model)

    def output_items(self) -> list[dict[str, Any]]:
        """The answer's output items in `output_index` order: finished items, and unfinished ones as far as they
        got (text and argument deltas applied), so a response never claims fewer items than were streamed."""
        out: list[dict[str, Any]] = []
        for index in sorted(self._done.keys() | self._added.keys()):
            item = self._done.get(index)
            out.append(item if item is not None else self._unfinished(self._added[index]))
        return out

    # -- internals --------------------------------------------------------------------------------------------

    def _take(self, events: list[SSEEvent]) -> None:
        """Tracks and frames the events (into `_framed`)."""
        out = self._framed
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
            if rewritten is not None:
                payload = orjson.dumps(rewritten)
            elif "\n" in data:
                payload = orjson.dumps(obj)  # multi-line data: one line is enough
            else:
                payload = data.encode()
            out.append(frame(payload, name if isinstance(name, str) else None))
            self._closed = self.done

    def _track(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Updates the state from one event; returns a replacement event when the event must change."""
        seq = obj.get("sequence_number")
        if isinstance(seq, int) and not isinstance(seq, bool) and self._last_seq < seq < _LAST_SEQ:
            self._last_seq = seq
        kind = obj.get("type")
        if not isinstance(kind, str):
            return None  # passed on as it came: nothing the gateway tracks
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
        elif kind.endswith(".delta"):
            self._first_token()
        elif kind in TERMINAL_STATUS:
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
        if self.created_at is None:
            self.created_at = unix_time(response.get("created_at"))
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
        status = TERMINAL_STATUS[kind]
        self.status = status
        usage = response.get("usage")
        self.usage = usage if isinstance(usage, dict) else None
        if status == "incomplete":
            reason = incomplete_reason(response)
            self.incomplete_reason = str(reason) if reason is not None else None
        elif status == "failed":
            self.error = upstream_failure(obj)
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
        self.error = upstream_failure(obj)
        if isinstance(nested, dict) and isinstance(obj.get("message"), str):
            return None  # already carries both shapes
        return {**obj, **_flat(self.error), "error": dict(nested) if isinstance(nested, dict) else dict(self.error)}

    def _end(self) -> None:
        ended, self._ended = self._ended, True
        if not (ended or self.done):
            self.error = stream_incomplete()
            self._error_frame()

    def _error_frame(self) -> None:
        """Frames the `error` event for `self.error`: the documented flat fields and the nested object the real API
        sends, numbered one past the last upstream event."""
        assert self.error is not None
        error = self.error
        event = {"type": "error", "sequence_number": self._last_seq + 1, **_flat(error), "error": dict(error)}
        self._framed.append(frame(orjson.dumps(event), "error"))
        self._closed = True

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
        err = machine.error or stream_incomplete()
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
    for item in _list(output):
        if isinstance(item, dict) and item.get("type") == "message":
            for part in _list(item.get("content")):
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
    answer.model = machine.model
    return answer


def _flat(error: Mapping[str, Any]) -> dict[str, Any]:
    """The top-level fields of a documented `ResponseErrorEvent`."""
    return {"code": error["code"], "message": error["message"], "param": error["param"]}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
