"""A real HTTP/1.1 fake of the Codex backend (``chatgpt.com/backend-api/codex``).

Tests run it in-process on 127.0.0.1 (random port, one thread per
connection) and point the gateway at :attr:`FakeCodexBackend.codex_base`.
It enforces the real backend's request rules (see ``codex_rules``), so a
gateway bug that would earn a 400 in production earns one here too, and it
answers with scripted SSE streams written chunk by chunk, so streaming,
split lines, stalls and cut connections can be tested without mocks::

    with FakeCodexBackend() as backend:
        backend.enqueue(SSEScript(ev.text(["Hel", "lo"]), chunks=3))
        ...  # drive the gateway
        assert backend.responses_requests()[0].json["store"] is False

Run standalone for benchmarks: ``python -m scripts.fakes.codex_backend --port 8123``.
"""

from __future__ import annotations

import argparse
import collections
import copy
import select
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any

import orjson

from scripts.fakes import codex_events as ev
from scripts.fakes.codex_models import DEFAULT_MODELS
from scripts.fakes.codex_rules import Rejection
from scripts.fakes.codex_rules import check_auth
from scripts.fakes.codex_rules import detail
from scripts.fakes.codex_rules import validate_responses_body
from scripts.fakes.codex_scripts import ErrorScript
from scripts.fakes.codex_scripts import RecordedRequest
from scripts.fakes.codex_scripts import Script
from scripts.fakes.codex_scripts import SSEScript
from scripts.fakes.codex_scripts import default_headers
from scripts.fakes.codex_scripts import merge_headers

CODEX_PREFIX = "/backend-api/codex"
RESPONSES_PATH = f"{CODEX_PREFIX}/responses"
COMPACT_PATH = f"{CODEX_PREFIX}/responses/compact"
MODELS_PATH = f"{CODEX_PREFIX}/models"
USAGE_PATH = "/backend-api/wham/usage"  # what the Codex CLI's /status reads (rate limits, credits)
HOLD_MAX_S = 30.0

