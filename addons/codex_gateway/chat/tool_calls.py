"""Upstream function calls → chat tool-call deltas, serialized (pure).

Why serialize: the OpenAI SDK concatenates every repeated string field of a tool-call delta and declares call
*k* finished as soon as a delta for another index arrives. Upstream may interleave the argument deltas of
parallel calls, so only one call is "open" at a time: it gets dense index n, its `id`/`type`/`name` on its first
delta only, then its argument fragments; the others are buffered and released, in order, when it is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from typing import Any

__all__ = ["ToolCallSerializer"]

ToolDelta = dict[str, Any]


@dataclass(slots=True)
class _Call:
    item_id: str
    call_id: str
    name: str
    emitted: list[str] = field(default_factory=list)  # fragments sent (a list: arguments may be megabytes)
    buffered: list[str] = field(default_factory=list)  # fragments held while another call is open
    final: str | None = None  # the complete arguments, from `.done` events
    done: bool = False
    index: int | None = None  # chat index, assigned when the call is opened


class ToolCallSerializer:
    def __init__(self) -> None:
        self._calls: dict[str, _Call] = {}
        self._order: list[_Call] = []
        self._open: _Call | None = None
        self._next_index = 0

    @property
    def names(self) -> list[str]:
        """Names of the calls the client was sent, in chat index order."""
        return [c.name for c in sorted(self._order, key=lambda c: c.index or 0) if c.index is not None]

    def __bool__(self) -> bool:
        return bool(self._order)

    def knows(self, item_id: str) -> bool:
        return item_id in self._calls

    def added(self, item_id: str, item: dict[str, Any]) -> list[ToolDelta]:
        """A function_call item appeared (from `output_item.added`, or `.done` when no `.added` came)."""
        # A client answers a call by its id: an item with neither call_id nor id still gets one.
        call_id = _str(item.get("call_id")) or item_id or f"call_{len(self._order)}"
        call = _Call(item_id=item_id, call_id=call_id, name=_str(item.get("name")))
        initial = item.get("arguments")
        if isinstance(initial, str) and initial:
            call.buffered.append(initial)
        self._calls[item_id] = call
        self._order.append(call)
        out: list[ToolDelta] = []
        if self._open is None:
            self._open_call(call, out)
        return out

    def arguments_delta(self, item_id: str, delta: str) -> list[ToolDelta]:
        call = self._calls.get(item_id)
        if call is None or not delta or call.done:
            return []
        if call is not self._open:
            call.buffered.append(delta)
            return []
        call.emitted.append(delta)
        return [{"index": call.index, "function": {"arguments": delta}}]

    def arguments_done(self, item_id: str, arguments: Any) -> None:
        call = self._calls.get(item_id)
        if call is not None and isinstance(arguments, str):
            call.final = arguments

    def item_done(self, item_id: str, arguments: Any) -> list[ToolDelta]:
        call = self._calls.get(item_id)
        if call is None:
            return []
        if isinstance(arguments, str):
            call.final = arguments
        call.done = True
        out: list[ToolDelta] = []
        if call is self._open:
            self._close_open(out)
        return out

    def finish(self) -> list[ToolDelta]:
        """The answer ended: every call still open or buffered goes out, in order."""
        out: list[ToolDelta] = []
        while self._open is not None:  # closing one call opens the next buffered one
            self._close_open(out)
        return out

    def _open_call(self, call: _Call, out: list[ToolDelta]) -> None:
        call.index = self._next_index
        self._next_index += 1
        self._open = call
        first = "".join(call.buffered)
        call.emitted = [first]
        call.buffered.clear()
        out.append(
            {
                "index": call.index,
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": first},
            }
        )
        if call.done:
            self._close_open(out)

    def _close_open(self, out: list[ToolDelta]) -> None:
        call = self._open
        assert call is not None
        if call.final is not None:
            # Arguments that arrived only (or partly) in `.done` events: send what the deltas did not.
            sent = "".join(call.emitted)
            if call.final != sent and call.final.startswith(sent):
                out.append({"index": call.index, "function": {"arguments": call.final[len(sent) :]}})
        self._open = None
        for waiting in self._order:
            if waiting.index is None:
                self._open_call(waiting, out)
                return


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
