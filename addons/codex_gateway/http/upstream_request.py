"""The client's request rewritten in place into the upstream request: the one place that writes mitmproxy's private
request fields (`http.Request.data`).

Why not the public API: the setters (`method`, `scheme`, `host`, `port`, `path`, `headers`, `content`) re-parse
and re-encode each value, rewrite the Host header and the HTTP/2 `:authority` as they go, and `content` looks up
the content-encoding and rewrites content-length. The gateway's new header set already holds Host and
content-length, so all of that is work done twice on every request. tests/http/test_upstream_request.py checks
that the result equals what the setters make (HTTP/1.1 and HTTP/2 clients) and fails when a mitmproxy release
renames or retypes a field written here.
"""

from __future__ import annotations

from mitmproxy import http

from .headers import UpstreamTarget

__all__ = ["REQUEST_FIELDS", "rewrite_in_place"]

# The `http.RequestData` fields written below, with their types.
REQUEST_FIELDS: dict[str, type] = {
    "method": bytes,
    "scheme": bytes,
    "host": str,
    "port": int,
    "path": bytes,
    "authority": bytes,
    "headers": http.Headers,
    "content": bytes,
}


def rewrite_in_place(
    request: http.Request, target: UpstreamTarget, path: str, fields: tuple[tuple[bytes, bytes], ...], body: bytes
) -> None:
    """`request` becomes `POST {target}{path}` with exactly `fields` as its headers (they must hold Host and
    content-length) and `body` as its content."""
    data = request.data
    data.method = b"POST"
    data.scheme = target.scheme
    data.host = target.host
    data.port = target.port
    data.path = (target.path_prefix + path).encode("utf-8", "surrogateescape")
    if data.authority:  # HTTP/2 clients: the public `host`/`port` setters would rewrite the :authority
        data.authority = target.authority
    data.headers = http.Headers(fields)
    data.content = body
