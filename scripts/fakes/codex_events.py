"""Builders for Codex Responses SSE event lists, shaped like the real backend's.

Every public builder returns a *complete* stream (``response.created`` →
``response.in_progress`` → item events → terminal event), so ``ev.text("hi")``
can be handed straight to ``SSEScript``. To combine several items into one
answer, pass the pieces to :func:`response`; it strips their lifecycle events,
renumbers ``output_index`` / ``sequence_number``, re-derives item ids so they
stay unique, and wraps everything in one lifecycle::

    ev.response(ev.reasoning(["**Plan**"]), ev.text("Done."), usage=ev.usage(900, 120))
    ev.response(ev.text("Partial"), status="incomplete", incomplete_reason="max_output_tokens")
    ev.failed("server_is_overloaded", "Try later", after=ev.text(["Hel", "lo"]))

Item ids look server-assigned (``msg_``/``rs_``/``fc_``/``ctc_`` + 48 hex
digits, derived from the response id and output index) on purpose: a gateway
that replays them in a later request's ``input`` gets the 404 the real
backend sends, which the fake enforces. The terminal ``response.output`` is
``[]`` by default because that is what the real backend sends with
``store:false`` (its items arrive only in the ``output_item.done`` events); pass ``full_output=True`` to fill it.

Raw strings inside a part (e.g. ``"event: codex.rate_limits\\n\\n"``) are
kept verbatim in place and are not renumbered.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any
from typing import Literal

Event = dict[str, Any]
EventLike = Event | str

_LIFECYCLE = {
    "response.created",
    "response.in_progress",
    "response.completed",
    "response.failed",
    "response.incomplete",
}


class _Default:
    """Sentinel type: "use ev.usage()" (``None`` means ``"usage": null``)."""


DEFAULT = _Default()
UsageArg = dict[str, Any] | None | _Default


def usage(input_tokens: int = 11, output_tokens: int = 5, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    """Return a Responses ``usage`` object, as the terminal ``response.completed`` carries it."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


_make_usage = usage


def make_item_id(prefix: str, response_id: str, output_index: int) -> str:
    """Deterministic server-style id (prefix + 48 hex) so tests can predict it."""
    digest = hashlib.sha256(f"{response_id}:{prefix}:{output_index}".encode()).hexdigest()
    return f"{prefix}_{digest[:48]}"


def renumber(events: Sequence[EventLike]) -> list[Event]:
    """Copy ``events`` with ``sequence_number`` rewritten to 0, 1, 2, ... (raw strings skipped)."""
    out: list[Any] = []  # raw strings are kept in place (typed as events for caller convenience)
    seq = 0
    for e in events:
        if isinstance(e, dict):  # keep "type" first, like the real backend
            rest = {k: v for k, v in e.items() if k not in ("type", "sequence_number")}
            head = {"type": e["type"]} if "type" in e else {}
            e = {**head, "sequence_number": seq, **rest}
            seq += 1
        out.append(e)
    return out


# ---------------------------------------------------------------- item-level pieces
# These return item events only (local output_index 0.., placeholder ids); the
# public builders below wrap them via response().


def _message_items(deltas: list[str], phase: str | None) -> list[Event]:
    mid = "msg_0"
    text = "".join(deltas)
    head: Event = {"id": mid, "type": "message", "role": "assistant"}
    if phase is not None:
        head["phase"] = phase
    part = {"type": "output_text", "text": "", "annotations": []}
    loc = {"item_id": mid, "output_index": 0, "content_index": 0}
    evs: list[Event] = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**head, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **loc, "part": part},
    ]
    evs += [{"type": "response.output_text.delta", **loc, "delta": d, "logprobs": []} for d in deltas]
    done_part = {"type": "output_text", "text": text, "annotations": []}
    evs += [
        {"type": "response.output_text.done", **loc, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **loc, "part": done_part},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**head, "status": "completed", "content": [done_part]},
        },
    ]
    return evs


def _refusal_items(text: str) -> list[Event]:
    mid = "msg_0"
    head = {"id": mid, "type": "message", "role": "assistant"}
    loc = {"item_id": mid, "output_index": 0, "content_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**head, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **loc, "part": {"type": "refusal", "refusal": ""}},
        {"type": "response.refusal.delta", **loc, "delta": text},
        {"type": "response.refusal.done", **loc, "refusal": text},
        {"type": "response.content_part.done", **loc, "part": {"type": "refusal", "refusal": text}},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**head, "status": "completed", "content": [{"type": "refusal", "refusal": text}]},
        },
    ]


