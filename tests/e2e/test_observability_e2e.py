"""Observability through a real mitmdump: the request log survives a restart, `/metrics` counts what was sent
(parsed by prometheus_client's own parser), health and status answer locally, the gateway key guards them, and a
corrupt database does not stop the gateway."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from scripts.fakes.codex_backend import ErrorScript
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.fake_issuer import FakeIssuer
from scripts.gateway_process import GatewayProcess
from scripts.gateway_process import write_login

ROOT = Path(__file__).resolve().parents[2]
KEY = "gw-observe-key"
MESSAGES = [{"role": "user", "content": "hi"}]
EXPIRED = {"error": {"message": "Provided authentication token is expired.", "type": "x", "code": "token_expired"}}


@dataclass
class Sent:
    """What the test sent and what the client saw, to compare the gateway's figures with."""

    statuses: list[int]
    input_tokens: int = 0
    output_tokens: int = 0
    streams: int = 0


@pytest.fixture
def home(issuer: FakeIssuer, tmp_path: Path) -> Path:
    write_login(tmp_path / "codex", issuer.issue(issuer.add_account("observe@example.com")).auth_json())
    return tmp_path


def start(backend: FakeCodexBackend, home: Path, *extra: str) -> GatewayProcess:
    args = [arg for spec in extra for arg in ("--set", spec)]
    return GatewayProcess(backend.port, home / "codex", home / "gw", extra=args).start()


