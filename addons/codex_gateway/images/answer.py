"""Images: the finished `image_generation_call` → an OpenAI images response (pure; requests: images/request.py).

Upstream shapes: `response.output_item.done` with `{"type": "image_generation_call", "status": "completed",
"result": <base64>, "revised_prompt", "size", "quality", "output_format", "background"}`;
`response.image_generation_call.partial_image` with `partial_image_b64` (used only when no final image arrived);
token usage in the terminal response's `tool_usage.image_gen`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import orjson

from ..answer import ClientAnswer
from ..codex_events import chat_usage
from ..codex_events import stream_incomplete
from ..codex_events import upstream_failure
from ..errors import GatewayError
from ..errors import failure_status
from ..errors import upstream_error
from ..sse import SSEDecoder
from .job import ImageJob

__all__ = ["answer_from_events", "answer_from_body", "buffered_answer"]


# -- answers --------------------------------------------------------------------------------------------------


def answer_from_body(body: bytes, job: ImageJob, *, now: float | None = None) -> tuple[int, dict[str, Any]]:
    """A whole upstream SSE body → `(200, images response)` or `(status, error envelope)`."""
    decoder = SSEDecoder()
    events: list[dict[str, Any]] = []
    for ev in decoder.feed(body) + decoder.close():
        if ev.data[:1] != "{":
            continue
        try:
            obj = orjson.loads(ev.data)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            events.append(obj)
    return answer_from_events(events, job, now=now)


def answer_from_events(
    events: Iterable[Mapping[str, Any]], job: ImageJob, *, now: float | None = None
) -> tuple[int, dict[str, Any]]:
    """Parsed upstream events → `(200, {created, data: [{b64_json, revised_prompt}], ..., usage})`, or an error
    envelope: the upstream failure mapped like `/v1/responses`, a failed image call (400, e.g. moderation), or a
    502 `image_generation_failed` when the model answered without an image."""
    seen = _collect(events)
    if seen.failure is not None or seen.final is None:
        err = _stream_failure(seen.failure)
        return err.status, err.payload()
    done = next((c for c in seen.calls if isinstance(c.get("result"), str) and c["result"]), None)
    if done is None and seen.partial is None:
        err = _no_image(seen.calls, seen.texts)
        return err.status, err.payload()
    image: dict[str, Any] = {"b64_json": done["result"] if done is not None else seen.partial}
    revised = done.get("revised_prompt") if done is not None else None
    if isinstance(revised, str) and revised:
        image["revised_prompt"] = revised
    at = seen.created if seen.created is not None else seen.final.get("created_at")
    payload: dict[str, Any] = {
        "created": int(at) if isinstance(at, int | float) else int(now if now is not None else time.time()),
        "data": [image],
    }
    source = done or {}
    asked = {"background": job.background, "output_format": job.output_format, "quality": job.quality, "size": job.size}
    for key, requested in asked.items():
        value = source.get(key) or requested  # what the tool used, else what the client asked for
        if isinstance(value, str) and value != "auto":
            payload[key] = value
    usage = _image_usage(seen.final)
    if usage is not None:
        payload["usage"] = usage
    return 200, payload


@dataclass
class _Seen:
    """What the upstream events of an images request said."""

    created: int | None = None
    calls: list[Mapping[str, Any]] = field(default_factory=list)  # finished image_generation_call items
    partial: str | None = None  # the last partial image
    texts: list[str] = field(default_factory=list)  # what the model said instead of calling the tool
    final: Mapping[str, Any] | None = None  # the completed (or incomplete) response
    failure: Mapping[str, Any] | None = None  # the failure a failed response or an error event reports


def _collect(events: Iterable[Mapping[str, Any]]) -> _Seen:
    seen = _Seen()
    for ev in events:
        kind = ev.get("type")
        response = ev.get("response")
        if kind == "response.created" and isinstance(response, Mapping):
            at = response.get("created_at")
            if isinstance(at, int | float) and not isinstance(at, bool):
                seen.created = int(at)
        elif kind == "response.output_item.done":
            item = ev.get("item")
            if isinstance(item, Mapping) and item.get("type") == "image_generation_call":
                seen.calls.append(item)
            elif isinstance(item, Mapping) and item.get("type") == "message":
                seen.texts += [
                    p["text"]
                    for p in item.get("content") or ()
                    if isinstance(p, Mapping) and isinstance(p.get("text"), str)
                ]
        elif kind == "response.image_generation_call.partial_image":
            if isinstance(ev.get("partial_image_b64"), str) and ev["partial_image_b64"]:
                seen.partial = ev["partial_image_b64"]
        elif kind in ("response.completed", "response.incomplete"):
            seen.final = response if isinstance(response, Mapping) else {}
        elif kind in ("response.failed", "error"):
            seen.failure = upstream_failure(ev)
    return seen


def _stream_failure(failure: Mapping[str, Any] | None) -> GatewayError:
    """The client's error for a failed upstream answer (an `upstream_failure`), or (`failure` None) for one that
    ended unfinished."""
    if failure is None:
        failure = {**stream_incomplete(), "message": "The upstream stream ended before the image was finished."}
    status, etype = failure_status(failure["code"], failure["type"])
    return GatewayError(status, failure["message"], type=etype, code=failure["code"])


def _no_image(calls: list[Mapping[str, Any]], texts: list[str]) -> GatewayError:
    """A finished answer without an image: the image call's own error (e.g. moderation), or what the model said."""
    failed = next((c for c in calls if isinstance(c.get("error"), Mapping)), None)
    if failed is not None:
        cerr = failed["error"]
        code = cerr.get("code") if isinstance(cerr.get("code"), str) else "image_generation_failed"
        message = cerr.get("message") if isinstance(cerr.get("message"), str) else "The image could not be made."
        return GatewayError(400, message, type="image_generation_user_error", code=code)
    said = " ".join(" ".join(texts).split())[:300]
    return GatewayError(
        502,
        "The Codex backend returned no image" + (f"; the model said: {said}" if said else "."),
        code="image_generation_failed",
    )


