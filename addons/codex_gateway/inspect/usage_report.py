"""Reports from the request log (pure over a sqlite3 connection): usage summaries by day, model, account, client
or run; the per-day series and the last requests the status page shows; time ranges as people type them.

Used by `scripts/usage.py`, the `codex.usage`/`codex.runs` commands (with `--since`) and the status page.
SQLite itself is loaded only when a log is opened: a gateway with `gateway_usage_log=false` never loads it.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import asdict
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import orjson

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "GROUPS",
    "Summary",
    "parse_when",
    "check_range",
    "open_log",
    "read_log",
    "LogUnreadable",
    "summarize",
    "overall",
    "runs",
    "daily_tokens",
    "daily_failures",
    "recent",
    "totals",
    "format_table",
    "format_json",
    "format_csv",
    "percentile",
]

# The model that served a request (as /metrics counts it), else the one the client asked for: an alias such as
# gpt-5.4-high, or a name the backend refused, is grouped under what actually ran.
_MODEL = "coalesce(model_served, model, '-')"
# --by → the SQL expression of the group key (a fixed table: nothing from the command line reaches the SQL)
GROUPS: dict[str, str] = {
    "day": "date(finished_at, 'unixepoch', 'localtime')",
    "model": _MODEL,
    "account": "coalesce(account, '-')",
    "client": "client",
    "run": "coalesce(run, '-')",
    "total": "'total'",
}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RANGE = "finished_at >= ? AND finished_at < ?"
_SUMMED = ("requests", "failures", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens")


@dataclass
class Summary:
    key: str
    requests: int = 0
    failures: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    ttft_p50_ms: float | None = None
    ttft_p90_ms: float | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def parse_when(text: str, now: float | None = None, *, end: bool = False) -> float:
    """`7d`, `12h`, `30m`, `2w` (that long before now), or a local date `2026-11-01` / date-time
    `2026-11-01T08:00`. A bare date as an end (`--until`) means the end of that day. Raises ValueError."""
    now = time.time() if now is None else now
    match = _RELATIVE.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            start = datetime(day.year, day.month, day.day)
            return (start + timedelta(days=1) if end else start).timestamp()
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use e.g. 7d, 12h, 2026-11-01 or 2026-11-01T08:00)") from None


def check_range(since: float, until: float) -> None:
    """Raises ValueError when the range holds no time at all (a swapped --since/--until would otherwise report
    "no requests", which reads like an answer)."""
    if until <= since:
        raise ValueError(
            f"the time range starts at {_iso(since)} and ends at {_iso(until)}: its end must be after its start"
        )


def open_log(path: Path) -> sqlite3.Connection:
    """A read-only connection to the request log; FileNotFoundError when there is none yet."""
    from .usage_log import connect  # SQLite is loaded here, when a log is read

    if not path.exists():
        raise FileNotFoundError(f"no request log at {path} (the gateway writes it with gateway_usage_log on)")
    return connect(path, write=False)


class LogUnreadable(Exception):
    """The request log could not be read (there is none yet, it is corrupt, …); the message says why, and
    `corrupt` whether SQLite found the file is not a database or a malformed one."""

    def __init__(self, message: str, *, corrupt: bool = False) -> None:
        super().__init__(message)
        self.corrupt = corrupt


def read_log[T](path: Path, report: Callable[[sqlite3.Connection], T]) -> T:
    """`report` over a read-only connection to the log at `path`, closed afterwards. Raises LogUnreadable."""
    import sqlite3

    from .usage_log import is_corrupt

    try:
        conn = open_log(path)
    except (OSError, sqlite3.Error) as e:
        message = str(e) if isinstance(e, FileNotFoundError) else f"{type(e).__name__}: {e}"
        raise LogUnreadable(message, corrupt=is_corrupt(e)) from e
    try:
        return report(conn)
    except sqlite3.Error as e:
        raise LogUnreadable(f"{type(e).__name__}: {e}", corrupt=is_corrupt(e)) from e
    finally:
        conn.close()


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of ascending values (None when empty)."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def overall(conn: sqlite3.Connection, since: float, until: float) -> Summary:
    """The whole time range as one group (also when it holds no request)."""
    return next(iter(summarize(conn, since, until, "total")), Summary("total"))


def summarize(conn: sqlite3.Connection, since: float, until: float, by: str = "total") -> list[Summary]:
    """Requests, failures, tokens by kind and the time to first token (p50/p90, streamed answers) per group."""
    key = GROUPS[by]
    sums = conn.execute(
        f"SELECT {key} AS k, count(*), sum(failure IS NOT NULL), sum(input_tokens), sum(cached_tokens), "
        f"sum(output_tokens), sum(reasoning_tokens) FROM requests WHERE {_RANGE} GROUP BY k ORDER BY k",
        (since, until),
    ).fetchall()
    summaries = {str(r[0]): Summary(str(r[0]), *(int(v or 0) for v in r[1:])) for r in sums}
    ttfts: dict[str, list[float]] = {}
    for k, ttft in conn.execute(
        f"SELECT {key} AS k, ttft_ms FROM requests WHERE {_RANGE} AND ttft_ms IS NOT NULL ORDER BY k, ttft_ms",
        (since, until),
    ):
        ttfts.setdefault(str(k), []).append(float(ttft))
    for k, values in ttfts.items():
        if k in summaries:
            summaries[k].ttft_p50_ms = percentile(values, 0.5)
            summaries[k].ttft_p90_ms = percentile(values, 0.9)
    return list(summaries.values())


def runs(conn: sqlite3.Connection, since: float, until: float) -> list[dict[str, Any]]:
    """Requests grouped by run (trace id), in order of their first request: clients, counts, tokens, tool calls."""
    rows = conn.execute(
        "SELECT coalesce(run, '-') AS r, group_concat(DISTINCT client), count(*), sum(failure IS NOT NULL), "
        "sum(input_tokens), sum(output_tokens), sum(tool_calls), min(finished_at) AS first "
        f"FROM requests WHERE {_RANGE} GROUP BY r ORDER BY first",
        (since, until),
    ).fetchall()
    keys = ("run", "clients", "requests", "failures", "input_tokens", "output_tokens", "tool_calls")
    return [dict(zip(keys, row[:7], strict=True)) for row in rows]


def daily_tokens(conn: sqlite3.Connection, days: int, now: float | None = None) -> dict[str, dict[str, int]]:
    """Tokens (input + output) per local day and model (the one that served) for the last `days` days, today
    included; every day has an entry (empty when nothing ran)."""
    series: dict[str, dict[str, int]] = {day: {} for day in _last_days(days, now)}
    for day, model, tokens in conn.execute(
        f"SELECT {GROUPS['day']} AS d, {_MODEL}, sum(input_tokens + output_tokens) FROM requests "
        "WHERE finished_at >= ? GROUP BY d, 2",
        (_day_start(next(iter(series)))),
    ):
        if day in series and tokens:
            series[day][str(model)] = int(tokens)
    return series


def daily_failures(conn: sqlite3.Connection, days: int, now: float | None = None) -> dict[str, tuple[int, int]]:
    """(requests, failures) per local day for the last `days` days, today included."""
    series = {day: (0, 0) for day in _last_days(days, now)}
    for day, requests, failures in conn.execute(
        f"SELECT {GROUPS['day']} AS d, count(*), sum(failure IS NOT NULL) FROM requests "
        "WHERE finished_at >= ? GROUP BY d",
        (_day_start(next(iter(series)))),
    ):
        if day in series:
            series[day] = (int(requests), int(failures or 0))
    return series


def recent(conn: sqlite3.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The last `limit` requests, newest first, every column."""
    cursor = conn.execute("SELECT * FROM requests ORDER BY finished_at DESC, id DESC LIMIT ?", (limit,))
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def totals(conn: sqlite3.Connection) -> dict[str, Any]:
    """Rows, first and last finish time, requests and tokens of the whole log."""
    row = conn.execute(
        "SELECT count(*), min(finished_at), max(finished_at), sum(failure IS NOT NULL), sum(input_tokens), "
        "sum(cached_tokens), sum(output_tokens), sum(reasoning_tokens) FROM requests"
    ).fetchone()
    keys = ("rows", "first", "last", "failures", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens")
    return {
        k: (v if v is not None else (None if k in ("first", "last") else 0)) for k, v in zip(keys, row, strict=True)
    }


# -- formats -------------------------------------------------------------------------------------------------


def format_table(summaries: Iterable[Summary], by: str, total: Summary | None = None) -> str:
    """A text table, with a total row when there are several groups (`total`: `summarize(…, "total")`, whose
    time-to-first-token percentiles are over every request; without it, the sums only)."""
    items = list(summaries)
    header = [by, "requests", "failed", "input", "cached", "output", "reasoning", "total", "ttft p50", "ttft p90"]
    body = [_cells(s) for s in items]
    if len(items) > 1:
        if total is None:
            total = Summary("total")
            for s in items:
                for name in _SUMMED:
                    setattr(total, name, getattr(total, name) + getattr(s, name))
        body.append(_cells(total))
    if not body:
        return "no requests in this time range"
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = [header, ["-" * w for w in widths], *body]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True)))
        for line in lines
    )


def format_json(summaries: Iterable[Summary], by: str, since: float, until: float) -> str:
    doc = {
        "by": by,
        "since": _iso(since),
        "until": _iso(until),
        "groups": [{**asdict(s), "total_tokens": s.total_tokens} for s in summaries],
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode()


def format_csv(summaries: Iterable[Summary], by: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by, *(name for name in Summary.__dataclass_fields__ if name != "key"), "total_tokens"])
    for s in summaries:
        values = asdict(s)
        writer.writerow([s.key, *(values[name] for name in values if name != "key"), s.total_tokens])
    return out.getvalue()


def _cells(s: Summary) -> list[str]:
    return [
        s.key,
        str(s.requests),
        str(s.failures),
        f"{s.input_tokens:,}",
        f"{s.cached_tokens:,}",
        f"{s.output_tokens:,}",
        f"{s.reasoning_tokens:,}",
        f"{s.total_tokens:,}",
        _ms(s.ttft_p50_ms),
        _ms(s.ttft_p90_ms),
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _last_days(days: int, now: float | None) -> list[str]:
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]


def _day_start(day: str) -> tuple[float]:
    d = date.fromisoformat(day)
    return (datetime(d.year, d.month, d.day).timestamp(),)