def _reasoning_items(summaries: list[str], encrypted_content: str) -> list[Event]:
    rid = "rs_0"
    evs: list[Event] = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": rid, "type": "reasoning", "summary": []},
        }
    ]
    for i, s in enumerate(summaries):
        loc = {"item_id": rid, "output_index": 0, "summary_index": i}
        evs += [
            {
                "type": "response.reasoning_summary_part.added",
                **loc,
                "part": {"type": "summary_text", "text": ""},
            },
            {"type": "response.reasoning_summary_text.delta", **loc, "delta": s},
            {"type": "response.reasoning_summary_text.done", **loc, "text": s},
            {
                "type": "response.reasoning_summary_part.done",
                **loc,
                "part": {"type": "summary_text", "text": s},
            },
        ]
    final = {
        "id": rid,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": s} for s in summaries],
        "encrypted_content": encrypted_content,
    }
    evs.append({"type": "response.output_item.done", "output_index": 0, "item": final})
    return evs


def _split(s: str, n: int) -> list[str]:
    """Split ``s`` into ``n`` roughly equal pieces (by characters; may cut escapes)."""
    n = max(1, min(n, len(s))) if s else 1
    step, rem = divmod(len(s), n)
    out, pos = [], 0
    for i in range(n):
        end = pos + step + (1 if i < rem else 0)
        out.append(s[pos:end])
        pos = end
    return out


def _call_parts(
    index: int, name: str, arguments: str, call_id: str, split: int, args_only_in_done: bool
) -> tuple[Event, list[Event], list[Event]]:
    """(added, delta events, done events) of one function_call at local ``index``."""
    fid = f"fc_{index}"
    head = {"id": fid, "type": "function_call", "name": name, "call_id": call_id}
    added: Event = {
        "type": "response.output_item.added",
        "output_index": index,
        "item": {**head, "status": "in_progress", "arguments": ""},
    }
    done_item: Event = {
        "type": "response.output_item.done",
        "output_index": index,
        "item": {**head, "status": "completed", "arguments": arguments},
    }
    if args_only_in_done:
        return added, [], [done_item]
    deltas: list[Event] = [
        {"type": "response.function_call_arguments.delta", "item_id": fid, "output_index": index, "delta": d}
        for d in _split(arguments, split)
    ]
    args_done: Event = {
        "type": "response.function_call_arguments.done",
        "item_id": fid,
        "output_index": index,
        "name": name,
        "arguments": arguments,
    }
    return added, deltas, [args_done, done_item]


# ---------------------------------------------------------------- composition


def _items_of(part: Sequence[EventLike]) -> list[EventLike]:
    return [e for e in part if not (isinstance(e, dict) and e.get("type") in _LIFECYCLE)]


def _reindex(part: list[EventLike], offset: int, response_id: str) -> tuple[list[EventLike], int]:
    """Shift a part's output_index values to start at ``offset`` and re-derive item ids."""
    index_map: dict[int, int] = {}
    id_map: dict[str, str] = {}
    out: list[EventLike] = []
    for e in part:
        if not isinstance(e, dict) or "output_index" not in e:
            out.append(e)
            continue
        e = copy.deepcopy(e)
        new_index = index_map.setdefault(e["output_index"], offset + len(index_map))
        e["output_index"] = new_index
        for holder, key in ((e.get("item"), "id"), (e, "item_id")):
            if isinstance(holder, dict) and isinstance(holder.get(key), str):
                old = holder[key]
                prefix = old.split("_", 1)[0]
                holder[key] = id_map.setdefault(old, make_item_id(prefix, response_id, new_index))
        out.append(e)
    return out, offset + len(index_map)


def _response_obj(response_id: str, model: str, created_at: int, status: str) -> Event:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "parallel_tool_calls": False,
        "store": False,
        "usage": None,
        "metadata": {},
    }


