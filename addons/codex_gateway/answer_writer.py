"""Putting a client's answer into its flow: locally made answers, and buffered translations written last.

Why "last": mitmproxy's Save addon (`-w`) writes a flow in its own `response` hook, which runs after the
script's. `AnswerWriter` is appended to the end of the addon chain, so a saved flow keeps the raw upstream body
(what server replay needs) while the client receives the translation.

Without a flow view (mitmdump) nothing reads a finished flow again once the chain has run, yet mitmproxy's
flows sit in reference cycles until the cycle collector runs: the writer drops a streamed answer's raw upstream
body then, so a burst of long answers doesn't pile up in memory.
"""

from __future__ import annotations

from typing import Any

import orjson
from mitmproxy import http

from .client_answer import ClientAnswer
from .cors import cors_headers
from .flowinfo import META
from .flowinfo import remember_upstream_body
from .headers import client_response_headers

__all__ = ["AnswerWriter", "answer_headers", "json_response", "write_answer"]


def json_response(status: int, payload: Any, origin: str | None) -> http.Response:
    headers = {"content-type": "application/json", **(cors_headers(origin) if origin else {})}
    return http.Response.make(status, orjson.dumps(payload), headers)


def answer_headers(answer: ClientAnswer, upstream: http.Headers | None, origin: str | None) -> http.Headers:
    headers = client_response_headers(upstream, answer.content_type)
    for name, value in answer.headers.items():
        headers[name] = value
    if origin:
        headers.update(cors_headers(origin))
    return headers


def write_answer(flow: http.HTTPFlow, answer: ClientAnswer) -> None:
    response = flow.response
    assert response is not None
    headers = answer_headers(answer, response.headers, flow.metadata.get(META, {}).get("cors_origin"))
    # The answer's headers never carry content-encoding or transfer-encoding (allow-listed above), so the body
    # goes in as it is with its length: what `response.content = ...` would do, without its header lookups.
    headers.fields += ((b"content-length", str(len(answer.body)).encode()),)
    response.headers = headers
    response.status_code = answer.status
    response.reason = ""
    response.raw_content = answer.body


class AnswerWriter:
    """Runs last in mitmproxy's addon chain (added in `running`), after Save: see `CodexGateway._defer_answer`."""

    name = "codex_gateway_answers"

    def __init__(self, pending: dict[str, ClientAnswer]) -> None:
        self.pending = pending
        self.registered = False
        # False when no view keeps flows for display (set in `running`): then a finished flow's upstream body is
        # of no further use once every addon has seen it.
        self.keep_streamed_bodies = True

    def response(self, flow: http.HTTPFlow) -> None:
        answer = self.pending.pop(flow.id, None)
        response = flow.response
        if response is None:
            return
        if answer is not None:
            if self.keep_streamed_bodies:
                remember_upstream_body(flow)  # the views still show what upstream sent
            write_answer(flow, answer)
        elif not self.keep_streamed_bodies and callable(response.stream) and META in flow.metadata:
            response.raw_content = None  # every addon, Save (-w) included, has seen it
