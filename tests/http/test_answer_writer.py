"""answer_writer: putting a client's answer into its flow, and the last-in-chain writer of pending answers."""

from __future__ import annotations

import json

import pytest
from codex_gateway.answer import ClientAnswer
from codex_gateway.flow_record import META
from codex_gateway.flow_record import FlowRecord
from codex_gateway.flow_record import OriginalRequest
from codex_gateway.flow_record import Route
from codex_gateway.flow_record import record_of
from codex_gateway.flow_record import set_record
from codex_gateway.http.answer_writer import AnswerWriter
from codex_gateway.http.answer_writer import answer_headers
from codex_gateway.http.answer_writer import json_response
from codex_gateway.http.answer_writer import keeps_stream_bodies
from codex_gateway.http.answer_writer import write_answer
from codex_gateway.inspect.summary import upstream_body
from mitmproxy import http
from mitmproxy.test import tflow

ORIGIN = "https://app.example"
UPSTREAM_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"content-length", b"9999"),
    (b"set-cookie", b"__cf_bm=secret"),
    (b"cf-ray", b"abc-AMS"),
    (b"access-control-allow-origin", b"*"),
    (b"x-request-id", b"req_1"),
    (b"x-codex-primary-used-percent", b"12"),
]
CORS = [
    (b"access-control-allow-origin", ORIGIN.encode()),
    (b"vary", b"Origin"),
    (b"access-control-expose-headers", b"x-request-id, retry-after, openai-model"),
]


def flow(cors_origin: str | None = None) -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    assert f.response is not None
    f.response.headers = http.Headers(UPSTREAM_HEADERS)
    f.response.content = b"raw upstream body"
    set_record(f, FlowRecord(endpoint=Route.CHAT, cors_origin=cors_origin))
    return f


ANSWER = ClientAnswer(429, "application/json", b'{"error":{"message":"slow"}}', {"retry-after": "60"})


# -- write_answer -----------------------------------------------------------------------------------------------


def test_status_reason_and_body() -> None:
    f = flow()
    write_answer(f, ANSWER)
    assert f.response is not None
    assert (f.response.status_code, f.response.reason, f.response.content) == (429, "", ANSWER.body)


def test_headers_are_allow_listed_and_framed_for_the_new_body() -> None:
    f = flow()
    write_answer(f, ANSWER)
    assert f.response is not None
    assert f.response.headers.fields == (
        (b"content-type", b"application/json"),
        (b"x-request-id", b"req_1"),
        (b"x-codex-primary-used-percent", b"12"),
        (b"retry-after", b"60"),
        (b"content-length", str(len(ANSWER.body)).encode()),
    )


def test_cors_origin_comes_from_the_flow_record() -> None:
    f = flow(cors_origin=ORIGIN)
    write_answer(f, ANSWER)
    assert f.response is not None
    for name, value in CORS:
        assert f.response.headers.get_all(name.decode()) == [value.decode()]


@pytest.mark.parametrize("metadata", [{}, {META: {}}, {META: FlowRecord()}, {META: {"cors_origin": None}}])
def test_no_cors_headers_without_an_origin(metadata: dict[str, object]) -> None:
    f = flow()
    f.metadata = metadata
    write_answer(f, ANSWER)
    assert f.response is not None
    assert not any(name.lower().startswith(b"access-control-") for name, _ in f.response.headers.fields)


def test_answer_headers_override_upstream_ones() -> None:
    upstream = http.Headers([(b"retry-after", b"5"), (b"x-request-id", b"req_1")])
    headers = answer_headers(ANSWER, upstream, None)
    assert headers.get_all("retry-after") == ["60"]


def test_answer_headers_without_upstream() -> None:
    assert answer_headers(ANSWER, None, ORIGIN).fields == (
        (b"content-type", b"application/json"),
        (b"retry-after", b"60"),
        *CORS,
    )


# -- json_response ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", [None, ORIGIN])
def test_json_response(origin: str | None) -> None:
    r = json_response(404, {"error": {"message": "nope"}}, origin)
    assert (r.status_code, json.loads(r.content)) == (404, {"error": {"message": "nope"}})
    expected = [(b"content-type", b"application/json"), *(CORS if origin else [])]
    assert [f for f in r.headers.fields if f[0] != b"content-length"] == expected


# -- AnswerWriter -----------------------------------------------------------------------------------------------


def test_writer_applies_a_pending_answer_once() -> None:
    f = flow()
    pending = {f.id: ANSWER}
    writer = AnswerWriter(pending)
    writer.response(f)
    assert f.response is not None
    assert (f.response.status_code, f.response.content, pending) == (429, ANSWER.body, {})


