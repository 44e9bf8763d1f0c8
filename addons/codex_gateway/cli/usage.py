"""Usage report from the gateway's request log (`gateway_home/usage.sqlite3`): requests, failures, tokens by kind
and time to first token (p50/p90 of streamed answers), grouped by day, model, account, client or run.

    codex-gateway usage                          # the last 7 days, by model
    codex-gateway usage --since 30d --by day
    codex-gateway usage --since 2026-11-01 --until 2026-11-30 --by account --csv
    codex-gateway usage --by run --json
    .venv/bin/python scripts/usage.py …          (the same, from a checkout)

--since/--until take `7d`, `12h`, `30m`, `2w` (before now), a local date (`--until 2026-11-30` includes that day)
or a date-time `2026-11-01T08:00`. `--by model` groups by the model that served each request (the one asked for
when none did), as /metrics does. The log holds labels (emails), never tokens. Exit status 1: a time it cannot
read; 2: a range that ends before it starts, or no log to read.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from ..accounts.auth_file import default_gateway_home
from ..inspect import usage_report
from ..inspect.usage_row import DB_NAME
from .args import Parser
from .args import fail

__all__ = ["main"]


def main(argv: list[str] | None = None, prog: str = "codex-gateway usage") -> int:
    args = _parser(prog).parse_args(argv)
    now = time.time()
    try:
        since = usage_report.parse_when(args.since, now)
        until = usage_report.parse_when(args.until, now, end=True) if args.until else now + 1
    except ValueError as e:
        return fail(prog, str(e))
    try:
        usage_report.check_range(since, until)
    except ValueError as e:
        return fail(prog, str(e), 2)
    path = Path(args.db) if args.db else _home(args.gateway_home) / DB_NAME
    try:
        summaries, total = usage_report.read_log(
            path,
            lambda conn: (
                usage_report.summarize(conn, since, until, args.by),
                usage_report.overall(conn, since, until),
            ),
        )
    except usage_report.LogUnreadable as e:
        return fail(prog, f"cannot read the request log: {e}", 2)
    if args.json:
        print(usage_report.format_json(summaries, args.by, since, until))
    elif args.csv:
        sys.stdout.write(usage_report.format_csv(summaries, args.by))
    else:
        print(f"{path}: requests finished {_local(since)} to {_local(until)}, by {args.by}\n")
        print(usage_report.format_table(summaries, args.by, total))
    return 0


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _home(given: str | None) -> Path:
    return Path(given).expanduser() if given else default_gateway_home()


def _parser(prog: str) -> Parser:
    parser = Parser(prog=prog, description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--since", default="7d", help="start: 7d, 12h, 2026-11-01, … (default 7d)")
    parser.add_argument("--until", help="end: the same forms (default now; a bare date includes that day)")
    parser.add_argument("--by", choices=list(usage_report.GROUPS), default="model", help="group rows (default model)")
    parser.add_argument("--gateway-home", help="gateway state directory (env CODEX_GATEWAY_HOME; ~/.codex-gateway)")
    parser.add_argument("--db", help="the database file itself (default: gateway_home/usage.sqlite3)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document")
    form.add_argument("--csv", action="store_true", help="CSV with a header line")
    return parser
