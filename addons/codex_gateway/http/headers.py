"""Header hygiene: what the client may see of the upstream answer, and what a saved flow may keep."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mitmproxy import http
from mitmproxy.net.http import url

if TYPE_CHECKING:
    from .auth import Credentials
    from .settings import Settings

__all__ = [
    "client_response_headers",
    "codex_fields",
    "header_map",
    "redact_request",
    "upstream_headers",
    "upstream_fields",
    "upstream_target",
    "UpstreamTarget",
    "REDACTED",
]

REDACTED = "<redacted>"
_PASS = frozenset({"x-request-id", "retry-after", "openai-model"})
_SECRET_NAMES = frozenset({b"authorization", b"chatgpt-account-id", b"cookie", b"x-api-key", b"proxy-authorization"})
_REDACTED = REDACTED.encode()


def client_response_headers(upstream: http.Headers | None, content_type: str, *, chunked: bool = False) -> http.Headers:
    """An allow-list: never upstream cookies, alt-svc, cf-* or CORS headers, and no stale framing headers."""
    fields: list[tuple[bytes, bytes]] = [(b"content-type", content_type.encode())]
    if upstream is not None:
        for name, value in upstream.fields:
            lower = name.lower()
            if lower.decode("latin-1") in _PASS or lower.startswith(b"x-codex-"):
                fields.append((name, value))
    if chunked:
        # Towards HTTP/1 clients: a cut stream then shows as an incomplete chunked body, not a clean EOF.
        fields.append((b"transfer-encoding", b"chunked"))
    return http.Headers(fields)


def redact_request(headers: http.Headers) -> None:
    """Credentials are only needed until the request is sent; flows are shown and saved afterwards."""
    fields = headers.fields  # raw (name, value) pairs: one pass, no per-name case-insensitive lookups
    for name, value in fields:  # a plain loop: cheaper than any() over a generator for a dozen fields
        # Already redacted values need no new tuple (this runs in several hooks of every flow).
        if value != _REDACTED and name.lower() in _SECRET_NAMES:
            headers.fields = tuple([(n, _REDACTED if n.lower() in _SECRET_NAMES else v) for n, v in fields])
            return


def header_map(headers: http.Headers) -> dict[str, str]:
    """Every header by lower-case name, repeated ones folded with ", " exactly as `Headers.get` returns them:
    one pass over the raw fields instead of a case-insensitive scan of all of them per lookup."""
    out: dict[str, str] = {}
    for name, raw in headers.fields:
        key = name.lower().decode("utf-8", "surrogateescape")  # Headers compares lower-cased bytes, too
        value = raw.decode("utf-8", "surrogateescape")
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def codex_fields(headers: http.Headers) -> tuple[tuple[bytes, bytes], ...]:
    """The raw `x-codex-*` fields of an upstream answer: cheap to compare with the previous answer's."""
    return tuple([field for field in headers.fields if field[0][:8].lower() == b"x-codex-"])  # list: no generator


def upstream_headers(
    settings: Settings, creds: Credentials | None, session_headers: Iterable[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The whole header set of an upstream request, as text (for requests sent with httpx): see `upstream_fields`."""
    fields = upstream_fields(upstream_target(settings), creds, session_headers)
    return [(name.decode(), value.decode()) for name, value in fields]


@dataclass(frozen=True)
class UpstreamTarget:
    """Where upstream requests go, as mitmproxy's request fields hold it (computed once per settings)."""

    scheme: bytes
    host: str
    port: int
    path_prefix: str  # the upstream URL's path without its trailing slash
    authority: bytes  # host[:port] as mitmproxy's `host`/`port` setters write it into a non-empty authority
    host_field: tuple[bytes, bytes]
    agent_fields: tuple[tuple[bytes, bytes], ...]  # originator, User-Agent


_TARGET: tuple[Settings, UpstreamTarget] | None = None  # one slot: settings change only on reconfiguration
_ACCEPT_FIELDS = (
    (b"Accept", b"text/event-stream"),
    (b"Content-Type", b"application/json"),
    (b"Accept-Encoding", b"identity"),
)


def upstream_target(settings: Settings) -> UpstreamTarget:
    global _TARGET
    if _TARGET is not None and _TARGET[0] is settings:
        return _TARGET[1]
    up = settings.upstream
    host = up.hostname or ""
    port = up.port or (443 if up.scheme == "https" else 80)
    hostport = url.hostport(up.scheme, host, port)
    try:
        authority = hostport.encode("idna", "strict")
    except UnicodeError:
        authority = hostport.encode("utf8", "surrogateescape")
    target = UpstreamTarget(
        scheme=up.scheme.encode("utf-8", "surrogateescape"),
        host=host,
        port=port,
        path_prefix=up.path.rstrip("/"),
        authority=authority,
        host_field=(b"Host", up.netloc.encode()),
        agent_fields=((b"originator", settings.originator.encode()), (b"User-Agent", settings.user_agent.encode())),
    )
    _TARGET = (settings, target)
    return target


def upstream_fields(
    target: UpstreamTarget,
    creds: Credentials | None,
    session_headers: Iterable[tuple[str, str]],
    content_length: int | None = None,
) -> tuple[tuple[bytes, bytes], ...]:
    """The whole header set of an upstream request, as raw fields: nothing of the client's is forwarded except the
    Codex session headers the endpoint chose (`session_id`, and for Responses clients their turn headers). With a
    `content_length`, the field mitmproxy's `content` setter would append comes last. The parts that never change
    are encoded once per settings."""
    fields = [target.host_field]
    if creds is not None:  # absent only while replaying offline
        fields.append((b"Authorization", f"Bearer {creds.access_token}".encode()))
        fields.append((b"ChatGPT-Account-ID", creds.account_id.encode()))
    fields += target.agent_fields
    fields += [(k.encode(), v.encode()) for k, v in session_headers]
    fields += _ACCEPT_FIELDS
    if content_length is not None:
        fields.append((b"content-length", str(content_length).encode()))
    return tuple(fields)
