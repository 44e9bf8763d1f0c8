"""Inspection tools for mitmproxy's console and mitmweb's command bar, plus the wiring of this package's views.

Commands (each takes flows: `@all`, `@focus`, `@marked`, or a filter such as `~comment OpenClaw`):

- `codex.usage <flows> [--since 7d] [--until …] [--by model|day|account|client|run]`: a token table per model and
  account (requests, failures, input/cached/output/reasoning tokens) over the gateway flows among them; with
  `--since` or `--until`, from the request log (`gateway_home/usage.sqlite3`) instead, flows not in view included.
- `codex.summary <flows>`: one line per gateway flow (time and summary), e.g. to copy into a bug report.
- `codex.runs <flows> [--since 7d] [--until …]`: requests grouped by run (OpenClaw's `traceparent` trace id): tool
  calls and tokens; with `--since`/`--until`, from the request log.
- `codex.annotate <flows>`: recompute comments and marks (e.g. for flows read from an older capture).

`load(loader)` registers the commands and the content views; `running()` adds the `comment` column to mitmweb's
flow list. The gateway addon calls both from its own `load` and `running` hooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from mitmproxy import command
from mitmproxy import ctx
from mitmproxy import flow
from mitmproxy import http
from mitmproxy.hooks import UpdateHook

from ..flow_record import FlowRecord
from . import contentviews
from . import usage_report
from .summary import annotate as annotate_flow
from .summary import chat_record_of

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "load",
    "running",
    "use_database",
    "usage_table",
    "summary_lines",
    "runs_table",
    "usage",
    "summary",
    "runs",
    "annotate",
    "parse_range",
]

WEB_COLUMN = "comment"
_database: Path | None = None  # the request log, set by the gateway's configure (None: off)


def use_database(path: Path | None) -> None:
    global _database
    _database = path


# -- pure helpers over flow records ----------------------------------------------------------------------


def chat_records(flows: Iterable[flow.Flow]) -> list[tuple[flow.Flow, FlowRecord]]:
    """The gateway chat flows among `flows`, with their records."""
    return [(f, record) for f in flows if (record := chat_record_of(f)) is not None]


@dataclass
class UsageRow:
    requests: int = 0
    failed: int = 0
    prompt: int = 0
    cached: int = 0
    completion: int = 0
    reasoning: int = 0

    def add(self, record: FlowRecord) -> None:
        self.requests += 1
        if record.failure or record.error:
            self.failed += 1
        usage = record.usage
        if usage is not None:
            self.prompt += int(usage.get("prompt_tokens") or 0)
            self.completion += int(usage.get("completion_tokens") or 0)
            self.cached += int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
            self.reasoning += int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)

    def cells(self) -> list[str]:
        return [
            str(self.requests),
            str(self.failed),
            f"{self.prompt:,}",
            f"{self.cached:,}",
            f"{self.completion:,}",
            f"{self.reasoning:,}",
            f"{self.prompt + self.completion:,}",
        ]


def usage_table(records: Iterable[FlowRecord]) -> str:
    """Token usage per (model, account), with a total row; failed requests count as requests too."""
    rows: dict[tuple[str, str], UsageRow] = {}
    total = UsageRow()
    for record in records:
        key = (record.model or "?", record.account or "?")
        rows.setdefault(key, UsageRow()).add(record)
        total.add(record)
    header = ["model", "account", "requests", "failed", "input", "cached", "output", "reasoning", "total"]
    body = [[model, account, *row.cells()] for (model, account), row in sorted(rows.items())]
    return _table(header, [*body, ["total", "", *total.cells()]] if len(body) != 1 else body)


def summary_lines(items: Iterable[tuple[flow.Flow, FlowRecord]]) -> str:
    lines = []
    for f, record in items:
        started = record.started or getattr(getattr(f, "request", None), "timestamp_start", 0) or 0
        stamp = time.strftime("%H:%M:%S", time.localtime(started))
        mark = "!" if record.failure else " "
        lines.append(f"{stamp} {mark} {f.comment}")
    return "\n".join(lines)


def runs_table(records: Iterable[FlowRecord]) -> str:
    """Requests grouped by run (trace id; requests without one are grouped as "-"), in order of appearance."""
    runs: dict[str, dict[str, Any]] = {}
    for record in records:
        run = runs.setdefault(record.trace or "-", {"client": set(), "row": UsageRow(), "calls": []})
        run["client"].add(record.client or "?")
        run["row"].add(record)
        run["calls"] += record.tool_calls or []
    header = ["run", "client", "requests", "failed", "input", "output", "tool calls"]
    body = []
    for trace, run in runs.items():
        row: UsageRow = run["row"]
        calls = ", ".join(run["calls"]) or "-"
        client = ",".join(sorted(run["client"]))
        body.append(
            [trace, client, str(row.requests), str(row.failed), f"{row.prompt:,}", f"{row.completion:,}", calls]
        )
    return _table(header, body, left={0, 1, 6})


def _table(header: list[str], rows: list[list[str]], left: frozenset[int] | set[int] = frozenset({0, 1})) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = (c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


# -- commands ------------------------------------------------------------------------------------------------


@command.command("codex.usage")
def usage(flows: Sequence[flow.Flow], *options: str) -> str:
    """Token usage of the given gateway flows, per model and account; with --since/--until, from the request log."""
    return _report(flows, lambda items: usage_table(r for _, r in items), options, _usage_from_log)


@command.command("codex.summary")
def summary(flows: Sequence[flow.Flow]) -> str:
    """One summary line per gateway flow."""
    return _report(flows, summary_lines)


@command.command("codex.runs")
def runs(flows: Sequence[flow.Flow], *options: str) -> str:
    """Gateway flows grouped by agent run (the traceparent trace id); with --since/--until, from the request log."""
    return _report(flows, lambda items: runs_table(r for _, r in items), options, _runs_from_log)


LogReport = Callable[["sqlite3.Connection", float, float, str], str]


def _report(
    flows: Sequence[flow.Flow],
    render: Callable[[list[tuple[flow.Flow, FlowRecord]]], str],
    options: Sequence[str] = (),
    from_log: LogReport | None = None,
) -> str:
    """`render` over the gateway chat flows among `flows`, or a note that there are none; with --since/--until
    among `options`, `from_log` over the request log instead."""
    if from_log is not None:
        try:
            span = parse_range(options)
        except ValueError as e:
            return str(e)
        if span is not None:
            return _from_database(lambda conn: from_log(conn, *span))
    items = chat_records(flows)
    return render(items) if items else "no gateway chat flows selected"


def _usage_from_log(conn: sqlite3.Connection, since: float, until: float, by: str) -> str:
    summaries = usage_report.summarize(conn, since, until, by)
    return usage_report.format_table(summaries, by, usage_report.overall(conn, since, until))


def _runs_from_log(conn: sqlite3.Connection, since: float, until: float, by: str) -> str:
    return _db_runs_table(usage_report.runs(conn, since, until))


def parse_range(options: Sequence[str], now: float | None = None) -> tuple[float, float, str] | None:
    """`--since 7d`, `--since=2026-11-01`, `--until …`, `--by day` (also without the dashes) → (since, until, by);
    None when neither --since nor --until is given (the flows in view answer then). Raises ValueError."""
    values: dict[str, str] = {}
    pending: str | None = None
    for option in options:
        if pending is not None:
            values[pending], pending = option, None
            continue
        name, eq, value = option.lstrip("-").partition("=")
        if name not in ("since", "until", "by"):
            raise ValueError(f"unknown option {option!r}: use --since 7d, --until 2026-11-01, --by model")
        if eq:
            values[name] = value
        else:
            pending = name
    if pending is not None:
        raise ValueError(f"--{pending} needs a value")
    if "since" not in values and "until" not in values:
        return None
    now = time.time() if now is None else now
    by = values.get("by", "model")
    if by not in usage_report.GROUPS:
        raise ValueError(f"--by must be one of {', '.join(usage_report.GROUPS)}")
    since = usage_report.parse_when(values["since"], now) if "since" in values else 0.0
    until = usage_report.parse_when(values["until"], now, end=True) if "until" in values else now + 1
    usage_report.check_range(since, until)
    return since, until, by


def _from_database(report: Callable[[sqlite3.Connection], str]) -> str:
    """A report from the request log (read here, on the caller's thread: a command is one person's click)."""
    if _database is None:
        return "the request log is off (gateway_usage_log=false)"
    try:
        return usage_report.read_log(_database, report)
    except usage_report.LogUnreadable as e:
        return f"cannot read the request log {_database}: {e}"


def _db_runs_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no requests in this time range"
    header = ["run", "client", "requests", "failed", "input", "output", "tool calls"]
    body = [
        [
            str(r["run"]),  # whole: trace ids may share a prefix (a timestamp)
            str(r["clients"] or "?"),
            str(r["requests"]),
            str(r["failures"] or 0),
            f"{r['input_tokens'] or 0:,}",
            f"{r['output_tokens'] or 0:,}",
            str(r["tool_calls"] or 0),
        ]
        for r in rows
    ]
    return _table(header, body, left={0, 1})


@command.command("codex.annotate")
def annotate(flows: Sequence[flow.Flow]) -> None:
    """Recompute the summary comment and failure mark of gateway flows."""
    updated = []
    for f, _ in chat_records(flows):
        assert isinstance(f, http.HTTPFlow)
        annotate_flow(f)
        updated.append(f)
    ctx.master.addons.trigger(UpdateHook(updated))


COMMANDS = {"codex.usage": usage, "codex.summary": summary, "codex.runs": runs, "codex.annotate": annotate}


# -- wiring --------------------------------------------------------------------------------------------------


def load(loader: Any) -> None:
    """From the gateway's `load` hook: registers the commands and the content views."""
    for path, func in COMMANDS.items():
        loader.add_command(path, func)
    contentviews.register()


def running() -> None:
    """From the gateway's `running` hook: under mitmweb, shows the summary comment as a flow-list column."""
    if "web_columns" in ctx.options and WEB_COLUMN not in ctx.options.web_columns:
        ctx.options.update(web_columns=[*ctx.options.web_columns, WEB_COLUMN])