def response(
    *parts: Sequence[EventLike],
    response_id: str = "resp_1",
    model: str = "gpt-5.4",
    usage: UsageArg = DEFAULT,
    created_at: int = 1760000000,
    status: Literal["completed", "incomplete", "failed"] | None = "completed",
    incomplete_reason: str = "max_output_tokens",
    error: dict[str, Any] | None = None,
    full_output: bool = False,
    tool_usage: dict[str, Any] | None = None,
) -> list[Event]:
    """Wrap item events from ``parts`` (full streams or bare item lists) in one response.

    ``status=None`` emits no terminal event at all (a stream that just ends,
    which Codex reports as "stream closed before response.completed").
    ``error`` defaults to ``server_error`` for ``status="failed"``.
    ``tool_usage`` (e.g. :func:`image_tool_usage`) is added to the terminal
    response when given.
    """
    the_usage = _make_usage() if isinstance(usage, _Default) else usage
    items: list[EventLike] = []
    offset = 0
    for part in parts:
        shifted, offset = _reindex(_items_of(part), offset, response_id)
        items += shifted
    base = _response_obj(response_id, model, created_at, "in_progress")
    events: list[EventLike] = [
        {"type": "response.created", "response": base},
        {"type": "response.in_progress", "response": dict(base)},
        *items,
    ]
    if status is not None:
        final = {**base, "status": status, "usage": the_usage}
        if full_output:
            final["output"] = [
                e["item"] for e in items if isinstance(e, dict) and e.get("type") == "response.output_item.done"
            ]
        if status == "incomplete":
            final["incomplete_details"] = {"reason": incomplete_reason}
        if status == "failed":
            final["error"] = error or {"code": "server_error", "message": "The server had an error."}
            final["usage"] = None if isinstance(usage, _Default) else usage
        if tool_usage is not None:
            final["tool_usage"] = tool_usage
        events.append({"type": f"response.{status}", "response": final})
    return renumber(events)


# ---------------------------------------------------------------- public builders


def text(text_or_deltas: str | list[str], *, phase: str | None = None, **kw: Any) -> list[Event]:
    """A plain assistant message; a str is one delta, ``""``/``[]`` means zero deltas.

    ``kw`` goes to :func:`response` (response_id, model, usage, created_at, ...).
    """
    deltas = ([text_or_deltas] if text_or_deltas else []) if isinstance(text_or_deltas, str) else list(text_or_deltas)
    return response(_message_items(deltas, phase), **kw)


def refusal(refusal_text: str, **kw: Any) -> list[Event]:
    """An assistant message with one ``refusal`` content part (refusal.delta/.done events)."""
    return response(_refusal_items(refusal_text), **kw)


def reasoning(
    summaries: list[str], *, encrypted_content: str = "gAAAAABfakeEncryptedReasoning==", **kw: Any
) -> list[Event]:
    """A reasoning item with one summary part per string; ``[]`` gives ``summary: []``."""
    return response(_reasoning_items(list(summaries), encrypted_content), **kw)


def tool_calls(
    calls: Sequence[tuple[str, str, str]],
    *,
    interleave: bool = False,
    split: int = 2,
    text_before: str | None = None,
    args_only_in_done: bool = False,
    **kw: Any,
) -> list[Event]:
    """One function_call item per ``(name, arguments_json, call_id)``.

    ``split`` is the number of ``function_call_arguments.delta`` pieces per
    call (cut by characters, so escapes and multi-byte text may be split).
    ``interleave=True`` adds all items first, then emits the deltas of all
    calls round-robin, then their done events: the real backend does not
    promise that one item's events end before the next item's begin. ``args_only_in_done``
    sends no deltas and no ``arguments.done``: arguments only appear in
    ``output_item.done`` (edge case 21). ``text_before`` prepends a message.
    """
    parts = [_call_parts(i, n, a, c, split, args_only_in_done) for i, (n, a, c) in enumerate(calls)]
    items: list[EventLike] = []
    if interleave:
        items += [added for added, _, _ in parts]
        longest = max((len(d) for _, d, _ in parts), default=0)
        items += [d[k] for k in range(longest) for _, d, _ in parts if k < len(d)]
        items += [e for _, _, done in parts for e in done]
    else:
        for added, deltas, done in parts:
            items += [added, *deltas, *done]
    pieces = [_message_items([text_before], None)] if text_before is not None else []
    return response(*pieces, items, **kw)


def custom_tool_call(name: str, tool_input: str, call_id: str, **kw: Any) -> list[Event]:
    """A freeform ``custom_tool_call`` item (e.g. ``apply_patch``), which has no chat equivalent."""
    cid = "ctc_0"
    head = {"id": cid, "type": "custom_tool_call", "name": name, "call_id": call_id}
    loc = {"item_id": cid, "output_index": 0}
    items: list[Event] = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**head, "status": "in_progress", "input": ""},
        },
        {"type": "response.custom_tool_call_input.delta", **loc, "call_id": call_id, "delta": tool_input},
        {"type": "response.custom_tool_call_input.done", **loc, "call_id": call_id, "input": tool_input},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**head, "status": "completed", "input": tool_input},
        },
    ]
    return response(items, **kw)


