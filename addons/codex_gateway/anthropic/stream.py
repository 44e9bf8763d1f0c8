"""Codex Responses events → Anthropic Messages stream events: the one state machine behind every answer.

Streamed answers are written event by event; non-streamed and replayed answers fold the very same events into one
`message` (`message_from_events`, which accumulates exactly as the `anthropic` SDK's stream helper does), so the
paths cannot diverge.

Each upstream output item becomes one content block: a message → `text`, a reasoning item → `thinking` (its
summary as the text, its encrypted reasoning as the `signature`), a function call → `tool_use`, a web search →
`server_tool_use` + `web_search_tool_result`. Blocks are written one at a time, in order: content of an item that
arrives while another item's block is open waits until that block is closed (upstream does not promise
non-interleaved items; Anthropic clients expect a block to be finished once the next starts).

A failure ends the stream with an `error` event and never with `message_stop`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from ..answer import Outcome
from ..chat.stop_sequences import StopMatcher
from ..codex_events import STREAM_INCOMPLETE
from ..codex_events import chat_usage
from ..codex_events import incomplete_reason
from ..codex_events import stream_incomplete
from ..codex_events import upstream_failure
from .request import SIGNATURE_PREFIX

__all__ = [
    "MessageStream",
    "Event",
    "message_from_events",
    "failure_type",
    "anthropic_usage",
    "error_event",
    "STREAM_INCOMPLETE",
]

Event = tuple[str, dict[str, Any]]  # (SSE event name, data)

_INCOMPLETE = {"max_output_tokens": "max_tokens", "content_filter": "refusal"}


def failure_type(code: Any) -> tuple[int, str]:
    """HTTP status and Anthropic error type for an upstream failure code (protocol reference §2.4)."""
    if code in ("rate_limit_exceeded", "usage_limit_reached", "insufficient_quota"):
        return 429, "rate_limit_error"
    if code in ("server_is_overloaded", "slow_down"):
        return 529, "overloaded_error"
    if code in ("context_length_exceeded", "invalid_prompt", "cyber_policy", "invalid_request_error"):
        return 400, "invalid_request_error"
    return 500, "api_error"


@dataclass
class _Item:
    """One upstream output item and the content block it becomes."""

    key: str
    kind: str  # text | thinking | tool_use | web_search
    index: int | None = None  # the block's index once its content_block_start went out
    pending: list[str] = field(default_factory=list)  # deltas held while another block is open
    raw: list[str] = field(default_factory=list)  # upstream text deltas as received (checked against the item)
    sent: list[str] = field(default_factory=list)  # tool arguments written so far
    final: str | None = None  # the complete text or arguments of the finished item
    done: bool = False
    call_id: str = ""
    name: str = ""
    signature: str = ""
    parts: set[int] = field(default_factory=set)  # reasoning summary parts seen (separated by a blank line)
    extra: dict[str, Any] = field(default_factory=dict)  # a finished web search item


class MessageStream:
    """Feed parsed upstream events; get `(event name, data)` pairs back. `error` is set when the answer failed."""

    def __init__(
        self,
        *,
        model: str,
        stop: tuple[str, ...] = (),
        thinking: str = "off",
        tool_names: dict[str, str] | None = None,
    ) -> None:
        self.model = model
        self.thinking = thinking
        self.id = "msg_" + os.urandom(12).hex()  # replaced by the upstream response id when one comes
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.usage: dict[str, Any] | None = None  # Anthropic's shape
        self.summary_usage: dict[str, Any] | None = None  # the chat shape flow summaries use
        self.error: dict[str, Any] | None = None  # {"type", "message", "code"}
        self.tool_uses: list[str] = []
        self.ignored_items: list[str] = []
        self._tool_names = tool_names or {}
        self._stop = StopMatcher(stop)
        self._started = False
        self._terminal = False
        self._items: dict[str, _Item] = {}
        self._order: list[_Item] = []
        self._active: _Item | None = None
        self._blocks = 0
        self._refused = False
        self._lost_text = False

    @property
    def done(self) -> bool:
        return self._terminal

    # -- input ------------------------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> list[Event]:
        if self._terminal:
            return []
        kind = event.get("type")
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        out: list[Event] = []
        if kind in ("response.created", "response.in_progress"):
            self._adopt(event.get("response"))
        elif handler is None:
            return out  # unknown or informational (codex.rate_limits, response.metadata)
        if not self._started and handler not in (MessageStream._on_failed,):
            self._start(out)
        if handler is not None:
            handler(self, event, out)
        return out

    def finish(self) -> list[Event]:
        """The upstream body ended. Without a terminal event the answer is incomplete: an `error` event."""
        return self.fail(stream_incomplete())

    def fail(self, error: dict[str, Any]) -> list[Event]:
        """Ends the answer with `error` (an OpenAI error object, as `codex_events` makes them) unless it already
        ended: the `error` event to send (never a `message_stop` after it)."""
        if self._terminal:
            return []
        out: list[Event] = []
        code = error.get("code")
        self._fail({"type": failure_type(code)[1], "message": error["message"], "code": code}, out)
        return out

    def outcome(self, first_token_at: float | None = None) -> Outcome:
        """How the answer ended, for the flow record."""
        error = self.error["message"] if self.error else None
        return Outcome(self.stop_reason, self.summary_usage, list(self.tool_uses), first_token_at, error)

    # -- event handlers ---------------------------------------------------------------------------------

    def _adopt(self, response: Any) -> None:
        if isinstance(response, dict) and not self._started and isinstance(response.get("id"), str):
            rid = response["id"]
            self.id = "msg_" + (rid[5:] if rid.startswith("resp_") else rid)

    def _start(self, out: list[Event]) -> None:
        self._started = True
        usage = anthropic_usage(None)  # known only at the end: message_delta carries it
        message: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        out.append(("message_start", {"type": "message_start", "message": message}))
        out.append(("ping", {"type": "ping"}))

    def _on_item_added(self, event: dict[str, Any], out: list[Event]) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or self._stop.stopped:
            return
        kind = item.get("type")
        if kind == "function_call":
            self._call_item(_key(event, item), item, out)
        elif kind == "reasoning" and self.thinking != "off":
            self._item(_key(event, item), "thinking")
        elif kind == "message":
            self._item(_key(event, item), "text")
        elif kind not in ("reasoning", "web_search_call"):
            self.ignored_items.append(str(kind))

    def _on_text_delta(self, event: dict[str, Any], out: list[Event]) -> None:
        if self._stop.stopped:
            return
        item = self._item(_key(event), "text")
        delta = _str(event.get("delta"))
        item.raw.append(delta)
        if event.get("type") == "response.refusal.delta":
            self._refused = True
        self._text(item, delta, out)

    def _on_reasoning_delta(self, event: dict[str, Any], out: list[Event]) -> None:
        if self.thinking == "off" or self._stop.stopped:
            return
        item = self._item(_key(event), "thinking")
        delta = _str(event.get("delta"))
        part = event.get("summary_index", event.get("content_index", 0))
        if isinstance(part, int) and part not in item.parts:
            if item.parts and delta:
                delta = "\n\n" + delta  # one thinking block per reasoning item; its summary parts apart
            item.parts.add(part)
        item.raw.append(delta)
        if self.thinking == "omitted":
            self._content(item, "", out)  # the block opens; its text is withheld as the client asked
        elif delta:
            self._content(item, delta, out)

    def _on_args_delta(self, event: dict[str, Any], out: list[Event]) -> None:
        item = self._items.get(_key(event) or "")
        delta = _str(event.get("delta"))
        if item is not None and item.kind == "tool_use" and delta and not self._stop.stopped:
            self._content(item, delta, out)

    def _on_args_done(self, event: dict[str, Any], out: list[Event]) -> None:
        item = self._items.get(_key(event) or "")
        if item is not None and isinstance(event.get("arguments"), str):
            item.final = event["arguments"]

    def _on_item_done(self, event: dict[str, Any], out: list[Event]) -> None:
        item = event.get("item")
        if not isinstance(item, dict) or self._stop.stopped:
            return
        kind, key = item.get("type"), _key(event, item)
        if kind == "function_call":
            call = self._items.get(key or "") or self._call_item(key, item, out)
            if isinstance(item.get("arguments"), str):
                call.final = item["arguments"]
            self._done(call, out)
        elif kind == "message":
            self._message_done(self._item(key, "text"), item, out)
        elif kind == "reasoning" and self.thinking != "off":
            self._reasoning_done(self._item(key, "thinking"), item, out)
        elif kind == "web_search_call":
            search = self._item(key, "web_search")
            search.extra = item
            self._done(search, out)

    def _message_done(self, text: _Item, item: dict[str, Any], out: list[Event]) -> None:
        """The finished item holds the whole text. Deltas lost on the way show as a difference: a missing tail
        is sent now; anything else cannot be repaired and fails the answer at its end."""
        parts = [p for p in _list(item.get("content")) if isinstance(p, dict)]
        self._refused = self._refused or any(p.get("type") == "refusal" for p in parts)
        final = "".join(_str(p.get("text")) or _str(p.get("refusal")) for p in parts)
        fed = "".join(text.raw)
        if final.startswith(fed):
            self._text(text, final[len(fed) :], out)
        elif final:
            self._lost_text = True
        rest = self._stop.flush() if self._stop.enabled else ""
        if rest:  # held back as a possible start of a stop sequence: plain text after all
            self._content(text, rest, out)
        self._done(text, out)

    def _reasoning_done(self, thinking: _Item, item: dict[str, Any], out: list[Event]) -> None:
        encrypted = item.get("encrypted_content")
        thinking.signature = SIGNATURE_PREFIX + encrypted if isinstance(encrypted, str) and encrypted else ""
        if not thinking.raw:  # no summary deltas: the finished item's summary, if it has one
            summary = [_str(p.get("text")) for p in _list(item.get("summary")) if isinstance(p, dict)]
            text = "\n\n".join(t for t in summary if t)
            thinking.raw.append(text)
            if text and self.thinking == "summarized":
                self._content(thinking, text, out)
        if thinking.index is None and not thinking.pending and not thinking.signature:
            thinking.done = True  # nothing to show: no block at all
            return
        self._done(thinking, out)

    def _on_completed(self, event: dict[str, Any], out: list[Event]) -> None:
        response = event.get("response")
        response = response if isinstance(response, dict) else {}
        if self._lost_text:
            message = "Part of the upstream answer was lost in transit (malformed events); it is incomplete."
            self._fail({"type": "api_error", "message": message, "code": "stream_corrupted"}, out)
            return
        self._drain(out)
        why = incomplete_reason(response)
        if self._stop.stopped:
            self.stop_reason, self.stop_sequence = "stop_sequence", self._stop.matched
        elif event.get("type") == "response.incomplete" or response.get("status") == "incomplete":
            self.stop_reason = _INCOMPLETE.get(str(why), "max_tokens")
        else:
            self.stop_reason = "tool_use" if self.tool_uses else "refusal" if self._refused else "end_turn"
        self.usage = anthropic_usage(response.get("usage"))
        self.summary_usage = chat_usage(response.get("usage"))
        self._terminal = True
        delta = {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}
        out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": self.usage}))
        out.append(("message_stop", {"type": "message_stop"}))

    def _on_failed(self, event: dict[str, Any], out: list[Event]) -> None:
        out += self.fail(upstream_failure(event))

    # -- blocks -------------------------------------------------------------------------------------------

    def _item(self, key: str | None, kind: str) -> _Item:
        """The item for `key`; events that name no item (minimal streams) share one per kind until it is done."""
        if key is None:
            key = "#?" + kind
            while key in self._items and self._items[key].done:
                key += "'"
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = _Item(key=key, kind=kind)
            self._order.append(item)
        return item

    def _call_item(self, key: str | None, raw: dict[str, Any], out: list[Event]) -> _Item:
        call = self._item(key, "tool_use")
        call.call_id = _str(raw.get("call_id")) or _str(raw.get("id")) or "toolu_" + os.urandom(12).hex()
        name = _str(raw.get("name"))
        call.name = self._tool_names.get(name, name)
        first = raw.get("arguments")
        if isinstance(first, str) and first:
            call.pending.append(first)
        if self._active is None and call.index is None:
            self._open(call, out)
        return call

    def _text(self, item: _Item, text: str, out: list[Event]) -> None:
        safe = self._stop.feed(text) if self._stop.enabled else text
        if safe:
            self._content(item, safe, out)
        if self._stop.stopped:  # the answer ends here: its block closes, nothing else follows
            item.done = True
            if self._active is item:
                self._close(item, out)

    def _content(self, item: _Item, delta: str, out: list[Event]) -> None:
        if item.index is None and self._active is None:
            self._open(item, out)
        if self._active is item:
            if delta:
                self._delta(item, delta, out)
        elif delta:
            item.pending.append(delta)
        elif item.index is None and "" not in item.pending:
            item.pending.append("")  # an omitted thinking text still opens its block in turn

    def _done(self, item: _Item, out: list[Event]) -> None:
        item.done = True
        if self._active is item:
            self._close(item, out)
            self._next(out)
        elif self._active is None and item.index is None:
            self._open(item, out)
            self._next(out)

    def _next(self, out: list[Event]) -> None:
        """Opens the next item in order that has something waiting (finished ones close again at once)."""
        for item in self._order:
            if self._active is not None:
                return
            if item.index is None and (item.pending or item.done) and not self._empty(item):
                self._open(item, out)

    def _drain(self, out: list[Event]) -> None:
        """The answer ended: every open or waiting block goes out, in order."""
        while True:
            if self._active is not None:
                self._close(self._active, out)
            if self._stop.stopped:
                return  # the text ended the answer: what had not started yet never happened
            waiting = [i for i in self._order if i.index is None and not self._empty(i)]
            if not waiting:
                return
            self._open(waiting[0], out)

    def _empty(self, item: _Item) -> bool:
        if item.kind == "tool_use":
            return False
        if item.kind == "thinking":
            return not (item.pending or item.signature)
        if item.kind == "web_search":
            return not item.done
        return not any(item.pending)

    def _open(self, item: _Item, out: list[Event]) -> None:
        item.index = self._blocks
        self._blocks += 1
        self._active = item
        if item.kind == "web_search":
            self._web_search(item, out)
            return
        start = {"type": "content_block_start", "index": item.index, "content_block": _block(item)}
        out.append(("content_block_start", start))
        if item.kind == "tool_use":
            self.tool_uses.append(item.name)
        pending, item.pending = item.pending, []
        for delta in pending:
            if delta:
                self._delta(item, delta, out)
        if item.done:
            self._close(item, out)

    def _delta(self, item: _Item, text: str, out: list[Event]) -> None:
        if item.kind == "tool_use":
            item.sent.append(text)
            delta: dict[str, Any] = {"type": "input_json_delta", "partial_json": text}
        elif item.kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": text}
        else:
            delta = {"type": "text_delta", "text": text}
        out.append(("content_block_delta", {"type": "content_block_delta", "index": item.index, "delta": delta}))

    def _close(self, item: _Item, out: list[Event]) -> None:
        if item.kind == "tool_use" and item.final is not None:
            sent = "".join(item.sent)
            if item.final != sent and item.final.startswith(sent):  # arguments only (or partly) in `.done`
                self._delta(item, item.final[len(sent) :], out)
        elif item.kind == "thinking" and item.signature:
            signature = {"type": "signature_delta", "signature": item.signature}
            delta = {"type": "content_block_delta", "index": item.index, "delta": signature}
            out.append(("content_block_delta", delta))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": item.index}))
        self._active = None

    def _web_search(self, item: _Item, out: list[Event]) -> None:
        """A hosted web search: the call and its result as two blocks (their content is known only when done)."""
        action: dict[str, Any] = item.extra["action"] if isinstance(item.extra.get("action"), dict) else {}
        use_id = "srvtoolu_" + (_str(item.extra.get("id")) or os.urandom(12).hex())
        query = {"query": _str(action.get("query"))}
        use = {"type": "server_tool_use", "id": use_id, "name": "web_search", "input": {}}
        out.append(("content_block_start", {"type": "content_block_start", "index": item.index, "content_block": use}))
        partial = {"type": "input_json_delta", "partial_json": _json(query)}
        out.append(("content_block_delta", {"type": "content_block_delta", "index": item.index, "delta": partial}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": item.index}))
        results = [
            _search_result(src) for src in _list(action.get("sources")) if isinstance(src, dict) and src.get("url")
        ]
        index = self._blocks
        self._blocks += 1
        result = {"type": "web_search_tool_result", "tool_use_id": use_id, "content": results}
        out.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": result}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
        self._active = None

    def _fail(self, error: dict[str, Any], out: list[Event]) -> None:
        self.error = error
        self._terminal = True
        out.append(error_event(error))


def error_event(error: dict[str, Any]) -> Event:
    """Anthropic's `error` event for an answer's `error` ({"type", "message", "code"})."""
    return "error", {"type": "error", "error": {"type": error["type"], "message": error["message"]}}


def anthropic_usage(usage: Any) -> dict[str, Any]:
    """Responses usage → Anthropic's: `input_tokens` without the cached part, which is `cache_read_input_tokens`."""
    usage = usage if isinstance(usage, dict) else {}
    details = usage.get("input_tokens_details")
    details = details if isinstance(details, dict) else {}
    total, cached = _int(usage.get("input_tokens")), _int(details.get("cached_tokens"))
    written = _int(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(0, total - cached - written),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": _int(usage.get("output_tokens")),
    }


