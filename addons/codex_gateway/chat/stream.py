"""Codex Responses events → Chat Completions chunks: the one state machine behind every answer.

Streamed answers are encoded chunk by chunk; non-streamed and replayed answers fold the very same chunks into
one `chat.completion` (`completion_from_chunks`), so the three paths cannot diverge.

Tool calls are serialized (one open at a time, dense indexes from 0): see tool_calls.py for why.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ..answer import Outcome
from ..codex_events import SKIPPED_EVENTS
from ..codex_events import chat_usage
from ..codex_events import incomplete_finish_reason
from ..codex_events import incomplete_reason
from ..codex_events import stream_incomplete
from ..codex_events import unix_time
from ..codex_events import upstream_failure
from .completion import completion_from_chunks
from .stop_sequences import StopMatcher
from .tool_calls import ToolCallSerializer

__all__ = ["ChatStream", "SKIPPED_EVENTS", "TEXT_DELTA", "completion_from_chunks"]

Chunk = dict[str, Any]

TEXT_DELTA = "response.output_text.delta"


class ChatStream:
    """Feed parsed upstream events; get chat chunk dicts back. `error` is set when the answer failed."""

    def __init__(self, *, model: str, include_usage: bool = False, stop: tuple[str, ...] = ()) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-" + os.urandom(12).hex()  # replaced by the upstream response id when one comes
        self.created = int(time.time())
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.response_id: str | None = None
        self.ignored_items: list[str] = []
        self._stop = StopMatcher(stop)
        self._started = False
        self._terminal = False
        self._tools = ToolCallSerializer()
        self._text_items: set[str] = set()
        self._last_text_key: tuple[Any, Any] | None = None
        self._fed: dict[str, list[str]] = {}  # text deltas per message item, to check them against the item
        self._fed_current: list[str] = []
        self._lost_text = False
        self._reasoning_parts: set[tuple[str, int]] = set()
        self._reasoning_items: set[str] = set()
        self._has_reasoning = False

    @property
    def done(self) -> bool:
        return self._terminal

    @property
    def skipped_events(self) -> frozenset[str]:
        """Event names a translator may drop unparsed. Once the answer has started, `response.in_progress` is one of
        them too: it only repeats the response (instructions and tools included, often many kilobytes)."""
        return _SKIPPED_ONCE_STARTED if self._started else SKIPPED_EVENTS

    @property
    def tool_call_names(self) -> list[str]:
        """Names of the tool calls the client was sent, in chat index order."""
        return self._tools.names

    # -- input ------------------------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[Chunk]:
        kind = event.get("type")
        # Unknown or informational events (codex.rate_limits, response.metadata) and a `type` that is no string
        # (an upstream fault) carry nothing for the client.
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None or self._terminal:
            return []
        if not self._started:
            # The role chunk waits for a known event, so it carries the id and time of response.created.
            if kind in _LIFECYCLE:
                self._adopt_response(event.get("response"))
            self._started = True
            out = [self._chunk({"role": "assistant", "content": ""})]
        else:
            out = []
        handler(self, event, out)
        return out

    def finish(self) -> list[Chunk]:
        """The upstream body ended. Without a terminal event the answer is incomplete: report an error."""
        return self.fail(stream_incomplete())

    def fail(self, error: dict[str, Any]) -> list[Chunk]:
        """End the answer with `error` (an OpenAI error object) unless it already ended: the chunks to send."""
        if self._terminal:
            return []
        out: list[Chunk] = []
        if not self._started:
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        self._fail(error, out)
        return out

    def outcome(self, first_token_at: float | None = None) -> Outcome:
        """How the answer ended, for the flow record."""
        error = self.error["message"] if self.error else None
        return Outcome(self.finish_reason, self.usage, list(self.tool_call_names), first_token_at, error, self.model)

    # -- event handlers ---------------------------------------------------------------------------------

    def _adopt_response(self, response: Any) -> None:
        if not isinstance(response, dict) or self._started:
            return  # once a chunk went out, its id, created and model are fixed for the whole answer
        rid = response.get("id")
        if isinstance(rid, str) and rid and self.response_id is None:
            self.response_id = rid
            self.id = "chatcmpl-" + (rid[5:] if rid.startswith("resp_") else rid)
        created = unix_time(response.get("created_at"))
        if created is not None:
            self.created = created
        model = response.get("model")
        if isinstance(model, str) and model:
            self.model = model

    def _on_item_added(self, event: dict[str, Any], out: list[Chunk]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            return
        kind = item.get("type")
        if kind == "function_call":
            self._register_call(item, out)
        elif kind not in ("message", "reasoning"):
            self.ignored_items.append(str(kind))

    def text_delta(self, event: dict[str, Any]) -> str | None:
        """What `feed` would send for a text delta, as text: the content it adds ("" for none), the state updated
        exactly as `feed` updates it. None, with nothing changed, when `feed` must take the event: it is no text
        delta, or the answer has not started (the role chunk goes first) or is over. For `TextFrame` (chat/
        translator.py), which writes the content chunk without building it."""
        if event.get("type") != TEXT_DELTA or not self._started or self._terminal:
            return None
        return self._text(event)

    def _on_text_delta(self, event: dict[str, Any], out: list[Chunk]) -> None:
        text = self._text(event)
        if text:
            out.append(self._chunk({"content": text}))

    def _text(self, event: dict[str, Any]) -> str:
        key = (event.get("output_index"), event.get("item_id"))
        if key != self._last_text_key:  # a long answer is thousands of deltas of one item: look it up once
            self._last_text_key = key
            keys = _delta_keys(event)
            self._text_items.update(keys)
            known = next((self._fed[k] for k in keys if k in self._fed), None)
            self._fed_current = known if known is not None else []
            for k in keys:  # by output_index and by id: a finished item may carry only one of them
                self._fed[k] = self._fed_current
        delta = _str(event.get("delta"))
        self._fed_current.append(delta)
        return self._stop.feed(delta) if self._stop.enabled else delta

    def _on_refusal_delta(self, event: dict[str, Any], out: list[Chunk]) -> None:
        self._text_items.update(_delta_keys(event))
        delta = _str(event.get("delta"))
        if delta and not self._stop.stopped:
            out.append(self._chunk({"refusal": delta}))

    def _on_reasoning_delta(self, event: dict[str, Any], out: list[Chunk]) -> None:
        item_id = str(event.get("item_id"))
        part = event.get("summary_index", event.get("content_index", 0))
        key = (item_id, part if isinstance(part, int) else 0)
        self._reasoning_items.update(_delta_keys(event))
        delta = _str(event.get("delta"))
        if not delta:
            return
        if key not in self._reasoning_parts:
            self._reasoning_parts.add(key)
            if self._has_reasoning:
                delta = "\n\n" + delta  # separate summary parts, as ChatGPT shows them
        self._has_reasoning = True
        out.append(self._chunk({"reasoning_content": delta}))

    def _on_args_delta(self, event: dict[str, Any], out: list[Chunk]) -> None:
        self._tool_chunks(self._tools.arguments_delta(str(event.get("item_id")), _str(event.get("delta"))), out)

    def _on_args_done(self, event: dict[str, Any], out: list[Chunk]) -> None:
        self._tools.arguments_done(str(event.get("item_id")), event.get("arguments"))

    def _on_item_done(self, event: dict[str, Any], out: list[Chunk]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            return
        kind = item.get("type")
        item_id = _item_key(item)
        # Deltas name their item by id and output_index; a finished item may lack the id (minimal streams).
        seen = {f"#{event['output_index']}"} if isinstance(event.get("output_index"), int) else set()
        if item_id:
            seen.add(item_id)
        if kind == "function_call":
            if not self._tools.knows(item_id):
                self._register_call(item, out)
            self._tool_chunks(self._tools.item_done(item_id, item.get("arguments")), out)
        elif kind == "message" and seen & self._text_items:
            self._reconcile_text(item, seen, out)
        elif kind == "message":
            # Text that arrived only in the finished item (no deltas) still reaches the client.
            for part in _list(item.get("content")):
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text":
                    self._emit_text(_str(part.get("text")), out)
                elif part.get("type") == "refusal" and part.get("refusal") and not self._stop.stopped:
                    out.append(self._chunk({"refusal": _str(part.get("refusal"))}))
        elif kind == "reasoning" and not seen & self._reasoning_items:
            for index, part in enumerate(_list(item.get("summary"))):
                if isinstance(part, dict) and part.get("text"):
                    self._on_reasoning_delta({"item_id": item_id, "summary_index": index, "delta": part["text"]}, out)

    def _on_completed(self, event: dict[str, Any], out: list[Chunk]) -> None:
        response = event.get("response")
        response = response if isinstance(response, dict) else {}
        self._adopt_response(response)
        reason = None
        if event.get("type") == "response.incomplete" or response.get("status") == "incomplete":
            reason = incomplete_finish_reason(incomplete_reason(response))
        self.usage = chat_usage(response.get("usage"))
        self._finish(reason, out)

    def _on_failed(self, event: dict[str, Any], out: list[Chunk]) -> None:
        self._fail(upstream_failure(event), out)

    # -- output helpers -----------------------------------------------------------------------------------

    def _emit_text(self, text: str, out: list[Chunk]) -> None:
        safe = self._stop.feed(text) if self._stop.enabled else text
        if safe:
            out.append(self._chunk({"content": safe}))

    def _register_call(self, item: dict[str, Any], out: list[Chunk]) -> None:
        if not self._stop.stopped:  # after a stop sequence the answer is over: no more calls
            self._tool_chunks(self._tools.added(_item_key(item), item), out)

    def _tool_chunks(self, deltas: list[dict[str, Any]], out: list[Chunk]) -> None:
        for delta in deltas:
            out.append(self._chunk({"tool_calls": [delta]}))

    def _reconcile_text(self, item: dict[str, Any], keys: set[str], out: list[Chunk]) -> None:
        """The finished item holds the whole text. Deltas lost on the way (an unparseable event) show as a
        difference: a missing tail is sent now; anything else cannot be repaired and fails the answer."""
        final = "".join(_str(p.get("text")) for p in _list(item.get("content")) if isinstance(p, dict))
        fed = "".join(next((self._fed[k] for k in keys if k in self._fed), ()))
        if not final or final == fed:
            return
        if final.startswith(fed):
            self._emit_text(final[len(fed) :], out)
        else:
            self._lost_text = True

    def _finish(self, reason: str | None, out: list[Chunk]) -> None:
        if self._lost_text:
            self._fail(
                {
                    "message": "Part of the upstream answer was lost in transit (malformed events); it is incomplete.",
                    "type": "server_error",
                    "param": None,
                    "code": "stream_corrupted",
                },
                out,
            )
            return
        rest = self._stop.flush()
        if rest:
            out.append(self._chunk({"content": rest}))
        if self._stop.stopped:
            reason = "stop"
        else:
            self._tool_chunks(self._tools.finish(), out)
            if reason is None:
                reason = "tool_calls" if self._tools else "stop"
        self.finish_reason = reason
        self._terminal = True
        out.append(self._chunk({}, finish_reason=reason))
        if self.include_usage:
            usage_chunk = self._chunk({})
            usage_chunk["choices"] = []  # the usage chunk has no choice at all
            # Clients read usage.total_tokens unconditionally: a missing upstream usage reports zeros, not null.
            usage_chunk["usage"] = self.usage or chat_usage({})
            out.append(usage_chunk)

    def _fail(self, error: dict[str, Any], out: list[Chunk]) -> None:
        self.error = error
        self._terminal = True
        out.append({"error": error})

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> Chunk:
        chunk: Chunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk


def _delta_keys(event: dict[str, Any]) -> set[str]:
    keys = {f"#{event['output_index']}"} if isinstance(event.get("output_index"), int) else set()
    if event.get("item_id"):
        keys.add(str(event["item_id"]))
    return keys


def _item_key(item: dict[str, Any]) -> str:
    """Items are keyed by their id; minimal streams may only carry a call_id."""
    return str(item.get("id") or item.get("call_id") or "")


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _on_lifecycle(self: ChatStream, event: dict[str, Any], out: list[Chunk]) -> None:
    """`response.created` / `response.in_progress`: adopted by `feed` before the role chunk, nothing else."""


_LIFECYCLE = ("response.created", "response.in_progress")
_HANDLERS = {
    "response.created": _on_lifecycle,
    "response.in_progress": _on_lifecycle,
    "response.output_item.added": ChatStream._on_item_added,
    TEXT_DELTA: ChatStream._on_text_delta,
    "response.refusal.delta": ChatStream._on_refusal_delta,
    "response.reasoning_summary_text.delta": ChatStream._on_reasoning_delta,
    "response.reasoning_text.delta": ChatStream._on_reasoning_delta,
    "response.function_call_arguments.delta": ChatStream._on_args_delta,
    "response.function_call_arguments.done": ChatStream._on_args_done,
    "response.output_item.done": ChatStream._on_item_done,
    "response.completed": ChatStream._on_completed,
    "response.incomplete": ChatStream._on_completed,
    "response.failed": ChatStream._on_failed,
    "error": ChatStream._on_failed,
}

_SKIPPED_ONCE_STARTED = SKIPPED_EVENTS | {"response.in_progress"}
