"""model_catalog.ModelCatalog: live fetch, TTL cache (injected clock), disk cache, fallbacks, the 404 rule.

Fetches go to the real FakeCodexBackend over HTTP, or to an httpx.MockTransport for failures and edge cases.
No sleeps: time is a counter the tests move.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from codex_gateway.accounts.auth_file import format_iso
from codex_gateway.errors import GatewayError
from codex_gateway.model_catalog import BUILTIN_INFOS
from codex_gateway.model_catalog import CACHE_NAME
from codex_gateway.model_catalog import DEFAULT_CLIENT_VERSION
from codex_gateway.model_catalog import ModelCatalog
from codex_gateway.model_catalog import list_object

from scripts.fakes.codex_backend import MODELS_PATH
from scripts.fakes.codex_backend import FakeCodexBackend
from scripts.fakes.codex_models import DEFAULT_MODELS
from scripts.fakes.codex_models import model_info

UPSTREAM = "https://codex.test/backend-api/codex"
CREDS = {"Authorization": "Bearer tok", "ChatGPT-Account-ID": "acct"}
LISTED = ["gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex"]  # DEFAULT_MODELS without the hidden gpt-5.1-codex-max
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Handler = Callable[[httpx.Request], httpx.Response | Awaitable[httpx.Response]]


class Upstream:
    """A MockTransport that records requests and answers with `self.answer` (the fake's list by default)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.answer: Handler = lambda request: httpx.Response(200, json={"models": DEFAULT_MODELS})

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        result = self.answer(request)
        return await result if isinstance(result, Awaitable) else result

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    codex, gateway = tmp_path / "codex", tmp_path / "gateway"
    codex.mkdir()
    return codex, gateway


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    yield Upstream()


def catalog(homes: tuple[Path, Path], clock: Clock, **kw: Any) -> ModelCatalog:
    return ModelCatalog(homes[0], homes[1], UPSTREAM, clock=clock, **kw)


def ids(models: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in models]


def write_codex_cache(codex_home: Path, models: list[dict[str, Any]], **extra: Any) -> bytes:
    raw = orjson.dumps({"fetched_at": "2025-01-01T00:00:00Z", **extra, "models": models})
    (codex_home / "models_cache.json").write_bytes(raw)
    return raw


def write_gateway_cache(
    gateway_home: Path, models: list[dict[str, Any]], fetched_at: float, upstream: str = UPSTREAM
) -> None:
    gateway_home.mkdir(parents=True, exist_ok=True)
    doc = {"fetched_at": format_iso(fetched_at), "etag": 'W/"e1"', "upstream": upstream, "models": models}
    (gateway_home / CACHE_NAME).write_bytes(orjson.dumps(doc))


def failing(status: int = 500, body: bytes = b"oops") -> Handler:
    return lambda request: httpx.Response(status, content=body)


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


# -- live ---------------------------------------------------------------------------------------------------


async def test_live_list_from_the_fake_backend(homes: tuple[Path, Path]) -> None:
    codex_raw = write_codex_cache(homes[0], [model_info("old-model", "old")])
    with FakeCodexBackend() as backend:
        base = backend.codex_base
        cat = ModelCatalog(homes[0], homes[1], base, clock=Clock())
        async with httpx.AsyncClient() as client:
            models = await cat.models(CREDS, client)
        sent = [r for r in backend.requests if r.route == MODELS_PATH]
    assert ids(models) == LISTED
    assert len(sent) == 1 and sent[0].status == 200
    assert sent[0].path == f"{MODELS_PATH}?client_version={DEFAULT_CLIENT_VERSION}"
    assert sent[0].headers["authorization"] == "Bearer tok" and sent[0].headers["chatgpt-account-id"] == "acct"
    assert sent[0].headers["accept"] == "application/json"
    assert cat.source == "live" and cat.is_authoritative()
    # the Codex CLI's own cache is never written; the gateway keeps its own
    assert (homes[0] / "models_cache.json").read_bytes() == codex_raw
    saved = json.loads((homes[1] / CACHE_NAME).read_bytes())
    assert saved["upstream"] == base and saved["etag"] == 'W/"fake-models-1"'
    assert [m["slug"] for m in saved["models"]] == [m["slug"] for m in DEFAULT_MODELS]


async def test_model_objects(homes: tuple[Path, Path], upstream: Upstream) -> None:
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        models = await cat.models(CREDS, client)
    mini = models[1]
    assert mini == {
        "id": "gpt-5.4-mini",
        "object": "model",
        "created": mini["created"],
        "owned_by": "openai",
        "reasoning_efforts": ["low", "medium", "high", "xhigh"],
        "input_modalities": ["text", "image"],
        "context_window": 128000,
        "display_name": "gpt-5.4-mini",
        "description": "gpt-5.4-mini model for Codex.",
        "default_reasoning_effort": "medium",
    }
    assert isinstance(mini["created"], int)
    assert list_object(models) == {"object": "list", "data": models}


async def test_text_only_model_and_order_by_priority(homes: tuple[Path, Path], upstream: Upstream) -> None:
    spark = {**model_info("gpt-5.3-codex-spark", "spark", priority=0), "input_modalities": ["text"]}
    listed = [model_info("b", "b", priority=5), spark, model_info("a", "a", priority=1), model_info("b", "dup")]
    upstream.answer = lambda request: httpx.Response(200, json={"models": listed})
    async with upstream.client() as client:
        models = await catalog(homes, Clock()).models(CREDS, client)
    assert ids(models) == ["gpt-5.3-codex-spark", "a", "b"]
    assert models[0]["input_modalities"] == ["text"]
    assert models[2]["display_name"] == "b"  # the first of two duplicate slugs wins


@pytest.mark.parametrize(
    "payload",
    [{"models": DEFAULT_MODELS}, DEFAULT_MODELS, {"data": DEFAULT_MODELS}],
    ids=["codex-format", "bare-list", "data-key"],
)
async def test_accepted_payload_shapes(homes: tuple[Path, Path], upstream: Upstream, payload: Any) -> None:
    upstream.answer = lambda request: httpx.Response(200, json=payload)
    async with upstream.client() as client:
        assert ids(await catalog(homes, Clock()).models(CREDS, client)) == LISTED


# -- TTL and retries ----------------------------------------------------------------------------------------


async def test_ttl(homes: tuple[Path, Path], upstream: Upstream) -> None:
    clock = Clock()
    cat = catalog(homes, clock, ttl=300)
    async with upstream.client() as client:
        await cat.models(CREDS, client)
        clock.now += 299
        await cat.models(CREDS, client)
        assert len(upstream.requests) == 1 and cat.is_authoritative()
        clock.now += 1
        assert not cat.is_authoritative()
        await cat.models(CREDS, client)
    assert len(upstream.requests) == 2 and cat.is_authoritative()


async def test_failed_fetch_waits_retry_after(homes: tuple[Path, Path], upstream: Upstream) -> None:
    clock = Clock()
    cat = catalog(homes, clock, retry_after=30)
    upstream.answer = unreachable
    async with upstream.client() as client:
        await cat.models(CREDS, client)
        clock.now += 29
        await cat.models(CREDS, client)
        assert len(upstream.requests) == 1
        clock.now += 1
        upstream.answer = lambda request: httpx.Response(200, json={"models": DEFAULT_MODELS})
        assert ids(await cat.models(CREDS, client)) == LISTED
    assert len(upstream.requests) == 2 and cat.source == "live" and cat.last_error is None


async def test_concurrent_callers_share_one_fetch(homes: tuple[Path, Path], upstream: Upstream) -> None:
    gate = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(200, json={"models": DEFAULT_MODELS})

    upstream.answer = slow
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        calls = [asyncio.ensure_future(cat.models(CREDS, client)) for _ in range(20)]
        await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*calls)
    assert len(upstream.requests) == 1
    assert all(ids(r) == LISTED for r in results)


