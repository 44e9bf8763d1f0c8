"""routes: which endpoint a client request is for (the API's and the gateway's own); everything else is a 404/405,
never forwarded."""

from __future__ import annotations

import pytest
from codex_gateway.errors import GatewayError
from codex_gateway.http.routes import LocalRoute
from codex_gateway.http.routes import Route
from codex_gateway.http.routes import check_body
from codex_gateway.http.routes import endpoint_of
from codex_gateway.http.routes import gateway_page
from codex_gateway.http.routes import local_route
from codex_gateway.http.routes import route_for

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
    ("POST", "/v1/responses", Route.RESPONSES),
    ("POST", "/v1/responses/compact", Route.COMPACT),
    ("GET", "/v1/models/gpt-5-codex", Route.MODEL),
    ("POST", "/v1/images/generations", Route.IMAGES_GENERATIONS),
    ("POST", "/v1/images/edits", Route.IMAGES_EDITS),
]


@pytest.mark.parametrize("method, path, route", ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_route(method: str, path: str, route: Route) -> None:
    assert route_for(method, path) is route


NOT_FOUND = [
    ("GET", "/"),
    ("GET", "/v1"),
    ("POST", "/v1/responses/resp_1/cancel"),
    ("POST", "/v1/completions"),
    ("POST", "/v1/embeddings"),
    ("GET", "/v1/models/a/b"),
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


# -- check_body ----------------------------------------------------------------------------------------------

ACCEPTED_TYPES = [
    None,
    "",
    "application/json",
    "application/json; charset=utf-8",
    "APPLICATION/JSON",
    "application/x-www-form-urlencoded",
    "text/json",
    "application/vnd.api+json",
]


@pytest.mark.parametrize("content_type", ACCEPTED_TYPES)
def test_check_body_accepts_json_types(content_type: str | None) -> None:
    check_body(content_type, 100, 100)  # the size limit is inclusive


@pytest.mark.parametrize(
    "content_type, size, limit, status, code",
    [
        ("text/plain", 10, 100, 415, "unsupported_media_type"),
        ("multipart/form-data; boundary=x", 10, 100, 415, "unsupported_media_type"),
        ("application/xml", 10, 100, 415, "unsupported_media_type"),
        ("application/json", 101, 100, 413, "request_too_large"),
        ("text/plain", 101, 100, 413, "request_too_large"),
    ],
    ids=["text-plain", "multipart", "xml", "too-large", "too-large-wins-over-type"],
)
def test_check_body_rejects(content_type: str, size: int, limit: int, status: int, code: str) -> None:
    with pytest.raises(GatewayError) as e:
        check_body(content_type, size, limit)
    assert (e.value.status, e.value.code) == (status, code)


def test_model_id_is_percent_decoded() -> None:
    from codex_gateway.http.routes import model_id

    assert model_id("/v1/models/gpt-5.4%20mini?x=1") == "gpt-5.4 mini"


LOCAL = [
    ("GET", "/_gateway/health", LocalRoute.HEALTH),
    ("HEAD", "/_gateway/health", LocalRoute.HEALTH),
    ("GET", "/_gateway/status", LocalRoute.STATUS),
    ("GET", "/_gateway/status/?pretty=1", LocalRoute.STATUS),
    ("GET", "/_gateway/", LocalRoute.STATUS_PAGE),
    ("GET", "/_gateway", LocalRoute.STATUS_PAGE),
    ("GET", "/metrics", LocalRoute.METRICS),
    ("get", "/metrics?x=1", LocalRoute.METRICS),
    ("POST", "/v1/chat/completions", None),
    ("GET", "/v1/models", None),
    ("GET", "/metricsx", None),
    ("GET", "/_gateway/other", None),
    ("GET", "/v1/_gateway/health", None),
]


@pytest.mark.parametrize("method, path, route", LOCAL, ids=[f"{m} {p}" for m, p, _ in LOCAL])
def test_local_route(method: str, path: str, route: LocalRoute | None) -> None:
    assert local_route(method, path) is route


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_local_routes_are_get_and_head_only(method: str) -> None:
    with pytest.raises(GatewayError) as info:
        local_route(method, "/_gateway/status")
    assert (info.value.status, info.value.headers) == (405, {"allow": "GET, HEAD"})


GATEWAY_PAGES = [
    ("/_gateway", True),
    ("/_gateway/", True),
    ("/_gateway/health?x=1", True),
    ("/_gateway/nothing/here", True),
    ("/metrics", True),
    ("/metrics/", True),
    ("/metricsx", False),
    ("/_gatewayx", False),
    ("/v1/chat/completions", False),
    ("/v1/_gateway/health", False),
]


@pytest.mark.parametrize("path, own", GATEWAY_PAGES)
def test_the_gateway_s_own_namespace(path: str, own: bool) -> None:
    assert gateway_page(path) is own


ENDPOINTS = [
    ("/v1/chat/completions", Route.CHAT),
    ("/chat/completions?x=1", Route.CHAT),
    ("/v1/messages", Route.MESSAGES),
    ("/v1/models/gpt-5.4", Route.MODEL),
    ("/v1/embeddings", None),
    ("/_gateway/status", None),
]


@pytest.mark.parametrize("path, endpoint", ENDPOINTS)
def test_the_endpoint_a_path_names_whatever_the_method(path: str, endpoint: Route | None) -> None:
    assert endpoint_of(path) is endpoint