# What Prometheus (2.x and 3.x ask alike, first) sends: it gets OpenMetrics; curl and others get the text format.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def scrape(gw: GatewayProcess, **headers: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name → {sorted labels → value}, read by prometheus_client's parser for the format that was answered."""
    response = httpx.get(gw.base_url + "/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    content_type = response.headers["content-type"]
    openmetrics = content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert openmetrics or content_type == "text/plain; version=0.0.4; charset=utf-8"
    parse = openmetrics_families if openmetrics else text_string_to_metric_families
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in parse(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def status(gw: GatewayProcess, **headers: str) -> dict[str, Any]:
    response = httpx.get(gw.base_url + "/_gateway/status", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def report(home: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "scripts/usage.py", "--gateway-home", str(home / "gw" / "gateway-home"), "--json", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def send_mix(gw: GatewayProcess, backend: FakeCodexBackend, api_key: str = "unused") -> Sent:
    """Three answers, two streams (usage included), one upstream 500 and one 401 healed by a token refresh."""
    sent = Sent(statuses=[])
    with openai.OpenAI(base_url=gw.base_url + "/v1", api_key=api_key, max_retries=0, timeout=20) as client:
        for _ in range(3):
            done = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)  # type: ignore[arg-type]
            assert done.usage is not None
            sent.statuses.append(200)
            sent.input_tokens += done.usage.prompt_tokens
            sent.output_tokens += done.usage.completion_tokens
        for _ in range(2):
            chunks = list(
                client.chat.completions.create(
                    model="gpt-5.4",
                    messages=MESSAGES,  # type: ignore[arg-type]
                    stream=True,
                    stream_options={"include_usage": True},
                )
            )
            usage = chunks[-1].usage
            assert usage is not None
            sent.statuses.append(200)
            sent.input_tokens += usage.prompt_tokens
            sent.output_tokens += usage.completion_tokens
            sent.streams += 1
        backend.enqueue(ErrorScript(500, {"detail": "Internal server error"}))
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)  # type: ignore[arg-type]
        sent.statuses.append(failed.value.status_code)
        backend.enqueue(ErrorScript(401, EXPIRED))
        healed = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES)  # type: ignore[arg-type]
        assert healed.usage is not None
        sent.statuses.append(200)
        sent.input_tokens += healed.usage.prompt_tokens
        sent.output_tokens += healed.usage.completion_tokens
    return sent


@pytest.fixture
def open_gateway(backend: FakeCodexBackend, home: Path) -> Iterator[GatewayProcess]:
    gw = start(backend, home)
    yield gw
    gw.stop()


# -- without a key ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", ["*/*", PROMETHEUS_ACCEPT], ids=["text format", "openmetrics"])
def test_metrics_count_what_was_sent(open_gateway: GatewayProcess, backend: FakeCodexBackend, accept: str) -> None:
    sent = send_mix(open_gateway, backend)
    families = scrape(open_gateway, accept=accept)
    requests = families["codex_gateway_requests_total"]
    chat = {dict(k)["status"]: v for k, v in requests.items() if dict(k)["endpoint"] == "chat.completions"}
    assert chat == {"200": sent.statuses.count(200), str(sent.statuses[5]): 1}
    assert {dict(k)["model"] for k in requests} == {"gpt-5.4"}
    tokens = {dict(k)["kind"]: v for k, v in families["codex_gateway_tokens_total"].items()}
    assert (tokens["input"], tokens["output"]) == (sent.input_tokens, sent.output_tokens)
    assert families["codex_gateway_upstream_errors_total"] == {(("status", "500"),): 1}
    endpoint = (("endpoint", "chat.completions"),)
    assert families["codex_gateway_time_to_first_token_seconds_count"][endpoint] == sent.streams
    assert families["codex_gateway_request_duration_seconds_count"][endpoint] == len(sent.statuses)
    account = (("account", "observe@example.com"),)
    assert families["codex_gateway_token_refreshes_total"][account] == 1
    assert families["codex_gateway_token_refresh_failures_total"][account] == 0
    assert families["codex_gateway_account_quota_used_percent"][(*account, ("window", "primary"))] == 12.0
    assert families["codex_gateway_account_cooldown_seconds"][account] == 0


def test_health_and_status_are_answered_locally(open_gateway: GatewayProcess, backend: FakeCodexBackend) -> None:
    assert httpx.get(open_gateway.base_url + "/_gateway/health").json() == {"status": "ok"}
    doc = status(open_gateway)
    assert backend.requests == [], "nothing went upstream"
    assert doc["listen"] == [f"127.0.0.1:{open_gateway.port}"]
    assert doc["upstream"] == f"http://127.0.0.1:{backend.port}/backend-api/codex"
    assert [a["label"] for a in doc["accounts"]] == ["observe@example.com"]
    assert doc["database"]["ok"] and doc["database"]["schema_version"] == 1


def test_a_restart_keeps_the_totals(backend: FakeCodexBackend, home: Path) -> None:
    gw = start(backend, home)
    try:
        sent = send_mix(gw, backend)
        before = status(gw)["database"]["totals"]
    finally:
        gw.stop()
    by_model = report(home, "--by", "model")["groups"]
    again = start(backend, home)
    try:
        after = status(again)["database"]["totals"]
        assert "codex_gateway_requests_total" not in scrape(again), "a new process counts from zero"
    finally:
        again.stop()
    assert before == after
    assert (after["rows"], after["input_tokens"], after["output_tokens"]) == (
        len(sent.statuses),
        sent.input_tokens,
        sent.output_tokens,
    )
    assert report(home, "--by", "model")["groups"] == by_model
    (group,) = by_model
    assert (group["key"], group["requests"], group["failures"]) == ("gpt-5.4", len(sent.statuses), 1)
    assert group["ttft_p50_ms"] is not None and group["ttft_p90_ms"] >= group["ttft_p50_ms"]


# -- with a key ------------------------------------------------------------------------------------------------


def test_the_key_guards_status_metrics_and_page(backend: FakeCodexBackend, home: Path) -> None:
    gw = start(backend, home, f"gateway_api_key={KEY}")
    try:
        sent = send_mix(gw, backend, api_key=KEY)
        base = gw.base_url
        assert httpx.get(base + "/_gateway/health").status_code == 200
        for path in ("/_gateway/status", "/metrics"):
            refused = httpx.get(base + path)
            assert refused.status_code == 401 and "gw-observe" not in refused.text
        page = httpx.get(base + "/_gateway/")
        assert page.status_code == 401 and page.headers["www-authenticate"].startswith("Basic")
        assert httpx.get(base + "/_gateway/", auth=("me", KEY)).status_code == 200
        bearer = {"authorization": f"Bearer {KEY}"}
        assert status(gw, **bearer)["database"]["totals"]["rows"] == len(sent.statuses)
        chat = scrape(gw, **bearer)["codex_gateway_requests_total"]
        assert sum(chat.values()) == len(sent.statuses)
        assert KEY not in gw.log()
    finally:
        gw.stop()


# -- a broken database -----------------------------------------------------------------------------------------


def test_a_corrupt_database_does_not_stop_the_gateway(backend: FakeCodexBackend, home: Path) -> None:
    db = home / "gw" / "gateway-home" / "usage.sqlite3"
    db.parent.mkdir(parents=True)
    db.write_bytes(b"definitely not SQLite " * 500)
    gw = start(backend, home)
    try:
        sent = send_mix(gw, backend)
        assert sent.statuses.count(200) == 6
        state = status(gw)["database"]
        assert state["ok"] is False and "not a database" in state["error"]
        assert state["rows_lost"] == len(sent.statuses) and state["rows_written"] == 0
        assert scrape(gw)["codex_gateway_usage_log_ok"][()] == 0
        assert httpx.get(gw.base_url + "/_gateway/").status_code == 200
        errors = [line for line in gw.log().splitlines() if "cannot be written" in line]
        assert len(errors) == 1 and "serves on" in errors[0]
    finally:
        gw.stop()


# -- server replay ---------------------------------------------------------------------------------------------


def test_replayed_answers_are_marked_in_the_log(backend: FakeCodexBackend, home: Path) -> None:
    capture = home / "capture.flows"
    chat = {"model": "gpt-5.4", "messages": MESSAGES}
    with GatewayProcess(backend.port, home / "codex", home / "live", extra=["-w", str(capture)]) as live:
        assert httpx.post(live.base_url + "/v1/chat/completions", json=chat, timeout=20).status_code == 200
    replay = ["--server-replay", str(capture), "--set", "server_replay_extra=kill"]
    with GatewayProcess(backend.port, home / "codex", home / "replay", extra=replay) as gw:
        backend.reset()
        assert httpx.post(gw.base_url + "/v1/chat/completions", json=chat, timeout=20).status_code == 200
        assert backend.responses_requests() == [], "answered from the capture"
    for workdir, replayed in (("live", 0), ("replay", 1)):
        db = home / workdir / "gateway-home" / "usage.sqlite3"
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("SELECT replayed, input_tokens FROM requests").fetchall() == [(replayed, 11)]