async def test_etag_not_modified(homes: tuple[Path, Path], upstream: Upstream) -> None:
    clock = Clock()
    cat = catalog(homes, clock, ttl=10)
    upstream.answer = lambda request: httpx.Response(200, json={"models": DEFAULT_MODELS}, headers={"etag": 'W/"v1"'})
    async with upstream.client() as client:
        await cat.models(CREDS, client)
        clock.now += 10
        upstream.answer = lambda request: httpx.Response(304)
        assert ids(await cat.models(CREDS, client)) == LISTED
    assert upstream.requests[1].headers["if-none-match"] == 'W/"v1"'
    assert cat.is_authoritative() and cat.fetched_at == clock.now


async def test_no_credentials_no_fetch(homes: tuple[Path, Path], upstream: Upstream) -> None:
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        models = await cat.models(None, client)
    assert upstream.requests == []
    assert ids(models) == [info["slug"] for info in BUILTIN_INFOS] and cat.source == "builtin"


# -- fallbacks ----------------------------------------------------------------------------------------------


FAILURES: list[tuple[str, Handler]] = [
    ("unreachable", unreachable),
    ("http-500", failing(500)),
    ("http-401", failing(401, b'{"detail":"Unauthorized"}')),
    ("not-json", failing(200, b"<html>")),
    ("empty-list", lambda request: httpx.Response(200, json={"models": []})),
    ("no-slugs", lambda request: httpx.Response(200, json={"models": [{"name": "x"}]})),
]


