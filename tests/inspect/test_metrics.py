"""metrics: counting finished requests, and the exposition prometheus_client writes (parsed back by its parser)."""

from __future__ import annotations

from typing import Any

import pytest
from codex_gateway.inspect.metrics import MAX_MODELS
from codex_gateway.inspect.metrics import GatewayMetrics
from codex_gateway.inspect.metrics import Histogram
from codex_gateway.inspect.metrics import families
from codex_gateway.inspect.metrics import render
from codex_gateway.inspect.usage_row import RequestRow
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

KNOWN = {"gpt-5.4", "gpt-5.4-mini"}
NOW = 1_800_000_000.0


def req(**kw: Any) -> RequestRow:
    return RequestRow(**{"finished_at": NOW, "endpoint": "chat.completions", "client": "curl", **kw})


def scrape(metrics: GatewayMetrics, **kw: Any) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name → {sorted labels → value} from the rendered text."""
    body, content_type = render(families(metrics, known_model=lambda m: m in KNOWN, version="9.9", now=NOW, **kw))
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def test_requests_are_counted_by_endpoint_model_status_and_failure() -> None:
    m = GatewayMetrics()
    m.observe(req(model="gpt-5.4", status=200))
    m.observe(req(model="gpt-5.4", status=200))
    m.observe(req(model="gpt-5.4", status=429, failure="upstream_status", upstream_status=429))
    m.observe(req(endpoint="models", status=200))
    requests = scrape(m)["codex_gateway_requests_total"]
    key = (("endpoint", "chat.completions"), ("failure", "none"), ("model", "gpt-5.4"), ("status", "200"))
    assert requests[key] == 2
    failed = (("endpoint", "chat.completions"), ("failure", "upstream_status"), ("model", "gpt-5.4"), ("status", "429"))
    assert requests[failed] == 1
    assert requests[(("endpoint", "models"), ("failure", "none"), ("model", "none"), ("status", "200"))] == 1


def test_tokens_by_kind_and_model() -> None:
    m = GatewayMetrics()
    m.observe(req(model="gpt-5.4", input_tokens=900, cached_tokens=512, output_tokens=120, reasoning_tokens=64))
    m.observe(req(model="gpt-5.4", input_tokens=100, output_tokens=10))
    tokens = scrape(m)["codex_gateway_tokens_total"]
    assert {labels[0][1]: value for labels, value in tokens.items()} == {
        "input": 1000,
        "cached": 512,
        "output": 130,
        "reasoning": 64,
    }


def test_models_the_catalog_does_not_know_are_other() -> None:
    m = GatewayMetrics()
    for model in ("gpt-5.4", "my-typo", "another-made-up-name"):
        m.observe(req(model=model, status=404 if model != "gpt-5.4" else 200, input_tokens=1))
    families = scrape(m)
    models = {dict(labels)["model"] for labels in families["codex_gateway_requests_total"]}
    assert models == {"gpt-5.4", "other"}
    assert families["codex_gateway_tokens_total"][(("kind", "input"), ("model", "other"))] == 2


def test_distinct_model_names_are_capped_while_counting() -> None:
    m = GatewayMetrics()
    for i in range(MAX_MODELS + 50):
        m.observe(req(model=f"model-{i}"))
    assert len({key[1] for key in m.requests}) == MAX_MODELS + 1  # the first MAX_MODELS, then "other"


def test_upstream_errors_by_status() -> None:
    m = GatewayMetrics()
    for status in (429, 429, 500, None):
        m.observe(req(upstream_status=status))
    assert scrape(m)["codex_gateway_upstream_errors_total"] == {(("status", "429"),): 2, (("status", "500"),): 1}


def test_histograms_are_cumulative_with_sum_and_count() -> None:
    m = GatewayMetrics()
    for ttft in (40.0, 100.0, 700.0):  # ms; 0.1 s sits on a bound and belongs to it
        m.observe(req(ttft_ms=ttft, total_ms=ttft * 2))
    families = scrape(m)
    buckets = {dict(k)["le"]: v for k, v in families["codex_gateway_time_to_first_token_seconds_bucket"].items()}
    assert (buckets["0.05"], buckets["0.1"], buckets["0.5"], buckets["1.0"], buckets["+Inf"]) == (1, 2, 2, 3, 3)
    endpoint = (("endpoint", "chat.completions"),)
    assert families["codex_gateway_time_to_first_token_seconds_count"][endpoint] == 3
    assert families["codex_gateway_time_to_first_token_seconds_sum"][endpoint] == pytest.approx(0.84)
    assert families["codex_gateway_request_duration_seconds_count"][endpoint] == 3


def test_requests_without_times_are_not_in_the_histograms() -> None:
    m = GatewayMetrics()
    m.observe(req())
    assert "codex_gateway_time_to_first_token_seconds_count" not in scrape(m)


def test_histogram_merge_adds_counts() -> None:
    a, b = Histogram((1.0, 2.0)), Histogram((1.0, 2.0))
    a.observe(0.5)
    b.observe(3.0)
    a.merge(b)
    assert (a.cumulative(), a.total) == ([("1.0", 1.0), ("2.0", 1.0), ("+Inf", 2.0)], 3.5)


ACCOUNTS = [
    {
        "label": "a@example.com",
        "quota": {"primary": {"used_percent": 42.5}, "secondary": {"used_percent": 3}},
        "cooldown_until": NOW + 90,
        "refreshes": 2,
        "refresh_failures": 1,
    },
    {"label": "b@example.com", "quota": None, "login_required": True},
]


def test_accounts_quota_cooldown_and_refreshes() -> None:
    families = scrape(GatewayMetrics(), accounts=ACCOUNTS)
    assert families["codex_gateway_account_quota_used_percent"] == {
        (("account", "a@example.com"), ("window", "primary")): 42.5,
        (("account", "a@example.com"), ("window", "secondary")): 3.0,
    }
    assert families["codex_gateway_account_cooldown_seconds"] == {
        (("account", "a@example.com"),): 90.0,
        (("account", "b@example.com"),): 0.0,
    }
    assert families["codex_gateway_account_login_required"][(("account", "b@example.com"),)] == 1.0
    assert families["codex_gateway_token_refreshes_total"][(("account", "a@example.com"),)] == 2.0
    assert families["codex_gateway_token_refresh_failures_total"][(("account", "a@example.com"),)] == 1.0


def test_request_log_state() -> None:
    state = {"ok": False, "rows_written": 10, "rows_dropped": 2, "rows_lost": 3}
    families = scrape(GatewayMetrics(), log_state=state)
    rows = {dict(k)["outcome"]: v for k, v in families["codex_gateway_usage_log_rows_total"].items()}
    assert (rows, families["codex_gateway_usage_log_ok"][()]) == ({"written": 10, "dropped": 2, "lost": 3}, 0.0)


def test_no_request_log_no_log_metrics() -> None:
    assert "codex_gateway_usage_log_ok" not in scrape(GatewayMetrics(), log_state=None)


def test_info_and_start_time() -> None:
    families = scrape(GatewayMetrics(started_at=NOW - 5))
    assert families["codex_gateway_info"] == {(("version", "9.9"),): 1.0}
    assert families["codex_gateway_start_time_seconds"][()] == NOW - 5


def test_the_global_registry_is_left_alone() -> None:
    before = {name for family in REGISTRY.collect() for name in [family.name]}
    m = GatewayMetrics()
    m.observe(req(model="gpt-5.4"))
    render(families(m, known_model=lambda _: True))
    after = {family.name for family in REGISTRY.collect()}
    assert before == after and not any(name.startswith("codex_gateway") for name in after)


# -- content negotiation: what each scraper asks for -------------------------------------------------------------

PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=underscores,application/openmetrics-text;version=0.0.1;"
    "q=0.9,text/plain;version=1.0.0;escaping=underscores;q=0.8,text/plain;version=0.0.4;q=0.7,*/*;q=0.6"
)
NEGOTIATED = [
    # Accept, content type answered
    ("", "text/plain; version=0.0.4; charset=utf-8"),  # no header: the classic text format
    ("*/*", "text/plain; version=0.0.4; charset=utf-8"),  # curl
    ("text/plain;version=0.0.4", "text/plain; version=0.0.4; charset=utf-8"),
    (PROMETHEUS_2, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
    (PROMETHEUS_3, "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"),
]

_REQUEST_429 = (
    ("endpoint", "chat.completions"),
    ("failure", "upstream_status"),
    ("model", "gpt-5.4"),
    ("status", "429"),
)


def _mixed() -> GatewayMetrics:
    m = GatewayMetrics(started_at=NOW - 5)
    m.observe(req(model="gpt-5.4", status=200, input_tokens=11, output_tokens=5, ttft_ms=120, total_ms=900))
    m.observe(req(model="gpt-5.4", status=429, failure="upstream_status", upstream_status=429, total_ms=50))
    return m


@pytest.mark.parametrize("accept, content_type", NEGOTIATED, ids=["none", "curl", "text", "prometheus2", "prometheus3"])
def test_the_format_follows_the_accept_header(accept: str, content_type: str) -> None:
    collected = families(_mixed(), known_model=lambda m: m in KNOWN, accounts=ACCOUNTS)
    assert render(collected, accept)[1] == content_type


def test_openmetrics_for_prometheus_holds_the_same_samples_as_the_text_format() -> None:
    def samples(body: bytes, parse: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in parse(body.decode())
            for s in family.samples
            if not s.name.endswith("_created")  # OpenMetrics' creation times, which the text format leaves out
        }

    kw: dict[str, Any] = {"known_model": lambda m: m in KNOWN, "accounts": ACCOUNTS, "now": NOW}
    text, _ = render(families(_mixed(), **kw))
    open_metrics, _ = render(families(_mixed(), **kw), PROMETHEUS_2)
    assert open_metrics.endswith(b"# EOF\n")
    from_text = samples(text, text_string_to_metric_families)
    assert samples(open_metrics, openmetrics_families) == from_text
    assert from_text[("codex_gateway_requests_total", _REQUEST_429)] == 1
