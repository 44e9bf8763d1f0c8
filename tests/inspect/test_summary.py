"""flowinfo (who called, the one-line summary, failure marks, redaction) and the `codex.*` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from codex_gateway.flow_record import META
from codex_gateway.flow_record import FlowRecord
from codex_gateway.flow_record import OriginalRequest
from codex_gateway.flow_record import record_of
from codex_gateway.flow_record import set_record
from codex_gateway.http.headers import REDACTED
from codex_gateway.inspect import commands
from codex_gateway.inspect.summary import FAILED_MARK
from codex_gateway.inspect.summary import annotate
from codex_gateway.inspect.summary import chat_record_of
from codex_gateway.inspect.summary import client_name
from codex_gateway.inspect.summary import failure_of
from codex_gateway.inspect.summary import remember_upstream_body
from codex_gateway.inspect.summary import sanitized_request
from codex_gateway.inspect.summary import status_after_error
from codex_gateway.inspect.summary import summary_line
from codex_gateway.inspect.summary import trace_id
from codex_gateway.inspect.summary import upstream_body
from mitmproxy import flow
from mitmproxy import http
from mitmproxy import io
from mitmproxy.test import taddons
from mitmproxy.test import tflow
from mitmproxy.tools.web.webaddons import WebAddon

from scripts.fakes import codex_events as ev
from tests.conftest import encode_upstream

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openclaw"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OPENCLAW_SYSTEM = "<!-- openclaw:attempt:STABLE -->\nYou are a personal assistant."


# -- building gateway flows the way the addon leaves them (shared with test_contentviews) --------------------


def chat_record(**overrides: Any) -> FlowRecord:
    """The record of a chat flow whose request was translated, from its saved form (`overrides`: JSON keys)."""
    raw = orjson.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    headers = http.Headers(
        [(b"Authorization", b"Bearer gw-secret"), (b"User-Agent", b"OpenAI/JS 7.15.0"), (b"Cookie", b"sid=1")]
    )
    doc: dict[str, Any] = {
        "endpoint": "chat.completions",
        "started": 1000.0,
        "client": "OpenClaw",
        "trace": TRACE,
        "original_request": sanitized_request("POST", "/v1/chat/completions", headers, raw).to_json(),
        "model": "gpt-5.4",
        "stream": True,
        "include_usage": True,
        "stop": [],
        "dropped": ["max_completion_tokens"],
        "messages": 5,
        "tools": 14,
        "account": "user@example.com",
    }
    doc.update(overrides)
    return FlowRecord.from_json(doc)


def gateway_flow(
    body: bytes | None,
    record: FlowRecord,
    *,
    status: int = 200,
    content_type: str = "text/event-stream",
    streamed: bool = True,
) -> http.HTTPFlow:
    """A gateway flow: the upstream request, `body` as the response, and its record."""
    f = tflow.tflow(resp=True)
    f.request.method = "POST"
    f.request.path = "/backend-api/codex/responses"
    f.request.headers = http.Headers(
        [(b"Authorization", b"Bearer at-secret"), (b"ChatGPT-Account-ID", b"acct-secret"), (b"Accept", b"*/*")]
    )
    f.request.content = b'{"model":"gpt-5.4","stream":true}'
    f.response = http.Response.make(status, b"", {"content-type": content_type, "set-cookie": "__cf_bm=abc"})
    f.response.raw_content = body
    if streamed:
        f.response.stream = lambda data: [data]  # marks a streamed response, like the addon's translator
    set_record(f, record)
    return f


def upstream(events: list[dict[str, Any]]) -> bytes:
    return encode_upstream(events)


def finished_record(**overrides: Any) -> FlowRecord:
    done = {
        "client_status": 200,
        "finish_reason": "tool_calls",
        "tool_calls": ["read", "ls"],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 35,
            "total_tokens": 1235,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 12},
        },
        "first_token_at": 1000.812,
        "finished_at": 1002.3125,
    }
    return chat_record(**{**done, **overrides})


# -- who is calling ------------------------------------------------------------------------------------------


def _headers(**kw: str) -> http.Headers:
    return http.Headers(**{k.replace("_", "-"): v for k, v in kw.items()})


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        (
            _headers(user_agent="OpenAI/JS 7.15.0"),
            {"messages": [{"role": "system", "content": OPENCLAW_SYSTEM}]},
            "OpenClaw",
        ),
        (
            _headers(user_agent="OpenAI/JS 7.15.0"),
            {"messages": [{"role": "system", "content": [{"type": "text", "text": OPENCLAW_SYSTEM}]}]},
            "OpenClaw",
        ),
        (
            _headers(user_agent="OpenAI/JS 7.15.0"),
            {"messages": [{"role": "user", "content": OPENCLAW_SYSTEM}]},
            "OpenAI JS SDK",
        ),
        (
            _headers(user_agent="OpenAI/JS 7.15.0"),
            {"messages": [{"role": "system", "content": "Be terse."}]},
            "OpenAI JS SDK",
        ),
        (_headers(user_agent="OpenAI/Python 1.99.9"), None, "OpenAI Python SDK"),
        (_headers(user_agent="AsyncOpenAI/Python 1.99.9"), None, "OpenAI Python SDK"),
        (_headers(user_agent="codex_cli_rs/0.46.0 (Debian 12; x86_64) xterm"), None, "Codex CLI"),
        (_headers(user_agent="reqwest", originator="codex_cli_rs"), None, "Codex CLI"),
        (_headers(user_agent="curl/8.5.0"), b"not json", "curl"),
        (_headers(user_agent="my-agent/2.0 (linux)"), None, "my-agent/2.0"),
        (_headers(), None, "unknown client"),
    ],
)
def test_client_name(headers: http.Headers, body: Any, expected: str) -> None:
    assert client_name(headers, body) == expected


def _captured() -> list[tuple[str, int, http.HTTPFlow]]:
    out = []
    for path in sorted(CAPTURES.glob("session-*.mitm")):
        with path.open("rb") as f:
            for i, fl in enumerate(io.FlowReader(f).stream()):
                assert isinstance(fl, http.HTTPFlow)
                out.append((path.stem, i, fl))
    return out


def test_openclaw_captures_are_recognised_by_their_system_prompt() -> None:
    names = {
        (s, i): client_name(fl.request.headers, orjson.loads(fl.request.get_content() or b""))
        for s, i, fl in _captured()
    }
    # session-4 is `openclaw infer model run`: a bare prompt without OpenClaw's system prompt, so only the SDK shows.
    assert {k for k, v in names.items() if v != "OpenClaw"} == {("session-4", 0), ("session-4", 1)}
    assert names[("session-4", 0)] == "OpenAI JS SDK"


def test_openclaw_trace_id_groups_a_tool_call_with_its_follow_up() -> None:
    traces = {(s, i): trace_id(fl.request.headers) for s, i, fl in _captured()}
    assert traces[("session-1", 0)] == traces[("session-1", 1)] == "c1729d09364063822e0cb4ed76f13ad3"
    assert traces[("session-2", 0)] != traces[("session-2", 1)]  # two turns are two runs
    assert traces[("session-4", 0)] is None


@pytest.mark.parametrize(
    ("traceparent", "expected"),
    [
        (f"00-{TRACE}-00f067aa0ba902b7-01", TRACE),
        (f"00-{TRACE.upper()}-00F067AA0BA902B7-01", TRACE),  # one run, whatever the case
        (f" 00-{TRACE}-00f067aa0ba902b7-00 ", TRACE),
        (f"01-{TRACE}-00f067aa0ba902b7-01-future", TRACE),  # a later version may add fields
        (f"00-{TRACE}-00f067aa0ba902b7-01-extra", None),  # version 00 has exactly four
        (f"ff-{TRACE}-00f067aa0ba902b7-01", None),  # version ff is invalid
        (f"00-{'0' * 32}-00f067aa0ba902b7-01", None),  # the all-zero trace id is invalid
        (f"00-{TRACE}-{'0' * 16}-01", None),  # so is the all-zero parent id
        (f"00-{TRACE[:-1]}g-00f067aa0ba902b7-01", None),  # not hex
        (f"00-{TRACE[:-1]}-00f067aa0ba902b7-01", None),
        (f"00-{TRACE}-00f067aa0ba902b7", None),
        ("", None),
    ],
)
def test_trace_id(traceparent: str, expected: str | None) -> None:
    assert trace_id(http.Headers(traceparent=traceparent)) == expected


def test_sanitized_request_keeps_everything_but_credentials() -> None:
    headers = http.Headers(
        [
            (b"Authorization", b"Bearer gw-key"),
            (b"X-Api-Key", b"gw-key"),
            (b"Cookie", b"a=b"),
            (b"Proxy-Authorization", b"Basic eA=="),
            (b"User-Agent", b"curl/8.5.0"),
            (b"traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode()),
        ]
    )
    got = sanitized_request("POST", "/v1/chat/completions", headers, '{"a":"ü"}'.encode())
    assert got == OriginalRequest(
        "POST",
        "/v1/chat/completions",
        [
            ("Authorization", REDACTED),
            ("X-Api-Key", REDACTED),
            ("Cookie", REDACTED),
            ("Proxy-Authorization", REDACTED),
            ("User-Agent", "curl/8.5.0"),
            ("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01"),
        ],
        '{"a":"ü"}',
    )
    assert OriginalRequest.from_json(orjson.loads(orjson.dumps(got.to_json()))) == got  # saved with the flow


# -- failures and summaries ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "error_msg", "expected"),
    [
        (finished_record(), None, None),
        (chat_record(), "Client disconnected.", ("client_disconnect", "client disconnected")),
        (
            chat_record(),
            "HTTP/1 protocol error: peer closed connection without sending complete message body"
            " (incomplete chunked read)",
            (
                "upstream_cut",
                "upstream cut the answer off (HTTP/1 protocol error: peer closed connection without sending complete"
                " message body (incomplete chunked read))",
            ),
        ),
        (
            chat_record(),
            "[Errno 111] Connect call failed ('127.0.0.1', 9)",
            ("upstream_unreachable", "upstream unreachable ([Errno 111] Connect call failed ('127.0.0.1', 9))"),
        ),
        (chat_record(), "Connection killed.", ("killed", "connection killed")),
        (chat_record(), "something odd", ("proxy_error", "something odd")),
        (
            finished_record(client_status=429, upstream_status=429, error="limit\nreached", finish_reason=None),
            None,
            ("upstream_status", "upstream 429: limit reached"),
        ),
        (
            finished_record(
                error="The upstream stream ended before response.completed; the answer is incomplete.",
                finish_reason=None,
            ),
            None,
            ("upstream_incomplete", "upstream stream ended before response.completed"),
        ),
        (
            finished_record(error="The server had an error.", finish_reason=None),
            None,
            ("error_event", "error event: The server had an error."),
        ),
        (finished_record(upstream_status=401, retries=["401 token_expired: token refreshed, retried"]), None, None),
        (
            FlowRecord(started=1.0, client_status=401, error="Incorrect or missing gateway API key."),
            None,
            ("local", "gateway answered 401: Incorrect or missing gateway API key."),
        ),
        (
            finished_record(client_status=502, error="The gateway failed to translate the upstream answer (KeyError)."),
            None,
            ("local", "gateway answered 502: The gateway failed to translate the upstream answer (KeyError)."),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_failure_of(record: FlowRecord, error_msg: str | None, expected: tuple[str, str] | None) -> None:
    assert failure_of(record, error_msg) == expected


def test_failure_reason_is_one_clipped_line() -> None:
    kind, reason = failure_of(chat_record(), "x" * 500 + "\nsecond line") or ("", "")
    assert kind == "proxy_error" and "\n" not in reason and len(reason) == 160 and reason.endswith("…")


def test_summary_line_of_a_finished_flow() -> None:
    assert summary_line(finished_record()) == (
        "OpenClaw run 4bf92f35 | gpt-5.4 stream | 5 msgs, 14 tools | finish tool_calls (read, ls)"
        " | in 1200 (cached 1024) out 35 (reasoning 12) | ttft 812ms | total 2.31s | acct user@example.com"
        " | dropped max_completion_tokens"
    )


def test_summary_line_of_a_replayed_non_streamed_flow_without_extras() -> None:
    record = finished_record(
        stream=False, trace=None, dropped=[], finish_reason="stop", tool_calls=[], first_token_at=None, usage=None
    )
    assert summary_line(record, replayed=True) == (
        "OpenClaw (replayed) | gpt-5.4 non-stream | 5 msgs, 14 tools | finish stop | total 2.31s"
        " | acct user@example.com"
    )


def test_summary_line_of_a_retried_flow() -> None:
    record = finished_record(retries=["401 token_expired: token refreshed, retried"], dropped=[])
    assert summary_line(record).endswith(
        " | acct user@example.com | retried 1x (401 token_expired: token refreshed, retried)"
    )


def test_summary_line_of_a_models_request() -> None:
    record = FlowRecord.from_json(
        {"endpoint": "models", "client": "curl", "client_status": 200, "started": 5.0, "finished_at": 5.002}
    )
    assert summary_line(record) == "curl | models | total 2ms"


def test_summary_line_of_an_early_local_answer() -> None:
    record = FlowRecord(started=5.0, finished_at=5.0015, client="curl", failure_reason="gateway answered 401: nope")
    assert summary_line(record) == "FAILED gateway answered 401: nope | curl | total 2ms"


# -- annotate ------------------------------------------------------------------------------------------------


def test_annotate_a_successful_streamed_flow() -> None:
    f = gateway_flow(upstream(ev.text("hi")), finished_record())
    annotate(f)
    assert f.comment == summary_line(finished_record())
    assert f.marked == ""
    record = record_of(f)
    assert record is not None and (record.failure, record.failure_reason) == (None, None)


def test_annotate_marks_an_upstream_error_and_remembers_its_raw_body() -> None:
    raw = b'{"error":{"type":"usage_limit_reached","message":"limit"}}'
    record = finished_record(client_status=429, upstream_status=429, error="limit for this ChatGPT account.")
    f = gateway_flow(raw, record, status=429, content_type="application/json", streamed=False)
    annotate(f)
    assert f.marked == FAILED_MARK
    assert f.comment.startswith("FAILED upstream 429: limit for this ChatGPT account. | OpenClaw run 4bf92f35 |")
    assert (record.failure, record.failure_reason) == (
        "upstream_status",
        "upstream 429: limit for this ChatGPT account.",
    )


def test_remembered_upstream_body_outlives_the_client_answer() -> None:
    raw = b'{"error":{"type":"usage_limit_reached","message":"limit"}}'
    f = gateway_flow(raw, finished_record(), status=429, content_type="application/json", streamed=False)
    remember_upstream_body(f)
    f.response.content = b'{"error": "client answer"}'  # what AnswerWriter does afterwards
    assert upstream_body(f) == raw


def test_a_streamed_flow_keeps_its_upstream_body_in_the_flow_itself() -> None:
    f = gateway_flow(upstream(ev.text("hi")), finished_record())
    remember_upstream_body(f)
    assert upstream_body(f) is None


def test_annotate_marks_a_client_disconnect() -> None:
    f = gateway_flow(None, chat_record(error="Client disconnected.", finished_at=1001.0))
    f.error = flow.Error("Client disconnected.")
    annotate(f)
    assert f.marked == FAILED_MARK
    assert f.comment.startswith("FAILED client disconnected | OpenClaw run 4bf92f35 | gpt-5.4 stream |")
    assert f.metadata[META].failure == "client_disconnect"  # the record itself, in memory


def test_annotate_redacts_credentials_and_upstream_cookies() -> None:
    f = gateway_flow(b"x", finished_record(), streamed=False)
    annotate(f)
    assert f.request.headers["authorization"] == REDACTED
    assert f.request.headers["chatgpt-account-id"] == REDACTED
    assert f.request.headers["accept"] == "*/*"
    assert f.response is not None and "set-cookie" not in f.response.headers


def test_annotate_a_local_answer_redacts_the_clients_key_and_names_the_client() -> None:
    f = tflow.tflow(resp=True)
    f.request.headers = http.Headers(
        [(b"Authorization", b"Bearer wrong-key"), (b"Cookie", b"a=b"), (b"User-Agent", b"curl/8.5.0")]
    )
    f.metadata[META] = {
        "started": 5.0,
        "client_status": 401,
        "error": "Incorrect or missing gateway API key.",
        "finished_at": 5.001,
    }
    annotate(f)
    assert f.request.headers["authorization"] == REDACTED and f.request.headers["cookie"] == REDACTED
    assert f.marked == FAILED_MARK
    assert f.comment == "FAILED gateway answered 401: Incorrect or missing gateway API key. | curl | total 1ms"


def test_annotate_leaves_other_flows_alone() -> None:
    f = tflow.tflow(resp=True)
    f.request.headers["authorization"] = "Bearer x"
    annotate(f)
    assert (f.comment, f.marked, f.request.headers["authorization"]) == ("", "", "Bearer x")


# -- commands ------------------------------------------------------------------------------------------------


def _usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def _flows() -> list[flow.Flow]:
    records = [
        finished_record(usage=_usage(1000, 20, 800, 5)),
        finished_record(usage=_usage(1500, 30, 1000, 0), tool_calls=[], finish_reason="stop"),
        finished_record(model="gpt-5.4-mini", account="other@example.com", usage=_usage(10, 2), trace=None),
        chat_record(error="Client disconnected.", failure="client_disconnect", trace=None),
    ]
    flows: list[flow.Flow] = [gateway_flow(b"", m) for m in records]
    flows.append(tflow.tflow(resp=True))  # not a gateway flow: ignored
    return flows


def test_usage_table() -> None:
    records = [r for f in _flows() if (r := record_of(f)) is not None]
    assert commands.usage_table(records) == "\n".join(
        [
            "model         account            requests  failed  input  cached  output  reasoning  total",
            "------------  -----------------  --------  ------  -----  ------  ------  ---------  -----",
            "gpt-5.4       user@example.com          3       1  2,500   1,800      50          5  2,550",
            "gpt-5.4-mini  other@example.com         1       0     10       0       2          0     12",
            "total                                   4       1  2,510   1,800      52          5  2,562",
        ]
    )


def test_runs_table() -> None:
    records = [r for f in _flows() if (r := record_of(f)) is not None]
    assert commands.runs_table(records) == "\n".join(
        [
            "run                               client    requests  failed  input  output  tool calls",
            "--------------------------------  --------  --------  ------  -----  ------  ----------",
            f"{TRACE}  OpenClaw         2       0  2,500      50  read, ls",
            "-                                 OpenClaw         2       1     10       2  read, ls",
        ]
    )


class _Wiring:
    """Stands in for the gateway addon: calls `commands.load` from its own `load`."""

    def load(self, loader: Any) -> None:
        commands.load(loader)


def test_commands_through_mitmproxys_command_manager() -> None:
    flows = _flows()
    for f in flows:
        if isinstance(f, http.HTTPFlow):
            annotate(f)
    with taddons.context() as tctx:
        tctx.master.addons.add(_Wiring())
        manager = tctx.master.commands
        assert {"codex.usage", "codex.summary", "codex.runs", "codex.annotate"} <= set(manager.commands)
        assert manager.call("codex.usage", flows).splitlines()[-1].split() == [
            "total",
            "4",
            "1",
            "2,510",
            "1,800",
            "52",
            "5",
            "2,562",
        ]
        summary = manager.call("codex.summary", flows).splitlines()
        assert len(summary) == 4
        assert summary[3].split(" ", 2)[1:] == ["!", flows[3].comment]
        assert manager.call("codex.usage", flows[4:]) == "no gateway chat flows selected"
        flows[0].comment = "edited"
        manager.call("codex.annotate", flows)
        assert flows[0].comment.startswith("OpenClaw run 4bf92f35 | gpt-5.4 stream")


def test_running_adds_the_comment_column_only_under_mitmweb() -> None:
    with taddons.context(WebAddon()) as tctx:
        tctx.configure(tctx.master.addons.get("webaddon"), web_columns=["path", "status"])
        commands.running()
        assert tctx.options.web_columns == ["path", "status", "comment"]
        commands.running()
        assert tctx.options.web_columns == ["path", "status", "comment"]
    with taddons.context() as tctx:
        commands.running()  # mitmdump: the option does not exist, nothing happens
        assert "web_columns" not in tctx.options


def test_only_chat_flows_count_as_chat_flows() -> None:
    chat = gateway_flow(b"", finished_record())
    early = gateway_flow(b"", FlowRecord(started=1.0, client_status=401, error="key"))
    images = gateway_flow(b"", finished_record(endpoint="images.generations"))
    models = gateway_flow(b"", FlowRecord.from_json({"endpoint": "models", "client": "curl", "client_status": 200}))
    assert [chat_record_of(f) is not None for f in (chat, early, images, models, tflow.tflow())] == [
        True,
        False,
        False,
        False,
        False,
    ]


def test_sanitized_headers_decode_like_mitmproxy() -> None:
    headers = http.Headers([(b"X-Odd", b"\xff"), ("Ä-Name".encode(), b"v"), (b"AUTHORIZATION", b"k")])
    got = sanitized_request("GET", "/", headers, b"").headers
    expected = [(k, REDACTED if k.lower() == "authorization" else v) for k, v in headers.items(multi=True)]
    assert got == expected


def test_annotate_drops_every_set_cookie_and_nothing_else() -> None:
    f = tflow.tflow(resp=True)
    assert f.response is not None
    f.response.headers = http.Headers(
        [(b"Set-Cookie", b"a=1"), (b"x-request-id", b"r"), (b"set-cookie", b"b=2"), (b"content-type", b"text/plain")]
    )
    f.metadata[META] = {"client": "curl", "client_status": 200}
    annotate(f)
    assert f.response.headers.fields == ((b"x-request-id", b"r"), (b"content-type", b"text/plain"))


AFTER_ERROR = [
    # streamed status (headers sent), mitmproxy's error message, what the client got
    (200, "peer closed connection without sending complete message body", 200),  # the stream broke off
    (200, "Client disconnected.", 200),
    (None, "peer closed connection without sending complete message body", 502),  # mitmproxy's own 502 page
    (None, "server closed connection", 502),
    (None, "Connection refused", 502),
    (None, "Client disconnected.", None),  # nobody to answer
    (None, "Connection killed.", None),
]


@pytest.mark.parametrize("streamed, message, status", AFTER_ERROR)
def test_the_status_a_client_got_from_a_flow_that_ended_in_an_error(
    streamed: int | None, message: str, status: int | None
) -> None:
    assert status_after_error(streamed, message) == status
