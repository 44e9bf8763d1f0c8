"""The live model catalog behind `GET /v1/models`, `GET /v1/models/{id}` and the `model_not_found` rule.

Source order:

1. live: `GET {codex_upstream}/models?client_version=...` with an account's credentials (answered as
   `{"models": [ModelInfo...]}`, Codex's model records: `slug`, `display_name`, `visibility`, `supported_in_api`,
   `priority`, `context_window`, reasoning levels...), kept in memory for `ttl` seconds and written to the state
   backend's catalog cache (`gateway_home/models_catalog.json`, or the shared Redis store, where a gateway adopts
   a fresher list another one fetched instead of fetching it again; the Codex CLI's own `models_cache.json` is
   only ever read);
2. when the backend cannot be asked or fails: the live list still in memory (stale), then the gateway's disk
   cache (any age, same upstream), then `$CODEX_HOME/models_cache.json`, then a built-in list.

A failed fetch is not retried for `retry_after` seconds, so an unreachable backend costs one timeout, not one
per request. `models()` never raises because of the upstream.

Models with `visibility` `hide`/`none` are not listed, but `lookup` and `retrieve` know them (they work; Codex just
does not offer them). Model objects are OpenAI's `{id, object, created, owned_by}` plus `display_name`,
`description`, `context_window`, `reasoning_efforts`, `default_reasoning_effort` and `input_modalities`.

Wiring (addon): one `ModelCatalog(settings.codex_home, settings.gateway_home, settings.upstream_url(""))` per
settings; per request `await catalog.models(headers_or_None, client)` (no I/O while fresh), then
- `GET /v1/models` → `list_object(models)`;
- `GET /v1/models/{id}` → `catalog.retrieve(id)` (GatewayError 404 `model_not_found` when unknown);
- chat/responses requests → `catalog.check(model)`: a 404 `model_not_found` only while `is_authoritative()`
  (live data, or the gateway's own disk cache, younger than `ttl`); otherwise the request is forwarded and the
  backend decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from .accounts.auth_file import format_iso
from .accounts.auth_file import parse_iso
from .accounts.file_state import CATALOG_NAME
from .accounts.file_state import FileCatalogCache
from .accounts.state import CatalogCache
from .errors import GatewayError
from .model_names import ModelChoice
from .model_names import alias_objects
from .model_names import resolve
from .models import catalog_from_cache
from .models import model_object

__all__ = [
    "ModelCatalog",
    "list_object",
    "model_not_found",
    "BUILTIN_INFOS",
    "DEFAULT_CLIENT_VERSION",
    "CACHE_NAME",
]

logger = logging.getLogger(__name__)

DEFAULT_CLIENT_VERSION = "0.171.0"  # the Codex CLI whose requests are recorded in tests/fixtures/codex_cli
CACHE_NAME = CATALOG_NAME  # in gateway_home; never Codex's models_cache.json
_HIDDEN = ("hide", "none")
_EFFORTS = ("low", "medium", "high", "xhigh")


def _builtin(slug: str, context_window: int) -> dict[str, Any]:
    """A ModelInfo for the built-in list; efforts and modalities are the common Codex values (assumed)."""
    return {
        "slug": slug,
        "display_name": slug,
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": [{"effort": e} for e in _EFFORTS],
        "visibility": "list",
        "context_window": context_window,
        "input_modalities": ["text", "image"],
    }


BUILTIN_INFOS: tuple[dict[str, Any], ...] = (
    _builtin("gpt-5.4", 272000),
    _builtin("gpt-5.4-mini", 128000),
    _builtin("gpt-5.3-codex", 272000),
    _builtin("gpt-5.2-codex", 272000),
    _builtin("gpt-5.2", 272000),
    _builtin("gpt-5.1-codex-max", 272000),
)


def model_not_found(model_id: str) -> GatewayError:
    return GatewayError(
        404,
        f"The model '{model_id}' does not exist or you do not have access to it.",
        type="invalid_request_error",
        param="model",
        code="model_not_found",
    )


def list_object(models: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": models}


def catalog_model(info: Mapping[str, Any]) -> dict[str, Any]:
    """One Codex ModelInfo → an OpenAI model object with the reasoning levels and input modalities."""
    slug = str(info["slug"])
    obj = model_object(slug, dict(info))
    for key in ("display_name", "description"):
        if isinstance(info.get(key), str) and info[key]:
            obj[key] = info[key]
    if "reasoning_efforts" not in obj:
        obj["reasoning_efforts"] = []
    default = info.get("default_reasoning_level")
    if isinstance(default, str):
        obj["default_reasoning_effort"] = default
    modalities = info.get("input_modalities")
    obj["input_modalities"] = list(modalities) if isinstance(modalities, list) and modalities else ["text", "image"]
    return obj


class ModelCatalog:
    def __init__(
        self,
        codex_home: Path,
        gateway_home: Path,
        upstream_url: str,
        *,
        clock: Callable[[], float] = time.time,
        ttl: float = 300,
        client_version: str | None = None,
        retry_after: float = 30,
        timeout: float = 10,
        cache: CatalogCache | None = None,
    ) -> None:
        """`cache`: where the fetched list is kept (default: `gateway_home/models_catalog.json`)."""
        self.codex_home = codex_home
        self.cache: CatalogCache = cache or FileCatalogCache(gateway_home / CACHE_NAME)
        self.upstream_url = upstream_url.rstrip("/")
        self.clock = clock
        self.ttl = ttl
        self.retry_after = retry_after
        self.timeout = timeout
        self._client_version = client_version
        self.source: str | None = None  # live | gateway-cache | codex-cache | builtin
        self.fetched_at: float | None = None  # when the live data (or the gateway's disk cache) was fetched
        self.last_error: str | None = None
        self._infos: list[dict[str, Any]] = []
        self._by_slug: dict[str, dict[str, Any]] = {}
        self._etag: str | None = None
        self._failed_at: float | None = None
        self._lock = asyncio.Lock()
        self._disk_checked = False
        self.aliases: dict[str, str] = {}  # option codex_model_aliases, set by the addon

    # -- public -----------------------------------------------------------------------------------------------

    @property
    def client_version(self) -> str:
        if self._client_version:
            return self._client_version
        return _newest(DEFAULT_CLIENT_VERSION, _codex_cache_version(self.codex_home))

    @property
    def url(self) -> str:
        return f"{self.upstream_url}/models?client_version={quote(self.client_version)}"

    async def models(
        self, credentials_headers: Mapping[str, str] | None, client: httpx.AsyncClient
    ) -> list[dict[str, Any]]:
        """The listed models (hidden ones left out). Fetches when stale and credentials are given; never raises
        because of the upstream (failures fall back and are kept in `last_error`)."""
        self._load_disk_once()
        if credentials_headers is not None and self._wants_fetch():
            async with self._lock:
                self._adopt_shared()  # another gateway sharing the cache may have fetched it just now
                if self._wants_fetch():  # a concurrent caller may have fetched meanwhile
                    await self._fetch(credentials_headers, client)
        self._ensure_loaded()
        listed = [catalog_model(info) for info in self._infos if info.get("visibility", "list") not in _HIDDEN]
        if not self.aliases:
            return listed
        # An alias named like a catalog model replaces it: the name now means the alias's target.
        kept = [obj for obj in listed if obj["id"] not in self.aliases]
        return kept + alias_objects(self.aliases, self.lookup, self.known)

    def known(self, model_id: str) -> bool:
        """Whether the current catalog (live, cached or built-in) has a model of exactly this id."""
        self._ensure_loaded()
        return model_id in self._by_slug

    def choose(self, name: str) -> ModelChoice:
        """The model a requested name stands for: an alias, an exact id, or `<model>-<effort>` (model_names.py)."""
        return resolve(name, self.aliases, self.known)

    def lookup(self, model_id: str) -> dict[str, Any] | None:
        """The model object for `model_id`, hidden models included; None if the current catalog lacks it."""
        self._ensure_loaded()
        info = self._by_slug.get(model_id)
        return catalog_model(info) if info is not None else None

    def retrieve(self, model_id: str) -> dict[str, Any]:
        """`GET /v1/models/{id}`: the model object (also for an alias or `<model>-<effort>`) or a 404
        `model_not_found` GatewayError."""
        if model_id in self.aliases:
            return alias_objects({model_id: self.aliases[model_id]}, self.lookup, self.known)[0]
        found = self.lookup(model_id)
        if found is None:
            choice = self.choose(model_id)
            base = self.lookup(choice.model) if choice.effort is not None else None
            if base is None:
                raise model_not_found(model_id)
            found = {**base, "id": model_id, "alias_for": choice.model, "reasoning_effort": choice.effort}
        return found

    def is_authoritative(self) -> bool:
        """True while the catalog is live or fresh: the backend's own list, fetched less than `ttl` ago."""
        return (
            self.source in ("live", "gateway-cache")
            and self.fetched_at is not None
            and self.clock() - self.fetched_at < self.ttl
        )

    def check(self, model_id: str) -> None:
        """Raises the 404 `model_not_found` for an unknown model, but only while the catalog is authoritative."""
        if self.is_authoritative() and model_id not in self._by_slug:
            raise model_not_found(model_id)

    def status(self) -> dict[str, Any]:
        """For logs and status pages: where the list comes from, how old it is, the last failure."""
        return {
            "source": self.source,
            "fetched_at": self.fetched_at,
            "authoritative": self.is_authoritative(),
            "models": len(self._infos),
            "last_error": self.last_error,
        }

    # -- fetching ---------------------------------------------------------------------------------------------

    def _wants_fetch(self) -> bool:
        now = self.clock()
        if self.is_authoritative():
            return False
        return self._failed_at is None or now - self._failed_at >= self.retry_after

    async def _fetch(self, credentials_headers: Mapping[str, str], client: httpx.AsyncClient) -> None:
        headers = {"Accept": "application/json", **credentials_headers}
        if self._etag and self.source in ("live", "gateway-cache"):
            headers["If-None-Match"] = self._etag
        try:
            response = await client.get(self.url, headers=headers, timeout=self.timeout)
        except httpx.HTTPError as e:
            self._failed(f"{type(e).__name__}: {e}")
            return
        if response.status_code == 304 and self._infos and self.source in ("live", "gateway-cache"):
            self._adopt(self._infos, "live", self.clock(), self._etag)
            self._save()
            return
        if response.status_code != 200:
            self._failed(f"HTTP {response.status_code}")
            return
        try:
            infos = _infos_from(orjson.loads(response.content))
        except orjson.JSONDecodeError:
            infos = []
        if not infos:
            self._failed("the answer held no models")
            return
        etag = response.headers.get("etag") or response.headers.get("x-models-etag")
        self._adopt(infos, "live", self.clock(), etag)
        self._save()

    def _failed(self, why: str) -> None:
        self.last_error = why
        self._failed_at = self.clock()
        logger.warning("codex-gateway: fetching the model list from %s/models failed (%s)", self.upstream_url, why)

    # -- fallbacks and state ----------------------------------------------------------------------------------

    def _adopt(self, infos: list[dict[str, Any]], source: str, fetched_at: float | None, etag: str | None) -> None:
        self._infos = infos
        self._by_slug = {info["slug"]: info for info in infos}
        self.source = source
        self.fetched_at = fetched_at
        self._etag = etag
        if source == "live":
            self.last_error = None
            self._failed_at = None

    def _load_disk_once(self) -> None:
        """At start: the gateway's own cache, so a fresh one spares the first fetch."""
        if self._disk_checked or self._infos:
            return
        self._disk_checked = True
        cached = self._read_disk()
        if cached is not None:
            self._adopt(*cached)

    def _adopt_shared(self) -> None:
        cached = self._read_disk()
        if cached is not None and cached[2] is not None and cached[2] > (self.fetched_at or float("-inf")):
            self._adopt(*cached)

    def _ensure_loaded(self) -> None:
        self._load_disk_once()
        if self._infos:
            return  # live data, even stale, beats every fallback
        codex = catalog_from_cache(self.codex_home)
        infos = _infos_from({"models": codex}) if codex else []
        if infos:
            self._adopt(infos, "codex-cache", None, None)
        else:
            self._adopt([dict(info) for info in BUILTIN_INFOS], "builtin", None, None)

    def _read_disk(self) -> tuple[list[dict[str, Any]], str, float | None, str | None] | None:
        doc = self.cache.read()
        if doc is None or doc.get("upstream") != self.upstream_url:
            return None  # another backend's list (e.g. a test fake) says nothing about this one
        infos = _infos_from(doc)
        if not infos:
            return None
        etag = doc.get("etag") if isinstance(doc.get("etag"), str) else None
        return infos, "gateway-cache", parse_iso(doc.get("fetched_at")), etag

    def _save(self) -> None:
        doc: dict[str, Any] = {
            "fetched_at": format_iso(self.fetched_at if self.fetched_at is not None else self.clock()),
            "etag": self._etag,
            "client_version": self.client_version,
            "upstream": self.upstream_url,
            "models": self._infos,
        }
        self.cache.write(doc)


def _infos_from(doc: Any) -> list[dict[str, Any]]:
    """Codex's `{"models": [...]}` (also a bare list or `{"data": [...]}`): valid entries, deduplicated,
    ordered by `priority` (then as sent)."""
    models = doc.get("models", doc.get("data")) if isinstance(doc, dict) else doc
    if not isinstance(models, list):
        return []
    seen: dict[str, dict[str, Any]] = {}
    for info in models:
        if isinstance(info, dict) and isinstance(info.get("slug"), str) and info["slug"] and info["slug"] not in seen:
            seen[info["slug"]] = info
    infos = list(seen.values())

    def priority(info: dict[str, Any]) -> float:
        value = info.get("priority")
        return value if isinstance(value, int | float) and not isinstance(value, bool) else float("inf")

    return sorted(infos, key=priority)


def _codex_cache_version(codex_home: Path) -> str | None:
    try:
        doc = orjson.loads((codex_home / "models_cache.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    version = doc.get("client_version") if isinstance(doc, dict) else None
    return version if isinstance(version, str) else None


def _newest(default: str, other: str | None) -> str:
    def key(version: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in version.split("."))
        except ValueError:
            return ()

    return other if other is not None and key(other) > key(default) else default
