"""`GET /metrics`: the gateway's counters in the Prometheus text format, produced by `prometheus_client`.

Two halves:

- `GatewayMetrics` counts finished requests (`observe(row)`, one per flow, on the event loop): plain dicts and
  bucket lists, a few increments per request, no lock (one thread) and no import of `prometheus_client` on the
  request path.
- At scrape time `families` turns those counts, the account pool's status and the request log's state into
  metric families, and `render` lets `prometheus_client` write them, from a registry of its own (never the global
  one) and a custom collector (prometheus_client's way of exporting state another component owns).

Cardinality stays bounded: labels are endpoints, status codes, failure kinds, token kinds, account labels (one per
configured account) and models, which are only those the model catalog knows, all others counted as "other".
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from .usage_row import RequestRow

__all__ = ["GatewayMetrics", "Histogram", "render", "families", "TTFT_BUCKETS", "DURATION_BUCKETS"]

TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
MAX_MODELS = 64  # distinct model names counted as themselves; later ones are "other" from the start
OTHER = "other"
NONE = "none"
TOKEN_KINDS = ("input", "cached", "output", "reasoning")


@dataclass
class Histogram:
    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)  # per bucket, not cumulative; the last one is +Inf
    total: float = 0.0

    def __post_init__(self) -> None:
        if not self.counts:
            self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # `le` buckets: a value on a bound belongs to it
        self.total += value

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total

    def cumulative(self) -> list[tuple[str, float]]:
        out, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, float(running)))
        return out


@dataclass
class GatewayMetrics:
    started_at: float = field(default_factory=time.time)
    requests: dict[tuple[str, str, str, str], int] = field(default_factory=dict)  # endpoint, model, status, failure
    tokens: dict[tuple[str, str], int] = field(default_factory=dict)  # kind, model
    upstream_errors: dict[str, int] = field(default_factory=dict)  # upstream status
    ttft: dict[str, Histogram] = field(default_factory=dict)  # per endpoint, seconds
    duration: dict[str, Histogram] = field(default_factory=dict)  # per endpoint, seconds
    _models: set[str] = field(default_factory=set)

    def observe(self, row: RequestRow) -> None:
        model = self._model(row.model_served or row.model)  # the serving model: what the catalog names
        status = str(row.status) if row.status is not None else NONE
        key = (row.endpoint, model, status, row.failure or NONE)
        self.requests[key] = self.requests.get(key, 0) + 1
        for kind, count in zip(
            TOKEN_KINDS, (row.input_tokens, row.cached_tokens, row.output_tokens, row.reasoning_tokens), strict=True
        ):
            if count:
                self.tokens[kind, model] = self.tokens.get((kind, model), 0) + count
        if row.upstream_status is not None and row.upstream_status >= 400:
            code = str(row.upstream_status)
            self.upstream_errors[code] = self.upstream_errors.get(code, 0) + 1
        if row.ttft_ms is not None:
            self._histogram(self.ttft, row.endpoint, TTFT_BUCKETS).observe(row.ttft_ms / 1000)
        if row.total_ms is not None:
            self._histogram(self.duration, row.endpoint, DURATION_BUCKETS).observe(row.total_ms / 1000)

    def _model(self, model: str | None) -> str:
        if not model:
            return NONE
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return OTHER
        self._models.add(model)
        return model

    @staticmethod
    def _histogram(table: dict[str, Histogram], key: str, bounds: tuple[float, ...]) -> Histogram:
        histogram = table.get(key)
        if histogram is None:
            histogram = table[key] = Histogram(bounds)
        return histogram


# -- scrape time ---------------------------------------------------------------------------------------------


def render(collected: Iterable[Any], accept: str = "") -> tuple[bytes, str]:
    """The exposition (body, content type) of metric families (`families`), from a registry of its own, in the
    format the scraper's `Accept` header asks for, negotiated as prometheus_client's own HTTP handler does:
    OpenMetrics for Prometheus (which asks for it first), the classic text format (0.0.4) for curl and anything
    that asks for nothing else."""
    from prometheus_client.exposition import choose_encoder
    from prometheus_client.registry import CollectorRegistry

    snapshot = list(collected)

    class _Snapshot:
        def collect(self) -> Iterable[Any]:
            return snapshot

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot())  # any object with collect() is a Collector
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


def families(
    metrics: GatewayMetrics,
    *,
    known_model: Callable[[str], bool],
    accounts: Iterable[Mapping[str, Any]] = (),
    log_state: Mapping[str, Any] | None = None,
    version: str = "",
    now: float | None = None,
) -> list[Any]:
    """prometheus_client metric families for everything `/metrics` shows."""
    from prometheus_client.core import CounterMetricFamily
    from prometheus_client.core import GaugeMetricFamily

    now = time.time() if now is None else now

    def fold(model: str) -> str:
        return model if model in (NONE, OTHER) or known_model(model) else OTHER

    info = GaugeMetricFamily("codex_gateway_info", "The gateway's version.", labels=["version"])
    info.add_metric([version], 1)
    started = GaugeMetricFamily("codex_gateway_start_time_seconds", "When this gateway process started (unix).")
    started.add_metric([], metrics.started_at)
    requests = CounterMetricFamily(
        "codex_gateway_requests",
        "Finished gateway requests by endpoint, model, the status the client got and the failure kind.",
        labels=["endpoint", "model", "status", "failure"],
    )
    for (endpoint, model, status, failure), count in _folded(metrics.requests, 1, fold).items():
        requests.add_metric([endpoint, model, status, failure], count)
    tokens = CounterMetricFamily(
        "codex_gateway_tokens", "Tokens by kind (input, cached, output, reasoning) and model.", labels=["kind", "model"]
    )
    for (kind, model), count in _folded(metrics.tokens, 1, fold).items():
        tokens.add_metric([kind, model], count)
    upstream = CounterMetricFamily(
        "codex_gateway_upstream_errors", "Non-2xx answers of the Codex backend, by status.", labels=["status"]
    )
    for status, count in sorted(metrics.upstream_errors.items()):
        upstream.add_metric([status], count)
    return [
        info,
        started,
        requests,
        tokens,
        upstream,
        _histogram_family(
            "codex_gateway_time_to_first_token_seconds",
            "Time from the request to the first content sent to a streaming client.",
            metrics.ttft,
        ),
        _histogram_family(
            "codex_gateway_request_duration_seconds", "Time from the request to its end.", metrics.duration
        ),
        *_account_families(accounts, now),
        *_log_families(log_state),
    ]


def _folded(table: Mapping[Any, int], model_at: int, fold: Callable[[str], str]) -> dict[tuple[str, ...], int]:
    """The counts with the model label (at index `model_at` of each key) folded, merging what folds together."""
    out: dict[tuple[str, ...], int] = {}
    for key, count in table.items():
        folded = (*key[:model_at], fold(key[model_at]), *key[model_at + 1 :])
        out[folded] = out.get(folded, 0) + count
    return dict(sorted(out.items()))


def _histogram_family(name: str, documentation: str, table: Mapping[str, Histogram]) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    family = HistogramMetricFamily(name, documentation, labels=["endpoint"])
    for endpoint, histogram in sorted(table.items()):
        family.add_metric([endpoint], histogram.cumulative(), histogram.total)
    return family


def _account_families(accounts: Iterable[Mapping[str, Any]], now: float) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily
    from prometheus_client.core import GaugeMetricFamily

    quota = GaugeMetricFamily(
        "codex_gateway_account_quota_used_percent",
        "Last known share of the account's usage window used (primary: 5 hours, secondary: weekly).",
        labels=["account", "window"],
    )
    cooldown = GaugeMetricFamily(
        "codex_gateway_account_cooldown_seconds",
        "Seconds until a cooling-down account (usage limit reached) is used again; 0 when it is usable.",
        labels=["account"],
    )
    login = GaugeMetricFamily(
        "codex_gateway_account_login_required", "1 when the account's login is dead.", labels=["account"]
    )
    refreshes = CounterMetricFamily(
        "codex_gateway_token_refreshes", "Successful token refreshes by this process.", labels=["account"]
    )
    refresh_failures = CounterMetricFamily(
        "codex_gateway_token_refresh_failures", "Failed token refreshes by this process.", labels=["account"]
    )
    for account in accounts:
        label = str(account.get("label") or "?")
        for window in ("primary", "secondary"):
            entry = (account.get("quota") or {}).get(window)
            if isinstance(entry, Mapping) and isinstance(entry.get("used_percent"), int | float):
                quota.add_metric([label, window], float(entry["used_percent"]))
        until = account.get("cooldown_until")
        cooldown.add_metric([label], max(0.0, float(until) - now) if until else 0.0)
        login.add_metric([label], 1.0 if account.get("login_required") else 0.0)
        refreshes.add_metric([label], float(account.get("refreshes") or 0))
        refresh_failures.add_metric([label], float(account.get("refresh_failures") or 0))
    return [quota, cooldown, login, refreshes, refresh_failures]


def _log_families(state: Mapping[str, Any] | None) -> list[Any]:
    from prometheus_client.core import CounterMetricFamily
    from prometheus_client.core import GaugeMetricFamily

    if state is None:
        return []
    rows = CounterMetricFamily(
        "codex_gateway_usage_log_rows",
        "Request-log rows: written, dropped (queue full) or lost (database unwritable).",
        labels=["outcome"],
    )
    for outcome in ("written", "dropped", "lost"):
        rows.add_metric([outcome], float(state.get(f"rows_{outcome}") or 0))
    ok = GaugeMetricFamily("codex_gateway_usage_log_ok", "1 while the request log's database can be written.")
    ok.add_metric([], 1.0 if state.get("ok") else 0.0)
    return [rows, ok]