def test_writer_leaves_flows_without_a_pending_answer_alone() -> None:
    f, other = flow(), flow()
    assert f.response is not None
    before = (f.response.status_code, f.response.headers.fields, f.response.content)
    pending = {other.id: ANSWER}
    AnswerWriter(pending).response(f)
    assert (f.response.status_code, f.response.headers.fields, f.response.content) == before
    assert pending == {other.id: ANSWER}


def test_writer_drops_the_answer_of_a_flow_without_response() -> None:
    f = flow()
    f.response = None
    pending = {f.id: ANSWER}
    AnswerWriter(pending).response(f)
    assert (f.response, pending) == (None, {})


def test_writer_identity() -> None:
    writer = AnswerWriter({})
    assert (writer.name, writer.registered) == ("codex_gateway_answers", False)


def streamed_flow(*, gateway: bool = True) -> http.HTTPFlow:
    f = flow() if gateway else tflow.tflow(resp=True)
    assert f.response is not None
    f.response.stream = lambda data: [data]
    f.response.raw_content = b"event: response.completed\ndata: {}\n\n"
    return f


def writer_for(f: http.HTTPFlow, *, keeps_flows: bool, answer: ClientAnswer | None = None) -> AnswerWriter:
    writer = AnswerWriter({f.id: answer} if answer is not None else {})
    writer.keeps_flows = keeps_flows
    return writer


@pytest.mark.parametrize(
    "keeps_flows, gateway, kept",
    [
        (False, True, False),  # mitmdump: nothing reads the finished flow again
        (True, True, True),  # mitmweb's view shows it later
        (False, False, True),  # not the gateway's flow
    ],
)
def test_writer_drops_a_streamed_upstream_body_only_without_a_view(
    keeps_flows: bool, gateway: bool, kept: bool
) -> None:
    f = streamed_flow(gateway=gateway)
    writer_for(f, keeps_flows=keeps_flows).response(f)
    assert f.response is not None
    assert (f.response.raw_content is not None) == kept


@pytest.mark.parametrize("keeps_flows", [True, False])
def test_writer_drops_the_sent_request_bodies_only_without_a_view(keeps_flows: bool) -> None:
    f = flow()
    f.request.content = b'{"model":"gpt-5.4","input":[]}'
    record = record_of(f)
    assert record is not None
    record.original_request = OriginalRequest("POST", "/v1/chat/completions", [], "{}")
    writer_for(f, keeps_flows=keeps_flows).response(f)
    kept = (f.request.raw_content is not None, record.original_request.body is not None)
    assert kept == (keeps_flows, keeps_flows)
    assert ("body" in record.original_request.to_json()) == keeps_flows


def test_writer_keeps_a_buffered_answer_without_a_view() -> None:
    """mitmproxy sends a buffered response after the hooks: the client's answer must stay."""
    f = flow()
    writer_for(f, keeps_flows=False, answer=ANSWER).response(f)
    assert f.response is not None and f.response.raw_content == ANSWER.body


@pytest.mark.parametrize("keeps_flows", [True, False])
def test_writer_remembers_the_replaced_upstream_body_only_for_a_view(keeps_flows: bool) -> None:
    f = flow()
    writer_for(f, keeps_flows=keeps_flows, answer=ANSWER).response(f)
    assert upstream_body(f) == (b"raw upstream body" if keeps_flows else None)


# -- keeps_stream_bodies ------------------------------------------------------------------------------------------

KEEPERS = [
    # keeps_flows, save_stream_file, flow_detail, kept
    (False, None, 1, False),  # plain mitmdump: nothing reads the raw SSE again
    (False, "", 2, False),  # headers only
    (True, None, 1, True),  # mitmweb's view (or a HAR export)
    (False, "capture.flows", 1, True),  # -w: the saved flow feeds server replay
    (False, "+capture.flows", 0, True),  # appending
    (False, None, 3, True),  # mitmdump prints bodies
    (False, None, 4, True),
]


@pytest.mark.parametrize("keeps_flows, save_stream_file, flow_detail, kept", KEEPERS)
def test_the_raw_upstream_sse_is_kept_only_for_a_reader(
    keeps_flows: bool, save_stream_file: str | None, flow_detail: int, kept: bool
) -> None:
    wanted = keeps_stream_bodies(keeps_flows=keeps_flows, save_stream_file=save_stream_file, flow_detail=flow_detail)
    assert wanted is kept
