"""flow_record: the declared record of a gateway flow, its saved JSON form, and how it lives in a mitmproxy flow."""

from __future__ import annotations

import io
from dataclasses import fields
from typing import Any

import orjson
import pytest
from codex_gateway.answer import Outcome
from codex_gateway.flow_record import META
from codex_gateway.flow_record import FlowRecord
from codex_gateway.flow_record import OriginalRequest
from codex_gateway.flow_record import Route
from codex_gateway.flow_record import record_of
from codex_gateway.flow_record import set_record
from codex_gateway.images.job import ImageJob
from mitmproxy import flowfilter
from mitmproxy import http
from mitmproxy import io as mitmproxy_io
from mitmproxy.test import tflow

ORIGINAL = OriginalRequest("POST", "/v1/chat/completions", [("User-Agent", "curl/8"), ("Authorization", "<x>")], "{}")
JOB = ImageJob(edit=True, orchestrator="gpt-5.4-mini", session_id="s-1", model="gpt-image-1", images=1, size="auto")
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "prompt_tokens_details": {"cached_tokens": 0}}

# A record with every field set: adding a field without a way to read it back makes the round trip fail.
FULL = FlowRecord(
    endpoint=Route.CHAT,
    started=1000.5,
    client="OpenClaw",
    trace="0af7651916cd43dd8448eb211c80319c",
    cors_origin="https://app.example",
    original_request=ORIGINAL,
    model="gpt-5.4",
    requested_model="gpt-5.4-high",
    name_effort="high",
    model_served="gpt-5.4-2026-03-05",
    stream=True,
    include_usage=True,
    stop=["END"],
    dropped=["max_completion_tokens"],
    stripped_ids=2,
    messages=5,
    tools=1,
    session_id="s-1",
    session_headers=[("session_id", "s-1")],
    images=JOB,
    account="user@example.com",
    retries=["401 token_expired: token refreshed, retried"],
    client_status=200,
    upstream_status=429,
    finish_reason="tool_calls",
    usage=USAGE,
    tool_calls=["read"],
    first_token_at=1000.75,
    error="Try again later.",
    finished_at=1001.0,
    failure="error_event",
    failure_reason="error event: Try again later.",
    models_source="live",
    codex_model="gpt-5.4",
    thinking="omitted",
    tool_names={"mcp__x_0123abcd": "mcp__x_long_name"},
    betas=["interleaved-thinking-2025-05-14"],
)


def saved(record: FlowRecord) -> dict[str, Any]:
    """The record as a saved flow holds it, read back (through real JSON, as strict as tnetstring's types)."""
    return orjson.loads(orjson.dumps(record.to_json()))


def test_every_field_is_set_in_the_full_record() -> None:
    assert all(getattr(FULL, f.name) not in (None, {}) for f in fields(FlowRecord) if f.name != "extra")


def test_every_field_is_saved_under_its_own_name() -> None:
    assert set(FULL.to_json()) == {f.name for f in fields(FlowRecord) if f.name != "extra"}


def test_every_field_reads_back_from_its_saved_form() -> None:
    back = FlowRecord.from_json(saved(FULL))
    assert back == FULL and back.extra == {}


def test_the_saved_form_holds_only_plain_json_values() -> None:
    doc = FULL.to_json()
    assert doc["endpoint"] == "chat.completions"
    assert doc["original_request"] == {
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [["User-Agent", "curl/8"], ["Authorization", "<x>"]],
        "body": "{}",
    }
    assert doc["images"]["endpoint"] == "images.edits" and doc["session_headers"] == [["session_id", "s-1"]]
    assert orjson.loads(orjson.dumps(doc)) == doc


# -- which keys a saved record has ------------------------------------------------------------------------------

# (id, record, keys of its saved form)
KEYS: list[tuple[str, FlowRecord, set[str]]] = [
    ("empty", FlowRecord(), set()),
    ("local answer before parsing", FlowRecord(started=1.0, client_status=401), {"started", "client_status"}),
    (
        "parsed request without trace or origin",
        FlowRecord(endpoint=Route.CHAT, original_request=ORIGINAL),
        {"endpoint", "original_request", "trace", "cors_origin"},
    ),
    ("a retry that ended well", FlowRecord(retries=["x"]), {"retries", "upstream_status"}),
    (
        "an answer without finish reason or usage",
        FlowRecord(tool_calls=[]),
        {"tool_calls", "finish_reason", "usage"},
    ),
    ("no account", FlowRecord(model="m", account=None), {"model"}),
]


@pytest.mark.parametrize("record, keys", [k[1:] for k in KEYS], ids=[k[0] for k in KEYS])
def test_a_null_is_saved_only_where_it_says_something(record: FlowRecord, keys: set[str]) -> None:
    assert set(record.to_json()) == keys
    assert FlowRecord.from_json(saved(record)) == record


def test_a_saved_null_reads_back_as_none() -> None:
    record = FlowRecord.from_json({"original_request": ORIGINAL.to_json(), "trace": None, "retries": []})
    assert (record.trace, record.extra) == (None, {})


# -- what a saved flow may hold that this version does not model -------------------------------------------------

