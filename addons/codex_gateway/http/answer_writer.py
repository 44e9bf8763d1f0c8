"""Putting a client's answer into its flow: locally made answers, and buffered translations written last.

Why "last": mitmproxy's Save addon (`-w`) writes a flow in its own `response` hook, which runs after the
script's. `AnswerWriter` is appended to the end of the addon chain, so a saved flow keeps the raw upstream body
(what server replay needs) while the client receives the translation.

Without a flow view (mitmdump) nothing reads a finished flow again once the chain has run, yet mitmproxy's
flows sit in reference cycles until the cycle collector runs: the writer drops their bulky bodies then, so
agent sessions with 100 KB prompts or long answers don't pile up in memory. A streamed answer's raw upstream SSE
is not even gathered unless something will show or save it (`keeps_stream_bodies`).
"""

from __future__ import annotations

from typing import Any

import orjson
from mitmproxy import http

from ..answer import ClientAnswer
from ..flow_record import record_of
from ..inspect.summary import remember_upstream_body
from .cors import cors_headers
from .headers import client_response_headers

__all__ = ["AnswerWriter", "answer_headers", "json_response", "keeps_stream_bodies", "shed_bodies", "write_answer"]


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
    record = record_of(flow)
    headers = answer_headers(answer, response.headers, record.cors_origin if record is not None else None)
    # The answer's headers never carry content-encoding or transfer-encoding (allow-listed above), so the body
    # goes in as it is with its length: what `response.content = ...` would do, without its header lookups.
    headers.fields += ((b"content-length", str(len(answer.body)).encode()),)
    response.headers = headers
    response.status_code = answer.status
    response.reason = ""
    response.raw_content = answer.body


def keeps_stream_bodies(*, keeps_flows: bool, save_stream_file: str | None, flow_detail: int) -> bool:
    """Whether a streamed answer's raw upstream SSE goes into its flow: only when something shows or saves it, i.e.
    a flow view (mitmweb), mitmproxy's save file (`-w`, server replay's source) or mitmdump printing bodies
    (`flow_detail` 3 and up). Otherwise the stream callables never gather it: a long answer's SSE (about 1 MB for
    5,000 deltas), grown read by read and copied once at the end, made the gateway's memory peak in the bench."""
    return keeps_flows or bool(save_stream_file) or flow_detail >= 3


class AnswerWriter:
    """Runs last in mitmproxy's addon chain (added in `running`), after Save: see `CodexGateway._defer_answer`."""

    name = "codex_gateway_answers"

    def __init__(self, pending: dict[str, ClientAnswer]) -> None:
        self.pending = pending
        self.registered = False
        self.keeps_flows = True  # a view (mitmweb) or a HAR export keeps whole flows; set in `running`
        self.keeps_streams = True  # `keeps_stream_bodies`, set in `running` and on changes of its options

    def response(self, flow: http.HTTPFlow) -> None:
        answer = self.pending.pop(flow.id, None)
        if flow.response is None:
            return
        if answer is not None:
            if self.keeps_flows:
                remember_upstream_body(flow)  # the views still show what upstream sent
            write_answer(flow, answer)
        if not self.keeps_flows and record_of(flow) is not None:
            shed_bodies(flow)


def shed_bodies(flow: http.HTTPFlow) -> None:
    """Drops what nothing reads again once every addon (Save included) has seen the finished flow and no view
    keeps it: the upstream request as sent, the client's original body in the flow record and a streamed answer's
    raw upstream body. A buffered answer stays: mitmproxy sends it after this hook."""
    flow.request.raw_content = None
    record = record_of(flow)
    if record is not None and record.original_request is not None:
        record.original_request.body = None
    response = flow.response
    if response is not None and callable(response.stream):
        response.raw_content = None
