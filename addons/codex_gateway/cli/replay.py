"""Re-send every chat request of a capture through a running gateway and compare the answers' shapes.

    codex-gateway replay ../shared/captures/openclaw --gateway http://127.0.0.1:8787
    codex-gateway replay sessions.flows --api-key "$KEY" --json
    .venv/bin/python scripts/replay_capture.py …          (the same, from a checkout)

A capture is a mitmproxy flow file (or a directory of `*.mitm` / `*.flows` files) holding either

- a client's own traffic to an OpenAI-compatible provider (`POST /v1/chat/completions` and the answer it got),
  like the OpenClaw sessions in ../shared/captures/openclaw, or
- flows saved by the gateway itself (`-w`): the client's request is then taken from the flow's record
  (`codex_gateway.flow_record`, its `original_request`), and the recorded answer is rebuilt from the raw upstream
  body exactly as the gateway translated it.

Per request it prints the status, the time, the finish reason, the tool calls, and whether the answer has the
recorded shape (same finish reason, same number and names of tool calls, text present or not), is a valid chunk
sequence, and carries a usage chunk exactly when `stream_options.include_usage` was set. A recorded error that
is answered with 200 now is reported as such and is not a failure. Exit status: 0 when nothing mismatched, 1 on
mismatches, 2 when the capture holds no chat request or the gateway cannot be reached.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import httpx
import orjson
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy import io

from ..chat.answer import buffered_answer
from ..chat.shape import ChatShape
from ..chat.shape import shape_of_answer
from ..flow_record import FlowRecord
from ..flow_record import OriginalRequest
from ..flow_record import record_of
from ..http.endpoints import chat_options
from ..http.headers import REDACTED
from .args import Parser
from .progress import Progress

CHAT_PATH = "/v1/chat/completions"
_SKIP_HEADERS = {"host", "content-length", "connection", "accept-encoding", "transfer-encoding", "keep-alive"}


@dataclass
class Recording:
    """One recorded chat request and what its client got (None: no answer was recorded)."""

    name: str
    headers: list[tuple[str, str]]
    body: bytes
    include_usage: bool
    answer: ChatShape | None
    note: str = ""


@dataclass
class Result:
    name: str
    status: int | None
    seconds: float
    finish_reason: str | None
    tool_calls: list[str]
    verdict: str  # "same shape", "recorded error, answered 200 now", ..., or "MISMATCH"
    mismatch: bool
    details: list[str] = field(default_factory=list)


# -- reading captures -------------------------------------------------------------------------------------


def capture_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".mitm", ".flows"))
        else:
            files.append(path)
    return files


def load_recordings(paths: list[Path]) -> list[Recording]:
    out: list[Recording] = []
    for path in capture_files(paths):
        with path.open("rb") as f:
            for index, flow in enumerate(io.FlowReader(f).stream()):
                if isinstance(flow, http.HTTPFlow) and (rec := recording_of(flow, f"{path.stem}#{index}")):
                    out.append(rec)
    return out


def recording_of(flow: http.HTTPFlow, name: str) -> Recording | None:
    record = record_of(flow)
    if record is not None and record.original_request is not None:
        return _gateway_recording(flow, record, record.original_request, name)
    if flow.request.method != "POST" or flow.request.path.split("?", 1)[0] != CHAT_PATH:
        return None
    body = flow.request.get_content(strict=False) or b""
    answer = None
    if flow.response is not None and flow.response.raw_content is not None:
        content_type = flow.response.headers.get("content-type", "")
        answer = shape_of_answer(
            flow.response.status_code, content_type, flow.response.get_content(strict=False) or b""
        )
    note = "" if answer is not None else _no_answer(flow)
    headers = [(k, v) for k, v in flow.request.headers.items(multi=True)]
    return Recording(name, headers, body, _include_usage(body), answer, note)


def _gateway_recording(
    flow: http.HTTPFlow, record: FlowRecord, original: OriginalRequest, name: str
) -> Recording | None:
    if original.method != "POST" or original.path.split("?", 1)[0] != CHAT_PATH:
        return None
    body = (original.body or "").encode()
    answer = None
    note = ""
    response = flow.response
    if record.model is None:  # answered by the gateway before translation (bad request, key): the client's answer
        if response is not None and response.raw_content is not None:
            answer = shape_of_answer(
                response.status_code, response.headers.get("content-type", ""), response.content or b""
            )
    elif flow.error is None and response is not None and response.raw_content is not None:
        # Saved before the client's answer was written in: the raw upstream body, translated as the gateway did.
        translated = buffered_answer(chat_options(record), response.status_code, response.headers, response.raw_content)
        answer = shape_of_answer(translated.status, translated.content_type, translated.body)
    if answer is None:
        note = _no_answer(flow)
    return Recording(name, list(original.headers), body, _include_usage(body), answer, note)


def _no_answer(flow: http.HTTPFlow) -> str:
    return f"no recorded answer ({flow.error.msg})" if flow.error else "no recorded answer"


def _include_usage(body: bytes) -> bool:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return False
    options = doc.get("stream_options") if isinstance(doc, dict) else None
    return bool(isinstance(options, dict) and options.get("include_usage")) and bool(doc.get("stream"))


# -- replaying ------------------------------------------------------------------------------------------------


def request_headers(rec: Recording, api_key: str | None) -> list[tuple[str, str]]:
    out = []
    for name, value in rec.headers:
        lower = name.lower()
        if lower in _SKIP_HEADERS or (lower == "authorization" and (api_key or value == REDACTED)):
            continue
        if value == REDACTED:
            continue
        out.append((name, value))
    if api_key:
        out.append(("Authorization", f"Bearer {api_key}"))
    return out


def replay_one(client: httpx.Client, rec: Recording, api_key: str | None) -> Result:
    started = time.monotonic()
    try:
        response = client.post(CHAT_PATH, content=rec.body, headers=request_headers(rec, api_key))
        body = response.read()
    except httpx.HTTPError as e:
        return Result(
            rec.name, None, time.monotonic() - started, None, [], "MISMATCH", True, [f"{type(e).__name__}: {e}"]
        )
    seconds = time.monotonic() - started
    content_type = response.headers.get("content-type", "")
    include_usage = rec.include_usage if response.status_code == 200 else None
    now = shape_of_answer(response.status_code, content_type, body, include_usage=include_usage)
    verdict, mismatch, details = compare(now, rec.answer, rec.note)
    return Result(
        rec.name, response.status_code, seconds, now.finish_reason, now.tool_calls, verdict, mismatch, details
    )


def compare(now: ChatShape, recorded: ChatShape | None, note: str = "") -> tuple[str, bool, list[str]]:
    """(verdict, is a mismatch, details) for an answer against the recorded one."""
    problems = [f"invalid answer: {p}" for p in now.problems]
    if recorded is None:
        return (
            (note or "no recorded answer") + ("; " + "; ".join(problems) if problems else ""),
            bool(problems),
            problems,
        )
    if recorded.status >= 400 or recorded.error is not None:  # an HTTP error, or an error event in a stream
        if now.status == 200 and now.error is None:
            what = f"error {recorded.status}" if recorded.status >= 400 else "error event"
            return f"recorded {what}, answered 200 now", bool(problems), problems
        verdict = (
            "error as recorded" if now.status == recorded.status else f"error {now.status} (recorded {recorded.status})"
        )
        return verdict, False, [f"error now: {now.error}"] if now.error else []
    if now.status != 200:
        return "MISMATCH", True, [f"recorded 200, answered {now.status} now: {now.error}"]
    diffs = problems + now.same_as(recorded)
    return ("MISMATCH" if diffs else "same shape"), bool(diffs), diffs


# -- command line ---------------------------------------------------------------------------------------------


def format_result(r: Result) -> str:
    status = str(r.status) if r.status is not None else "---"
    tools = ",".join(r.tool_calls) or "-"
    line = (
        f"{r.name:<24} {status:>3} {r.seconds:7.2f}s  finish={r.finish_reason or '-':<10} tools={tools:<16} {r.verdict}"
    )
    return "\n".join([line, *(f"    {d}" for d in r.details)])


def main(argv: list[str] | None = None, prog: str = "codex-gateway replay") -> int:
    parser = Parser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("captures", nargs="+", type=Path, help="flow files or directories of *.mitm / *.flows")
    parser.add_argument("--gateway", default="http://127.0.0.1:8787", help="the gateway's base URL")
    parser.add_argument("--api-key", help="gateway key sent as `Authorization: Bearer` (replaces the recorded one)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print one JSON object per request")
    args = parser.parse_args(argv)

    missing = [str(p) for p in args.captures if not p.exists()]
    if missing:
        print(f"{prog}: error: no such capture: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        recordings = load_recordings(args.captures)
    except (OSError, exceptions.FlowReadException) as e:
        print(f"{prog}: error: cannot read the capture: {e}", file=sys.stderr)
        return 2
    if not recordings:
        print(f"{prog}: error: no chat requests in the capture", file=sys.stderr)
        return 2
    results = []
    # The gateway is local: a proxy from the environment (HTTPS_PROXY without NO_PROXY) must not carry these.
    with httpx.Client(base_url=args.gateway, timeout=args.timeout, trust_env=False) as client:
        try:
            client.get("/v1/models", headers={"Authorization": f"Bearer {args.api_key}"} if args.api_key else {})
        except httpx.HTTPError as e:
            print(f"{prog}: error: cannot reach the gateway at {args.gateway}: {e}", file=sys.stderr)
            return 2
        progress = Progress(len(recordings), "requests replayed")  # a bar on a terminal, under the result lines
        progress.start()
        for rec in recordings:
            result = replay_one(client, rec, args.api_key)
            results.append(result)
            progress.advance(
                orjson.dumps(asdict(result)).decode() if args.json else format_result(result), out=sys.stdout
            )
        progress.close()
    mismatches = sum(r.mismatch for r in results)
    if not args.json:
        print(f"{len(results)} requests, {mismatches} mismatches")
    return 1 if mismatches else 0