# (id, saved form)
FOREIGN: list[tuple[str, dict[str, Any]]] = [
    ("unknown key", {"model": "m", "budget_tokens": 5}),
    ("unknown endpoint", {"endpoint": "audio.speech", "model": "m"}),
    ("wrong types", {"started": "yesterday", "stream": "yes", "tool_calls": "read", "client_status": True}),
    ("a null not written today", {"account": None, "first_token_at": None, "model": "m"}),
    ("broken nested values", {"original_request": "GET /", "images": [1], "session_headers": [["a"]]}),
]


@pytest.mark.parametrize("doc", [f[1] for f in FOREIGN], ids=[f[0] for f in FOREIGN])
def test_what_cannot_be_read_is_kept_and_saved_again(doc: dict[str, Any]) -> None:
    record = FlowRecord.from_json(doc)
    assert record.to_json() == doc


def test_a_field_written_later_wins_over_what_was_kept() -> None:
    record = FlowRecord.from_json({"client": 5})
    record.client = "curl"
    assert record.to_json() == {"client": "curl"}


def test_an_endpoint_of_another_version_is_still_named() -> None:
    record = FlowRecord.from_json({"endpoint": "audio.speech"})
    assert (record.endpoint, record.endpoint_name) == (None, "audio.speech")


@pytest.mark.parametrize(
    "doc, chat",
    [
        ({"endpoint": "chat.completions", "original_request": ORIGINAL.to_json()}, True),
        ({"original_request": ORIGINAL.to_json()}, True),  # saved before there were other endpoints
        ({"endpoint": "chat.completions"}, False),  # answered before the request was parsed
        ({"endpoint": "responses", "original_request": ORIGINAL.to_json()}, False),
        ({"endpoint": "audio.speech", "original_request": ORIGINAL.to_json()}, False),
        ({"endpoint": None, "original_request": ORIGINAL.to_json()}, False),
    ],
)
def test_is_chat(doc: dict[str, Any], chat: bool) -> None:
    assert FlowRecord.from_json(doc).is_chat is chat


# -- recording an answer -----------------------------------------------------------------------------------------


def test_record_answer_of_a_local_answer_records_only_the_status() -> None:
    record = FlowRecord()
    record.record_answer(400)
    assert (record.client_status, record.answered, record.translated) == (400, True, False)


def test_record_answer_records_the_outcome() -> None:
    record = FlowRecord()
    record.record_answer(200, Outcome("tool_calls", USAGE, ["read"], 5.0, None))
    assert (record.finish_reason, record.usage, record.tool_calls, record.first_token_at) == (
        "tool_calls",
        USAGE,
        ["read"],
        5.0,
    )
    assert record.error is None and record.translated


def test_record_answer_keeps_an_earlier_error_unless_the_answer_has_one() -> None:
    record = FlowRecord(error="earlier")
    record.record_answer(200, Outcome())
    assert record.error == "earlier"
    record.record_answer(200, Outcome(error="Try again later."))
    assert record.error == "Try again later."


# -- the record in a flow -----------------------------------------------------------------------------------------


def test_record_of_a_flow_without_one() -> None:
    f = tflow.tflow()
    assert record_of(f) is None and record_of(object()) is None
    f.metadata[META] = {}
    assert record_of(f) is None


def test_record_of_a_flow_read_from_a_file_reads_the_saved_form_once() -> None:
    f = tflow.tflow()
    f.metadata[META] = {"endpoint": "models", "client_status": 200}
    record = record_of(f)
    assert record is not None and record.endpoint is Route.MODELS
    assert record_of(f) is record and f.metadata[META] is record


def test_set_record() -> None:
    f = tflow.tflow()
    assert set_record(f, FULL) is FULL and record_of(f) is FULL


# -- how mitmproxy saves it (a test of what the gateway relies on in mitmproxy) ------------------------------------


def test_mitmproxy_saves_the_json_form() -> None:
    """`Flow.get_state()` deep-copies the metadata: the record answers with its JSON form (and mitmproxy's file
    format could not hold the object: a change there makes saving flows fail, caught here)."""
    f = set_record_flow(FULL)
    state = f.get_state()["metadata"][META]
    assert type(state) is dict and state == FULL.to_json()


def test_a_flow_written_and_read_back_holds_the_same_record() -> None:
    f = set_record_flow(FULL)
    buffer = io.BytesIO()
    mitmproxy_io.FlowWriter(buffer).add(f)
    buffer.seek(0)
    (back,) = mitmproxy_io.FlowReader(buffer).stream()
    assert back.metadata[META] == FULL.to_json()
    assert record_of(back) == FULL


def test_a_copied_flow_gets_its_own_record() -> None:
    f = set_record_flow(FULL)
    copy = f.copy()
    record = record_of(copy)
    assert record == FULL and record is not FULL
    assert record is not None and record.original_request is not FULL.original_request


@pytest.mark.parametrize("expression, matches", [("~meta upstream_status", True), ("~meta models_source", False)])
def test_meta_filters_see_the_saved_keys(expression: str, matches: bool) -> None:
    record = FlowRecord(model="m", upstream_status=429)
    live, loaded = set_record_flow(record), set_record_flow(record)
    loaded.metadata[META] = record.to_json()
    assert flowfilter.match(expression, live) is flowfilter.match(expression, loaded) is matches


def set_record_flow(record: FlowRecord) -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    set_record(f, record)
    return f