def _image_usage(final: Mapping[str, Any]) -> dict[str, Any] | None:
    """`tool_usage.image_gen` (the image tokens), else the orchestrator's usage as text tokens."""
    tool_usage = final.get("tool_usage")
    image_gen = tool_usage.get("image_gen") if isinstance(tool_usage, Mapping) else None
    if isinstance(image_gen, Mapping) and isinstance(image_gen.get("total_tokens"), int):
        usage = {
            k: image_gen[k]
            for k in ("input_tokens", "input_tokens_details", "output_tokens", "total_tokens", "output_tokens_details")
            if image_gen.get(k) is not None
        }
        usage.setdefault("input_tokens_details", {"image_tokens": 0, "text_tokens": usage.get("input_tokens", 0)})
        return usage
    base = chat_usage(final.get("usage"))
    if base is None:
        return None
    return {
        "input_tokens": base["prompt_tokens"],
        "input_tokens_details": {"image_tokens": 0, "text_tokens": base["prompt_tokens"]},
        "output_tokens": base["completion_tokens"],
        "total_tokens": base["total_tokens"],
    }


def buffered_answer(job: ImageJob, status: int, headers: Mapping[str, str], body: bytes) -> ClientAnswer:
    """The client's answer for the (always buffered) upstream answer of an images request."""
    if not (200 <= status < 300):
        return ClientAnswer.from_error(upstream_error(status, body, headers))
    code, payload = answer_from_body(body, job)
    answer = ClientAnswer(code, "application/json", orjson.dumps(payload))
    if code != 200:
        answer.error = payload["error"]["message"]
    else:
        answer.finish_reason = "stop"
        usage = payload.get("usage")
        answer.usage = chat_usage(usage) if isinstance(usage, dict) else None
    return answer
