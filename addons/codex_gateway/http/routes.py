"""Which endpoint a client request is for. Anything the gateway does not serve is an error, never forwarded."""

from __future__ import annotations

from enum import Enum
from urllib.parse import unquote

from ..errors import GatewayError
from ..flow_record import Route

# Route: declared with the flow record, which keeps it
__all__ = ["Route", "LocalRoute", "route_for", "endpoint_of", "local_route", "gateway_page", "model_id", "check_body"]


class LocalRoute(Enum):
    """The gateway's own pages (inspect/observer.py): answered locally, never forwarded, never in a flow record."""

    HEALTH = "gateway.health"
    STATUS = "gateway.status"
    METRICS = "gateway.metrics"
    STATUS_PAGE = "gateway.page"


# path (without the optional /v1 prefix) → (route, allowed method)
_ROUTES: dict[str, tuple[Route, str]] = {
    "/chat/completions": (Route.CHAT, "POST"),
    "/responses": (Route.RESPONSES, "POST"),
    "/responses/compact": (Route.COMPACT, "POST"),
    "/models": (Route.MODELS, "GET"),
    "/images/generations": (Route.IMAGES_GENERATIONS, "POST"),
    "/images/edits": (Route.IMAGES_EDITS, "POST"),
    "/messages": (Route.MESSAGES, "POST"),
    "/messages/count_tokens": (Route.COUNT_TOKENS, "POST"),
}


_LOCAL: dict[str, LocalRoute] = {
    "/_gateway/health": LocalRoute.HEALTH,
    "/_gateway/status": LocalRoute.STATUS,
    "/_gateway": LocalRoute.STATUS_PAGE,
    "/metrics": LocalRoute.METRICS,
}
_LOCAL_PREFIXES = ("/_gateway", "/metrics")


def local_route(method: str, path: str) -> LocalRoute | None:
    """The gateway's own health, status, metrics and status page (GET or HEAD); None for every other path."""
    if not path.startswith(_LOCAL_PREFIXES):  # the API's paths leave here, after one string comparison
        return None
    route = _LOCAL.get(path.split("?", 1)[0].rstrip("/"))
    if route is not None and method.upper() not in ("GET", "HEAD"):
        raise GatewayError(
            405,
            f"Method {method} is not allowed here; use GET.",
            code="method_not_allowed",
            headers={"allow": "GET, HEAD"},
        )
    return route


def gateway_page(path: str) -> bool:
    """Whether a path is in the gateway's own namespace (`/_gateway…`, `/metrics`): its answers, refusals
    included, are not API requests, so they are never logged or counted."""
    bare = path.split("?", 1)[0].rstrip("/")
    return bare in _LOCAL or bare.startswith("/_gateway/")


def _bare(path: str) -> str:
    bare = path.split("?", 1)[0].rstrip("/") or "/"
    return bare[3:] if bare.startswith("/v1/") else bare


def model_id(path: str) -> str:
    """The `{id}` of `/v1/models/{id}` (percent-decoded)."""
    return unquote(_bare(path)[len("/models/") :])


def _entry(bare: str) -> tuple[Route, str] | None:
    entry = _ROUTES.get(bare)
    if entry is None and bare.startswith("/models/") and "/" not in bare[len("/models/") :]:
        entry = (Route.MODEL, "GET")
    return entry


def endpoint_of(path: str) -> Route | None:
    """The endpoint a path names whatever the method, for the record of a request refused before routing (a wrong
    key, a wrong method); None for a path the gateway does not serve."""
    entry = _entry(_bare(path))
    return entry[0] if entry is not None else None


def route_for(method: str, path: str) -> Route:
    bare = _bare(path)
    entry = _entry(bare)
    if entry is None:
        raise GatewayError(
            404,
            f"Unknown path {path.split('?', 1)[0]!r}: this gateway serves /v1/chat/completions, /v1/responses, "
            "/v1/models, /v1/images and /v1/messages.",
            code="unknown_url",
        )
    route, allowed = entry
    if method.upper() != allowed:
        raise GatewayError(
            405,
            f"Method {method} is not allowed on {bare}; use {allowed}.",
            code="method_not_allowed",
            headers={"allow": allowed},
        )
    return route


def check_body(content_type: str | None, size: int, limit: int, *, multipart: bool = False) -> None:
    """A body the gateway reads: at most `limit` bytes (else 413), and JSON, which arrives as application/json,
    with no content type, or as the form type `curl -d` sends; with `multipart`, multipart/form-data too (image
    edits). Anything else is a 415."""
    if size > limit:
        raise GatewayError(
            413,
            f"The request body has {size} bytes; the gateway accepts at most {limit} (option gateway_body_limit).",
            code="request_too_large",
        )
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if multipart and media == "multipart/form-data":
        return
    if media and media not in _JSON_MEDIA and not media.endswith("+json"):
        raise GatewayError(
            415,
            f"Unsupported content type {media!r}: send the body as application/json.",
            code="unsupported_media_type",
        )


_JSON_MEDIA = frozenset({"application/json", "application/x-www-form-urlencoded", "text/json"})
