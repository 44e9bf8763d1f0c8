"""Usage report from the gateway's request log (`gateway_home/usage.sqlite3`): requests, failures, tokens by kind
and time to first token (p50/p90 of streamed answers), grouped by day, model, account, client or run.

    .venv/bin/python scripts/usage.py                          # the last 7 days, by model
    .venv/bin/python scripts/usage.py --since 30d --by day
    .venv/bin/python scripts/usage.py --since 2026-11-01 --until 2026-11-30 --by account --csv
    .venv/bin/python scripts/usage.py --by run --json

--since/--until take `7d`, `12h`, `30m`, `2w` (before now), a local date (`--until 2026-11-30` includes that day)
or a date-time `2026-11-01T08:00`. The log holds labels (emails), never tokens. Exit status 2: no log to read.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Like addons/gateway.py: the package lives in addons/ and need not be pip-installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "addons"))

from codex_gateway.accounts.auth_file import default_gateway_home  # noqa: E402
from codex_gateway.inspect import usage_report  # noqa: E402
from codex_gateway.inspect.usage_log import DB_NAME  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    now = time.time()
    try:
        since = usage_report.parse_when(args.since, now)
        until = usage_report.parse_when(args.until, now, end=True) if args.until else now + 1
    except ValueError as e:
        print(f"usage.py: {e}", file=sys.stderr)
        return 1
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
        print(f"usage.py: cannot read the request log: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(usage_report.format_json(summaries, args.by, since, until))
    elif args.csv:
        sys.stdout.write(usage_report.format_csv(summaries, args.by))
    else:
        print(usage_report.format_table(summaries, args.by, total))
    return 0


def _home(given: str | None) -> Path:
    return Path(given).expanduser() if given else default_gateway_home()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--since", default="7d", help="start: 7d, 12h, 2026-11-01, … (default 7d)")
    parser.add_argument("--until", help="end: the same forms (default now; a bare date includes that day)")
    parser.add_argument("--by", choices=[g for g in usage_report.GROUPS if g != "total"] + ["total"], default="model")
    parser.add_argument("--gateway-home", help="gateway state directory (env CODEX_GATEWAY_HOME; ~/.codex-gateway)")
    parser.add_argument("--db", help="the database file itself (default: gateway_home/usage.sqlite3)")
    form = parser.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="one JSON document")
    form.add_argument("--csv", action="store_true", help="CSV with a header line")
    return parser


if __name__ == "__main__":
    sys.exit(main())