# A valid 1x1 PNG, small enough to inline in a test stream.
TINY_PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def image_tool_usage(input_tokens: int = 50, output_tokens: int = 4160, image_input_tokens: int = 0) -> dict[str, Any]:
    """A ``response.tool_usage`` object with ``image_gen`` token counts (and no web searches)."""
    return {
        "image_gen": {
            "input_tokens": input_tokens,
            "input_tokens_details": {
                "image_tokens": image_input_tokens,
                "text_tokens": input_tokens - image_input_tokens,
            },
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
        "web_search": {"num_requests": 0},
    }


def _image_items(
    result: str | None,
    revised_prompt: str | None,
    partials: Sequence[str],
    status: str,
    error: dict[str, Any] | None,
    params: dict[str, Any],
) -> list[Event]:
    iid = "ig_0"
    loc = {"item_id": iid, "output_index": 0}
    evs: list[Event] = [
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": iid, "type": "image_generation_call", "status": "in_progress"},
        },
        {"type": "response.image_generation_call.in_progress", **loc},
        {"type": "response.image_generation_call.generating", **loc},
    ]
    evs += [
        {
            "type": "response.image_generation_call.partial_image",
            **loc,
            "partial_image_index": i,
            "partial_image_b64": p,
        }
        for i, p in enumerate(partials)
    ]
    done: Event = {"id": iid, "type": "image_generation_call", "status": status, "result": result}
    if revised_prompt is not None:
        done["revised_prompt"] = revised_prompt
    done.update(params)
    if error is not None:
        done["error"] = error
    if status == "completed":
        evs.append({"type": "response.image_generation_call.completed", **loc})
    evs.append({"type": "response.output_item.done", "output_index": 0, "item": done})
    return evs


def image_generation(
    result_b64: str | None = TINY_PNG_B64,
    *,
    revised_prompt: str | None = "A tiny test image.",
    partial_images: Sequence[str] = (),
    call_status: str = "completed",
    call_error: dict[str, Any] | None = None,
    size: str | None = "1024x1024",
    quality: str | None = "high",
    output_format: str | None = "png",
    background: str | None = "opaque",
    text_before: str | None = None,
    **kw: Any,
) -> list[Event]:
    """One ``image_generation_call`` item, as the hosted tool streams it.

    Events: ``output_item.added`` (in_progress) →
    ``response.image_generation_call.in_progress`` → ``.generating`` →
    ``.partial_image`` (one per ``partial_images`` entry, ``partial_image_b64``)
    → ``.completed`` → ``output_item.done`` whose item carries the base64
    ``result``, ``revised_prompt`` and the parameters the tool used. A failed
    call (``call_status="failed"``, ``call_error={code, message, type}``) has no
    ``.completed`` event. The terminal response carries
    ``tool_usage=image_tool_usage()`` unless ``tool_usage`` is passed.
    ``text_before`` prepends an assistant message (model commentary).
    """
    params = {
        k: v
        for k, v in (("size", size), ("quality", quality), ("output_format", output_format), ("background", background))
        if v is not None
    }
    kw.setdefault("tool_usage", image_tool_usage())
    pieces = [_message_items([text_before], None)] if text_before is not None else []
    items = _image_items(result_b64, revised_prompt, list(partial_images), call_status, call_error, params)
    return response(*pieces, items, **kw)


def failed(code: str, message: str, after: Sequence[EventLike] | None = None, **kw: Any) -> list[Event]:
    """A stream whose items from ``after`` (partial output) end in ``response.failed``."""
    return response(after or [], status="failed", error={"code": code, "message": message}, **kw)


def incomplete(reason: str = "max_output_tokens", after: Sequence[EventLike] | None = None, **kw: Any) -> list[Event]:
    """A stream ending in ``response.incomplete`` with ``incomplete_details.reason``."""
    return response(after or [], status="incomplete", incomplete_reason=reason, **kw)


def error_event(code: str, message: str, param: str | None = None) -> list[Event]:
    """A one-element list holding a top-level ``error`` event (compose via :func:`response`)."""
    return [{"type": "error", "sequence_number": 0, "code": code, "message": message, "param": param}]


def rate_limits_event(primary_used: float = 12.0, secondary_used: float = 3.0, plan_type: str = "plus") -> list[Event]:
    """A one-element list holding a ``codex.rate_limits`` event (an unknown type for chat clients)."""
    return [
        {
            "type": "codex.rate_limits",
            "plan_type": plan_type,
            "rate_limits": {
                "primary": {"used_percent": primary_used, "window_minutes": 300, "reset_at": 1760013873},
                "secondary": {
                    "used_percent": secondary_used,
                    "window_minutes": 10080,
                    "reset_at": 1760316705,
                },
            },
            "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
        }
    ]
