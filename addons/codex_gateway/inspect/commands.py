"""Inspection tools for mitmproxy's console and mitmweb's command bar, plus the wiring of this package's views.

Commands (each takes flows: `@all`, `@focus`, `@marked`, or a filter such as `~comment OpenClaw`):

- `codex.usage <flows>`: a token table per model and account (requests, failures, input/cached/output/reasoning
  tokens) over the gateway flows among them.
- `codex.summary <flows>`: one line per gateway flow (time and summary), e.g. to copy into a bug report.
- `codex.runs <flows>`: requests grouped by run (OpenClaw's `traceparent` trace id): tool calls and tokens.
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
from typing import Any

from mitmproxy import command
from mitmproxy import ctx
from mitmproxy import flow
from mitmproxy import http
from mitmproxy.hooks import UpdateHook

from ..flow_record import FlowRecord
from . import contentviews
from .summary import annotate as annotate_flow
from .summary import chat_record_of

__all__ = ["load", "running", "usage_table", "summary_lines", "runs_table", "usage", "summary", "runs", "annotate"]

WEB_COLUMN = "comment"


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
            [trace[:16], client, str(row.requests), str(row.failed), f"{row.prompt:,}", f"{row.completion:,}", calls]
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
def usage(flows: Sequence[flow.Flow]) -> str:
    """Token usage of the given gateway flows, per model and account."""
    return _report(flows, lambda items: usage_table(r for _, r in items))


@command.command("codex.summary")
def summary(flows: Sequence[flow.Flow]) -> str:
    """One summary line per gateway flow."""
    return _report(flows, summary_lines)


@command.command("codex.runs")
def runs(flows: Sequence[flow.Flow]) -> str:
    """Gateway flows grouped by agent run (the traceparent trace id)."""
    return _report(flows, lambda items: runs_table(r for _, r in items))


def _report(flows: Sequence[flow.Flow], render: Callable[[list[tuple[flow.Flow, FlowRecord]]], str]) -> str:
    """`render` over the gateway chat flows among `flows`, or a note that there are none."""
    items = chat_records(flows)
    return render(items) if items else "no gateway chat flows selected"


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