def message_from_events(events: list[Event]) -> dict[str, Any]:
    """Folds the events of a successful answer into one `message`, as the `anthropic` SDK's accumulator does."""
    message: dict[str, Any] = {}
    partial: dict[int, list[str]] = {}
    for name, data in events:
        if name == "message_start":
            message = dict(data["message"], content=[])
        elif name == "content_block_start":
            message["content"].append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = message["content"][data["index"]], data["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
            elif delta["type"] == "input_json_delta":
                partial.setdefault(data["index"], []).append(delta["partial_json"])
        elif name == "content_block_stop" and data["index"] in partial:
            message["content"][data["index"]]["input"] = _parsed_input("".join(partial.pop(data["index"])))
        elif name == "message_delta":
            message.update(data["delta"])
            message["usage"] = {**message["usage"], **data["usage"]}
    return message


def _parsed_input(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {}  # unparseable arguments: an empty input, as a client assembling the stream would be left with


def _search_result(source: dict[str, Any]) -> dict[str, Any]:
    url = _str(source.get("url"))
    title = _str(source.get("title")) or url
    return {"type": "web_search_result", "url": url, "title": title, "encrypted_content": "", "page_age": None}


def _block(item: _Item) -> dict[str, Any]:
    if item.kind == "tool_use":
        return {"type": "tool_use", "id": item.call_id, "name": item.name, "input": {}}
    if item.kind == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {"type": "text", "text": ""}


def _key(event: dict[str, Any], item: dict[str, Any] | None = None) -> str | None:
    """Items are keyed by output_index (every real event carries it), else by id (minimal streams)."""
    index = event.get("output_index")
    if isinstance(index, int) and not isinstance(index, bool):
        return f"#{index}"
    ident = event.get("item_id") or (item or {}).get("id") or (item or {}).get("call_id")
    return str(ident) if ident else None


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


_HANDLERS = {
    "response.output_item.added": MessageStream._on_item_added,
    "response.output_text.delta": MessageStream._on_text_delta,
    "response.refusal.delta": MessageStream._on_text_delta,
    "response.reasoning_summary_text.delta": MessageStream._on_reasoning_delta,
    "response.reasoning_text.delta": MessageStream._on_reasoning_delta,
    "response.function_call_arguments.delta": MessageStream._on_args_delta,
    "response.function_call_arguments.done": MessageStream._on_args_done,
    "response.output_item.done": MessageStream._on_item_done,
    "response.completed": MessageStream._on_completed,
    "response.incomplete": MessageStream._on_completed,
    "response.failed": MessageStream._on_failed,
    "error": MessageStream._on_failed,
}
