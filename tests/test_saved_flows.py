"""Flows saved before the flow record existed still load and show: `codex.annotate`, the Chat view and
scripts/replay_capture.py's reader, on tests/fixtures/saved_flows/pre_record.flows (see record.py there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from codex_gateway.cli import replay as replay_capture
from codex_gateway.flow_record import META
from codex_gateway.flow_record import FlowRecord
from codex_gateway.inspect import commands
from codex_gateway.inspect.contentviews import register
from codex_gateway.inspect.summary import annotate
from mitmproxy import contentviews
from mitmproxy import http
from mitmproxy import io
from mitmproxy.test import taddons

from tests.fixtures.saved_flows.record import TRACE

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "saved_flows" / "pre_record.flows"

# What each flow of the fixture is, in file order: (kind, request path as sent upstream or answered locally).
KINDS = [
    ("chat streamed tool call", "/backend-api/codex/responses"),
    ("chat buffered", "/backend-api/codex/responses"),
    ("chat upstream 429", "/backend-api/codex/responses"),
    ("chat error event", "/backend-api/codex/responses"),
    ("chat 401 refreshed and retried", "/backend-api/codex/responses"),
    ("chat stream cut by upstream", "/backend-api/codex/responses"),
    ("chat client disconnected", "/backend-api/codex/responses"),
    ("models", "/v1/models"),
    ("chat bad request", "/v1/chat/completions"),
    ("wrong gateway key", "/v1/chat/completions"),
    ("unknown path", "/v1/embeddings"),
    ("responses streamed", "/backend-api/codex/responses"),
    ("responses buffered", "/backend-api/codex/responses"),
    ("responses compact", "/backend-api/codex/responses/compact"),
    ("images generation", "/backend-api/codex/responses"),
    ("images edit", "/backend-api/codex/responses"),
]
CHAT = [k for k, _ in KINDS if k.startswith("chat ")]


def read_fixture() -> list[http.HTTPFlow]:
    with FIXTURE.open("rb") as f:
        flows = [fl for fl in io.FlowReader(f).stream() if isinstance(fl, http.HTTPFlow)]
    assert [fl.request.path for fl in flows] == [path for _, path in KINDS]
    return flows


@pytest.fixture
def flows() -> list[http.HTTPFlow]:
    return read_fixture()


@pytest.fixture
def by_kind(flows: list[http.HTTPFlow]) -> dict[str, http.HTTPFlow]:
    return {kind: f for (kind, _), f in zip(KINDS, flows, strict=True)}


def test_the_fixture_holds_the_metadata_as_it_was_saved(flows: list[http.HTTPFlow]) -> None:
    assert all(type(f.metadata[META]) is dict for f in flows)


def test_every_saved_record_reads_back_to_the_same_json(flows: list[http.HTTPFlow]) -> None:
    for (kind, _), f in zip(KINDS, flows, strict=True):
        saved = f.metadata[META]
        record = FlowRecord.from_json(saved)
        assert (record.to_json(), record.extra) == (saved, {}), kind


def test_a_saved_flow_written_again_holds_the_same_metadata(flows: list[http.HTTPFlow], tmp_path: Path) -> None:
    before = [f.metadata[META] for f in flows]
    for f in flows:
        annotate(f)  # reads the records, so the flows hold FlowRecords when written
    path = tmp_path / "again.flows"
    with path.open("wb") as out:
        writer = io.FlowWriter(out)
        for f in flows:
            writer.add(f)
    with path.open("rb") as f:
        after = [fl.metadata[META] for fl in io.FlowReader(f).stream()]
    assert after == before


# -- codex.annotate ------------------------------------------------------------------------------------------------


class _Wiring:
    def load(self, loader: Any) -> None:
        commands.load(loader)


def test_codex_annotate_gives_the_saved_summaries_again(by_kind: dict[str, http.HTTPFlow]) -> None:
    saved = {kind: (f.comment, f.marked) for kind, f in by_kind.items()}
    for f in by_kind.values():
        f.comment, f.marked = "", ""
    with taddons.context() as tctx:
        tctx.master.addons.add(_Wiring())
        tctx.master.commands.call("codex.annotate", list(by_kind.values()))
    assert {kind: (by_kind[kind].comment, by_kind[kind].marked) for kind in CHAT} == {k: saved[k] for k in CHAT}
    assert saved["chat stream cut by upstream"][0].startswith("FAILED upstream cut the answer off (")


def test_annotate_gives_the_saved_summary_of_every_gateway_flow(by_kind: dict[str, http.HTTPFlow]) -> None:
    for kind, f in by_kind.items():
        comment, marked = f.comment, f.marked
        f.comment, f.marked = "", ""
        annotate(f)
        assert (f.comment, f.marked) == (comment, marked), kind


def test_codex_usage_and_runs_over_the_saved_flows(flows: list[http.HTTPFlow]) -> None:
    """The tables the code before the flow record gave for this file."""
    records = [record for _, record in commands.chat_records(flows)]
    assert commands.usage_table(records) == "\n".join(
        [
            "model    account           requests  failed  input  cached  output  reasoning  total",
            "-------  ----------------  --------  ------  -----  ------  ------  ---------  -----",
            "?        ?                        1       1      0       0       0          0      0",
            "gpt-5.4  user@example.com         7       4  1,222   1,024      45         12  1,267",
            "total                             8       5  1,222   1,024      45         12  1,267",
        ]
    )
    assert commands.runs_table(records) == "\n".join(
        [
            "run" + " " * 31 + "client                        requests  failed  input  output  tool calls",
            "-" * 32 + "  ----------------------------  --------  ------  -----  ------  ----------",
            f"{TRACE}  OpenClaw                             2       0  1,211      40  read",
            "-" + " " * 33 + "OpenClaw,python-httpx/0.28.1         6       5     11       5  -",
        ]
    )


# -- the Chat view -------------------------------------------------------------------------------------------------


@pytest.fixture
def views() -> Iterator[None]:
    register()
    with taddons.context():  # make_metadata reads ctx.options
        yield


# (kind, what the Chat view's text holds)
CHAT_VIEWS = [
    ("chat streamed tool call", ["# The client's answer (streamed, 7 chunks + [DONE])", "    name: read"]),
    ("chat buffered", ["# The client's answer (one chat.completion)", "content: Hello"]),
    ("chat upstream 429", ["translated from the upstream error", "  status: 429", '  message: "Slow down."']),
    ("chat error event", ["(streamed, 2 chunks)", "content: Par", '  message: "Try again later."']),
    ("chat 401 refreshed and retried", ["(one chat.completion)", "content: again"]),
    ("chat bad request", ["# The client's answer (an error); as sent", "  status: 400"]),
]


@pytest.mark.parametrize("kind, lines", CHAT_VIEWS, ids=[k for k, _ in CHAT_VIEWS])
@pytest.mark.usefixtures("views")
def test_the_chat_view_shows_a_saved_chat_flow(by_kind: dict[str, http.HTTPFlow], kind: str, lines: list[str]) -> None:
    f = by_kind[kind]
    assert f.response is not None
    result = contentviews.prettify_message(f.response, f)
    assert result.view_name == "Chat"
    assert all(line in result.text for line in lines), result.text


@pytest.mark.usefixtures("views")
def test_other_saved_gateway_flows_keep_their_views(by_kind: dict[str, http.HTTPFlow]) -> None:
    names = {}
    for kind in ("responses streamed", "images generation", "models", "responses compact"):
        f = by_kind[kind]
        assert f.response is not None
        names[kind] = contentviews.prettify_message(f.response, f).view_name
    assert names == {
        "responses streamed": "Codex SSE",
        "images generation": "Codex SSE",
        "models": "JSON",
        "responses compact": "JSON",
    }


# -- scripts/replay_capture.py's reader ----------------------------------------------------------------------------


def test_replay_capture_reads_the_saved_chat_requests() -> None:
    recordings = replay_capture.load_recordings([FIXTURE])
    got = {
        r.name: (r.include_usage, r.answer and (r.answer.status, r.answer.finish_reason, r.answer.tool_calls), r.note)
        for r in recordings
    }
    assert got == {
        "pre_record#0": (True, (200, "tool_calls", ["read"]), ""),
        "pre_record#1": (False, (200, "stop", []), ""),
        "pre_record#2": (False, (429, None, []), ""),
        "pre_record#3": (False, (200, None, []), ""),
        "pre_record#4": (False, (200, "stop", []), ""),
        "pre_record#5": (
            False,
            None,
            "no recorded answer (HTTP/1 protocol error: peer closed connection without sending complete message"
            " body (incomplete chunked read))",
        ),
        "pre_record#6": (False, None, "no recorded answer (Client disconnected.)"),
        "pre_record#8": (False, (400, None, []), ""),
        "pre_record#9": (False, (401, None, []), ""),
    }


def test_replay_capture_takes_the_clients_request_from_the_saved_record() -> None:
    first = replay_capture.load_recordings([FIXTURE])[0]
    assert first.body.startswith(b'{"model":"gpt-5.4","messages":[{"role":"system"')
    headers = dict(first.headers)
    assert headers["Authorization"] == "<redacted>" and headers["traceparent"].startswith("00-0af7651916cd43dd")