@pytest.mark.parametrize("answer", [f[1] for f in FAILURES], ids=[f[0] for f in FAILURES])
async def test_failure_falls_back_to_builtin(homes: tuple[Path, Path], upstream: Upstream, answer: Handler) -> None:
    upstream.answer = answer
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        models = await cat.models(CREDS, client)
    assert ids(models) == [info["slug"] for info in BUILTIN_INFOS]
    assert all(m["reasoning_efforts"] and m["input_modalities"] for m in models)
    assert cat.source == "builtin" and not cat.is_authoritative() and cat.last_error
    assert not (homes[1] / CACHE_NAME).exists()


async def test_fallback_order(homes: tuple[Path, Path], upstream: Upstream) -> None:
    clock = Clock()
    upstream.answer = unreachable
    write_codex_cache(homes[0], [model_info("from-codex", "c"), model_info("hidden", "h", visibility="hide")])
    async with upstream.client() as client:
        # 1. Codex's cache file (hidden entries filtered)
        cat = catalog(homes, clock)
        assert ids(await cat.models(CREDS, client)) == ["from-codex"] and cat.source == "codex-cache"
        # 2. the gateway's disk cache beats it, whatever its age
        write_gateway_cache(homes[1], [model_info("from-disk", "d")], fetched_at=T0 - 86400)
        cat = catalog(homes, clock)
        assert ids(await cat.models(CREDS, client)) == ["from-disk"] and cat.source == "gateway-cache"
        assert not cat.is_authoritative()
        # 3. live data in memory, even stale, beats the disk
        upstream.answer = lambda request: httpx.Response(200, json={"models": [model_info("live", "l")]})
        clock.now += 3600
        assert ids(await cat.models(CREDS, client)) == ["live"]
        clock.now += 3600
        upstream.answer = failing(502)
        assert ids(await cat.models(CREDS, client)) == ["live"] and cat.source == "live"
        assert not cat.is_authoritative() and cat.last_error == "HTTP 502"


async def test_fresh_disk_cache_spares_the_first_fetch(homes: tuple[Path, Path], upstream: Upstream) -> None:
    write_gateway_cache(homes[1], [model_info("from-disk", "d")], fetched_at=T0 - 100)
    cat = catalog(homes, Clock(), ttl=300)
    async with upstream.client() as client:
        assert ids(await cat.models(CREDS, client)) == ["from-disk"]
    assert upstream.requests == [] and cat.is_authoritative()
    assert upstream.requests == []


async def test_disk_cache_of_another_upstream_is_ignored(homes: tuple[Path, Path], upstream: Upstream) -> None:
    write_gateway_cache(homes[1], [model_info("elsewhere", "e")], fetched_at=T0, upstream="http://127.0.0.1:1/x")
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        assert ids(await cat.models(None, client)) == [info["slug"] for info in BUILTIN_INFOS]


async def test_unwritable_gateway_home_does_not_raise(homes: tuple[Path, Path], upstream: Upstream) -> None:
    homes[1].write_text("a file, not a directory")
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        assert ids(await cat.models(CREDS, client)) == LISTED
    assert cat.source == "live"


def test_lookup_before_any_fetch_uses_fallbacks(homes: tuple[Path, Path]) -> None:
    write_codex_cache(homes[0], [model_info("from-codex", "c")])
    cat = catalog(homes, Clock())
    assert cat.lookup("from-codex") is not None and cat.lookup("gpt-5.4") is None


# -- lookup, retrieve and the 404 rule ----------------------------------------------------------------------


async def test_hidden_models_are_known_but_not_listed(homes: tuple[Path, Path], upstream: Upstream) -> None:
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        listed = await cat.models(CREDS, client)
    assert "gpt-5.1-codex-max" not in ids(listed)
    found = cat.lookup("gpt-5.1-codex-max")
    assert found is not None and found["id"] == "gpt-5.1-codex-max"
    cat.check("gpt-5.1-codex-max")
    assert cat.retrieve("gpt-5.4")["id"] == "gpt-5.4"


async def test_retrieve_unknown_is_model_not_found(homes: tuple[Path, Path], upstream: Upstream) -> None:
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        await cat.models(None, client)  # builtin list: not authoritative, retrieve still answers 404
    with pytest.raises(GatewayError) as info:
        cat.retrieve("gpt-9")
    err = info.value
    assert (err.status, err.type, err.code, err.param) == (404, "invalid_request_error", "model_not_found", "model")
    assert "gpt-9" in err.message


# (id, setup, authoritative)
AUTHORITY: list[tuple[str, str, bool]] = [
    ("live-fresh", "live", True),
    ("live-stale", "live-stale", False),
    ("disk-fresh", "disk-fresh", True),
    ("disk-stale", "disk-stale", False),
    ("codex-cache", "codex", False),
    ("builtin", "builtin", False),
]


