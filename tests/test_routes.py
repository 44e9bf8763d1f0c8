"""routes.route_for: which endpoint a client request is for; everything else is a 404/405, never forwarded."""

from __future__ import annotations

import pytest
from codex_gateway.errors import GatewayError
from codex_gateway.routes import Route
from codex_gateway.routes import route_for

ROUTES = [
    ("POST", "/v1/chat/completions", Route.CHAT),
    ("POST", "/chat/completions", Route.CHAT),
    ("POST", "/v1/chat/completions/", Route.CHAT),
    ("POST", "/v1/chat/completions?api-version=1", Route.CHAT),
    ("post", "/v1/chat/completions", Route.CHAT),
    ("GET", "/v1/models", Route.MODELS),
    ("GET", "/models", Route.MODELS),
    ("GET", "/v1/models/", Route.MODELS),
    ("GET", "/v1/models?limit=5", Route.MODELS),
]


@pytest.mark.parametrize("method, path, route", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_route(method: str, path: str, route: Route) -> None:
    assert route_for(method, path) is route


NOT_FOUND = [
    ("GET", "/"),
    ("GET", "/v1"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
    ("GET", "/v1/models/gpt-5-codex"),
    ("POST", "/v1/chat/completions/extra"),
    ("POST", "/v1/v1/chat/completions"),
    ("POST", "/v2/chat/completions"),
    ("POST", "/V1/chat/completions"),
    ("POST", "/backend-api/codex/responses"),
]


@pytest.mark.parametrize("method, path", NOT_FOUND, ids=[f"{m} {p}" for m, p in NOT_FOUND])
def test_unknown_path_is_404(method: str, path: str) -> None:
    with pytest.raises(GatewayError) as e:
        route_for(method, path)
    assert (e.value.status, e.value.code, e.value.type) == (404, "unknown_url", "not_found_error")


def test_404_message_names_the_path_without_query() -> None:
    with pytest.raises(GatewayError) as e:
        route_for("GET", "/v1/files?purpose=x")
    assert "'/v1/files'" in e.value.message and "purpose" not in e.value.message


WRONG_METHOD = [
    ("GET", "/v1/chat/completions", "POST"),
    ("PUT", "/v1/chat/completions", "POST"),
    ("DELETE", "/chat/completions", "POST"),
    ("OPTIONS", "/v1/chat/completions", "POST"),
    ("POST", "/v1/models", "GET"),
    ("DELETE", "/v1/models", "GET"),
]


@pytest.mark.parametrize("method, path, allowed", WRONG_METHOD, ids=[f"{m} {p}" for m, p, _ in WRONG_METHOD])
def test_wrong_method_is_405_with_allow_header(method: str, path: str, allowed: str) -> None:
    with pytest.raises(GatewayError) as e:
        route_for(method, path)
    assert (e.value.status, e.value.code, e.value.headers) == (405, "method_not_allowed", {"allow": allowed})