RouteHandler = Callable[["RecordedRequest"], tuple[int, dict[str, str], bytes]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # 64+ concurrent connects must not overflow the backlog
    backend: FakeCodexBackend

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ssl.SSLError):
            return  # https: a peer that connected without a TLS handshake (e.g. a proxy's probe)
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Parses one request at a time (keep-alive), records it, and answers by route."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small SSE chunks must leave immediately
    server: _Server

    def version_string(self) -> str:
        return "cloudflare"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging."""

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # here, in the connection's thread, not in the accepting one
        super().setup()
        self.server.backend._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.backend._track(self.connection, add=False)
        super().finish()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = bytearray()
            while size := int(self.rfile.readline(65537).split(b";")[0].strip() or b"0", 16):
                out += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(out)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        backend = self.server.backend
        body = self._read_body()
        headers: dict[str, str] = {}
        for name, value in self.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        try:
            parsed = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
        rec = RecordedRequest(self.command, self.path, headers, body, parsed)
        try:
            self._route(backend, rec)
        except OSError:
            rec.disconnected.set()
            self.close_connection = True
        finally:
            rec.finished.set()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _handle

    def _route(self, backend: FakeCodexBackend, rec: RecordedRequest) -> None:
        key = (rec.method, rec.route)
        known = {("GET", MODELS_PATH), ("POST", RESPONSES_PATH), ("POST", COMPACT_PATH), ("GET", USAGE_PATH)}
        json_headers = merge_headers(default_headers(), {"content-type": "application/json"})
        if key in backend.extra_routes:
            status, headers, body = backend.extra_routes[key](rec)
            backend._record(rec, status)
            self._send(status, headers, body)
        elif key not in known:
            missing = any(rec.route == path for _, path in known)
            self._reject(backend, rec, detail("Method Not Allowed", 405) if missing else detail("Not Found", 404))
        elif (rej := check_auth(rec.headers, backend.accept_tokens)) is not None:
            self._reject(backend, rec, rej)
        elif rec.route == USAGE_PATH:
            status, usage = backend.usage_answer(rec)
            backend._record(rec, status)
            self._send(status, json_headers, orjson.dumps(usage))
        elif rec.route == MODELS_PATH:
            backend._record(rec, 200)
            payload = orjson.dumps({"models": backend.models})
            self._send(200, {**json_headers, "etag": 'W/"fake-models-1"'}, payload)
        elif rec.route == COMPACT_PATH:
            backend._record(rec, 200)
            out = {"output": [{"type": "compaction", "encrypted_content": "gAAAAABfakeCompactedHistory=="}]}
            self._send(200, json_headers, orjson.dumps(out))
        elif backend.strict and (rej := self._validate(backend, rec)) is not None:
            self._reject(backend, rec, rej)
        else:
            script = backend._next_script(rec)
            backend._record(rec, script.status)
            if isinstance(script, ErrorScript):
                raw, ctype = script.payload()
                self._send(
                    script.status,
                    merge_headers(default_headers(), {"content-type": ctype}, script.headers),
                    raw,
                )
            else:
                self._stream(backend, rec, script)

    @staticmethod
    def _validate(backend: FakeCodexBackend, rec: RecordedRequest) -> Rejection | None:
        if rec.json is None:
            return detail("Invalid JSON in request body")
        return validate_responses_body(
            rec.json, require_instructions=backend.require_instructions, allowed_models=backend.allowed_models
        )

    def _reject(self, backend: FakeCodexBackend, rec: RecordedRequest, rej: Rejection) -> None:
        backend._record(rec, rej.status, rej.message)
        hdrs = merge_headers(default_headers(), {"content-type": "application/json"})
        self._send(rej.status, hdrs, orjson.dumps(rej.body))

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunk(self, data: bytes | bytearray) -> None:
        if data:  # an empty chunk would terminate the body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), bytes(data)))

    def _stream(self, backend: FakeCodexBackend, rec: RecordedRequest, script: SSEScript) -> None:
        base = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        self.send_response(script.status)
        for name, value in merge_headers(default_headers(), base, script.headers).items():
            if name not in ("content-length", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        size = script.chunks if isinstance(script.chunks, int) else None
        buf = bytearray()
        for written, blob in enumerate([b"", *script.encoded()]):
            if written > 1 and script.delay_s and backend._stopping.wait(script.delay_s):
                break
            if script.chunks == "per_event":
                self._chunk(blob)
            else:
                buf += blob
                while size is not None and len(buf) >= size:
                    self._chunk(buf[:size])
                    del buf[:size]
            if written in (script.hold_after, script.cut_after):
                self._chunk(buf)
                buf.clear()
            if written == script.hold_after and script.release is not None:
                if not self._hold(backend, script.release):
                    break
            if written == script.cut_after:
                break
        else:
            self._chunk(buf)
            self.wfile.write(b"0\r\n\r\n")
            return
        self.close_connection = True  # cut: the server closes without the 0-chunk

    def _hold(self, backend: FakeCodexBackend, release: threading.Event) -> bool:
        """Wait for ``release``; False if the fake is stopping. Raises if the client went away."""
        deadline = time.monotonic() + HOLD_MAX_S
        while not release.wait(0.01):
            if backend._stopping.is_set():
                return False
            if time.monotonic() > deadline:
                return True
            if self._peer_closed():
                raise ConnectionResetError("client closed the connection while the stream was held")
        return True

    def _peer_closed(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class FakeCodexBackend:
    """The fake server: scripts in, recorded requests out. Thread-safe; usable as a context manager.

    Knobs (plain attributes, change them any time): ``accept_tokens``
    (None = any non-empty bearer), ``models`` (served by ``/models``),
    ``strict`` (False skips body validation), ``require_instructions``,
    ``allowed_models`` (None = any), ``extra_routes`` (``(METHOD, path)`` →
    handler, consulted first; path excludes the query), ``default_delay_s``,
    ``usage`` (``GET /backend-api/wham/usage`` answers per ``ChatGPT-Account-Id``:
    an account id → ``(status, payload)``; others get ``default_usage(rec)``).
    """

    def __init__(self, port: int = 0, *, default_delay_s: float = 0.0, tls: ssl.SSLContext | None = None) -> None:
        self._want_port = port
        self.tls = tls  # a server context: serve https (the handshake happens in each connection's thread)
        self.default_delay_s = default_delay_s
        self.accept_tokens: set[str] | None = None
        self.models: list[dict[str, Any]] = copy.deepcopy(DEFAULT_MODELS)
        self.strict = True
        self.require_instructions = True
        self.allowed_models: set[str] | None = None
        self.extra_routes: dict[tuple[str, str], RouteHandler] = {}
        self.usage: dict[str, tuple[int, dict[str, Any]]] = {}
        self.requests: list[RecordedRequest] = []
        self._queue: collections.deque[Script] = collections.deque()
        self._cond = threading.Condition()
        self._conns: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def start(self) -> FakeCodexBackend:
        """Bind 127.0.0.1 and serve in a daemon thread."""
        self._stopping.clear()
        server = _Server(("127.0.0.1", self._want_port), _Handler)
        server.backend = self
        if self.tls is not None:
            server.socket = self.tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-codex-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end held streams and close open connections."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        with self._cond:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeCodexBackend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeCodexBackend is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def codex_base(self) -> str:
        return f"{self.base_url}{CODEX_PREFIX}"

    # -- scripting and records
    def enqueue(self, *scripts: Script | Sequence[dict[str, Any] | str]) -> None:
        """Queue answers (FIFO) for the next accepted POST .../responses calls; lists become SSEScripts."""
        with self._cond:
            self._queue.extend(s if isinstance(s, SSEScript | ErrorScript) else SSEScript(list(s)) for s in scripts)

    def pending(self) -> int:
        """Number of scripts not yet consumed."""
        with self._cond:
            return len(self._queue)

    def responses_requests(self) -> list[RecordedRequest]:
        """Recorded POST /backend-api/codex/responses requests (accepted or rejected)."""
        with self._cond:
            return [r for r in self.requests if r.method == "POST" and r.route == RESPONSES_PATH]

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests were recorded; raises TimeoutError otherwise."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= n, timeout):
                raise TimeoutError(f"expected {n} requests, got {len(self.requests)}")
            return list(self.requests)

    def reset(self) -> None:
        """Clear the script queue and the records."""
        with self._cond:
            self._queue.clear()
            self.requests.clear()

    def usage_answer(self, rec: RecordedRequest) -> tuple[int, dict[str, Any]]:
        """The wham/usage answer for the account the request names (`usage`, else a quiet plus account)."""
        account = rec.headers.get("chatgpt-account-id", "")
        with self._cond:
            scripted = self.usage.get(account)
        return scripted if scripted is not None else (200, usage_payload(12.0, 34.0))

    def default_script(self, rec: RecordedRequest) -> Script:
        """What an empty queue serves: "Hello from fake Codex" in 3 deltas. Override freely."""
        model = rec.json.get("model", "gpt-5.4") if isinstance(rec.json, dict) else "gpt-5.4"
        events = ev.text(["Hello", " from fake", " Codex"], response_id=f"resp_{uuid.uuid4().hex}", model=model)
        return SSEScript(events, delay_s=self.default_delay_s)

    # -- used by the handler
    def _next_script(self, rec: RecordedRequest) -> Script:
        with self._cond:
            script = self._queue.popleft() if self._queue else None
        return script if script is not None else self.default_script(rec)

    def _record(self, rec: RecordedRequest, status: int, error: str | None = None) -> None:
        rec.status, rec.error = status, error
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._cond:
            (self._conns.add if add else self._conns.discard)(conn)


def usage_payload(
    primary: float, secondary: float, *, plan: str = "plus", reset_in: int = 3600, now: float | None = None
) -> dict[str, Any]:
    """A `wham/usage` answer in the shape the real backend gives (windows in seconds, reset times in unix s)."""
    at = int(time.time() if now is None else now)
    return {
        "plan_type": plan,
        "rate_limit": {
            "allowed": True,
            "limit_reached": primary >= 100 or secondary >= 100,
            "primary_window": {"used_percent": primary, "limit_window_seconds": 18000, "reset_at": at + reset_in},
            "secondary_window": {
                "used_percent": secondary,
                "limit_window_seconds": 604800,
                "reset_at": at + 5 * 86400,
            },
        },
        "credits": {"has_credits": False, "unlimited": False, "balance": "0"},
    }


try:
    import pytest
except ImportError:  # standalone use without pytest installed
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def codex_backend() -> Iterator[FakeCodexBackend]:
        """A started fake; import it into a test module or conftest to use it."""
        with FakeCodexBackend() as backend:
            yield backend


def main(argv: list[str] | None = None) -> None:
    """CLI: serve the default answer until interrupted (for benchmarks and manual checks)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay-s", type=float, default=0.0, help="sleep between default-answer events")
    parser.add_argument("--no-validate", action="store_true", help="skip request body validation")
    parser.add_argument("--token", action="append", help="accepted bearer token (repeatable; default: any)")
    args = parser.parse_args(argv)
    backend = FakeCodexBackend(args.port, default_delay_s=args.delay_s)
    backend.strict = not args.no_validate
    backend.accept_tokens = set(args.token) if args.token else None
    backend.start()
    print(f"listening on 127.0.0.1:{backend.port}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()


if __name__ == "__main__":
    main()