@pytest.mark.parametrize(("setup", "authoritative"), [a[1:] for a in AUTHORITY], ids=[a[0] for a in AUTHORITY])
async def test_model_not_found_only_while_authoritative(
    homes: tuple[Path, Path], upstream: Upstream, setup: str, authoritative: bool
) -> None:
    clock = Clock()
    if setup.startswith("disk"):
        age = 10 if setup == "disk-fresh" else 1000
        write_gateway_cache(homes[1], DEFAULT_MODELS, fetched_at=T0 - age)
    if setup == "codex":
        write_codex_cache(homes[0], DEFAULT_MODELS)
    cat = catalog(homes, clock, ttl=300)
    upstream.answer = unreachable if setup != "live" and setup != "live-stale" else upstream.answer
    async with upstream.client() as client:
        await cat.models(CREDS if setup.startswith("live") else None, client)
    if setup == "live-stale":
        clock.now += 300
    assert cat.is_authoritative() is authoritative
    assert cat.status()["authoritative"] is authoritative
    cat.check("gpt-5.4")  # known: never an error
    if authoritative:
        with pytest.raises(GatewayError) as info:
            cat.check("gpt-unknown")
        assert info.value.status == 404 and info.value.code == "model_not_found"
    else:
        cat.check("gpt-unknown")  # forwarded: the backend decides


# -- client_version -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("explicit", "in_codex_cache", "expected"),
    [
        (None, None, DEFAULT_CLIENT_VERSION),
        (None, "0.99.0", DEFAULT_CLIENT_VERSION),
        (None, "9.0.0", "9.0.0"),
        (None, "garbage", DEFAULT_CLIENT_VERSION),
        ("0.50.0", "9.0.0", "0.50.0"),
    ],
)
def test_client_version(
    homes: tuple[Path, Path], explicit: str | None, in_codex_cache: str | None, expected: str
) -> None:
    if in_codex_cache is not None:
        write_codex_cache(homes[0], DEFAULT_MODELS, client_version=in_codex_cache)
    cat = catalog(homes, Clock(), client_version=explicit)
    assert cat.client_version == expected
    assert cat.url == f"{UPSTREAM}/models?client_version={expected}"


# -- aliases and effort names -------------------------------------------------------------------------------


async def test_aliases_are_listed_marked_as_such(homes: tuple[Path, Path], upstream: Upstream) -> None:
    cat = catalog(homes, Clock())
    cat.aliases = {"gpt-4o": "gpt-5.4", "fast": "gpt-5.4-mini-low"}
    async with upstream.client() as client:
        models = await cat.models(CREDS, client)
    assert ids(models) == [*LISTED, "gpt-4o", "fast"]
    gpt4o, fast = models[-2:]
    assert gpt4o["alias_for"] == "gpt-5.4" and gpt4o["owned_by"] == "codex-gateway" and "reasoning_effort" not in gpt4o
    assert fast["alias_for"] == "gpt-5.4-mini-low" and fast["reasoning_effort"] == "low"
    assert fast["context_window"] == 128000  # the target model's, so a client can size its prompts


async def test_an_alias_named_like_a_catalog_model_replaces_it(homes: tuple[Path, Path], upstream: Upstream) -> None:
    cat = catalog(homes, Clock())
    cat.aliases = {"gpt-5.4": "gpt-5.4-high"}
    async with upstream.client() as client:
        models = await cat.models(CREDS, client)
    assert ids(models).count("gpt-5.4") == 1
    assert models[-1]["id"] == "gpt-5.4" and models[-1]["reasoning_effort"] == "high"


@pytest.mark.parametrize(
    ("model_id", "alias_for", "effort"),
    [("fast", "gpt-5.4-mini-low", "low"), ("gpt-5.4-high", "gpt-5.4", "high"), ("gpt-5.4", None, None)],
)
async def test_retrieve_knows_aliases_and_effort_names(
    homes: tuple[Path, Path], upstream: Upstream, model_id: str, alias_for: str | None, effort: str | None
) -> None:
    cat = catalog(homes, Clock())
    cat.aliases = {"fast": "gpt-5.4-mini-low"}
    async with upstream.client() as client:
        await cat.models(CREDS, client)
    found = cat.retrieve(model_id)
    assert (found["id"], found.get("alias_for"), found.get("reasoning_effort")) == (model_id, alias_for, effort)


async def test_an_effort_name_of_an_unknown_model_is_not_found(homes: tuple[Path, Path], upstream: Upstream) -> None:
    cat = catalog(homes, Clock())
    async with upstream.client() as client:
        await cat.models(CREDS, client)
    with pytest.raises(GatewayError) as raised:
        cat.retrieve("gpt-9-high")
    assert raised.value.code == "model_not_found"
