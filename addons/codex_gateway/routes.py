"""Which endpoint a client request is for. Anything the gateway does not serve is an error, never forwarded."""

from __future__ import annotations

from enum import Enum

from .errors import GatewayError

__all__ = ["Route", "route_for"]


class Route(Enum):
    CHAT = "chat.completions"
    MODELS = "models"


# path (without the optional /v1 prefix) → (route, allowed method)
_ROUTES: dict[str, tuple[Route, str]] = {
    "/chat/completions": (Route.CHAT, "POST"),
    "/models": (Route.MODELS, "GET"),
}


def route_for(method: str, path: str) -> Route:
    bare = path.split("?", 1)[0].rstrip("/") or "/"
    if bare.startswith("/v1/"):
        bare = bare[3:]
    entry = _ROUTES.get(bare)
    if entry is None:
        raise GatewayError(
            404,
            f"Unknown path {path.split('?', 1)[0]!r}: this gateway serves /v1/chat/completions and /v1/models.",
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
