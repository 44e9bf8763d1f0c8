"""A fake ChatGPT OAuth issuer (`auth.openai.com`) on 127.0.0.1, for refresh and login tests.

It behaves like the real one where the gateway's correctness depends on it: refresh tokens rotate and a reused
one is rejected with `refresh_token_reused` (401); authorization codes are single-use and bound to the PKCE
challenge and redirect URI; device codes stay pending (403) until a test approves them. Tokens are unsigned JWTs
with `exp`, `email` and the `https://api.openai.com/auth` claims, each with a random part so a test can grep for it::

    with FakeIssuer() as issuer:
        account = issuer.add_account("a@example.com")
        tokens = issuer.issue(account, expires_in=-60)   # an already expired login
        ...
        assert issuer.count("refresh_token") == 1
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import orjson

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any]) -> str:
    return (
        f"{_b64(orjson.dumps({'alg': 'none', 'typ': 'JWT'}))}.{_b64(orjson.dumps(claims))}.{secrets.token_urlsafe(12)}"
    )


@dataclass
class FakeAccount:
    email: str
    plan: str = "plus"
    account_id: str = field(default_factory=lambda: "acct-" + secrets.token_hex(8))


@dataclass(frozen=True)
class IssuedTokens:
    id_token: str
    access_token: str
    refresh_token: str
    account_id: str
    email: str

    def auth_json(self, last_refresh: str | None = None) -> dict[str, Any]:
        """The Codex CLI's auth.json for this login."""
        return {
            "auth_mode": "chatgpt",
            "OPENAI_API_KEY": None,
            "tokens": {
                "id_token": self.id_token,
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "account_id": self.account_id,
            },
            "last_refresh": last_refresh or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        }


@dataclass
class Call:
    path: str
    grant_type: str | None
    status: int
    error: str | None
    encoding: str  # "json" or "form"


@dataclass
class _Device:
    account: FakeAccount
    user_code: str
    approved: bool = False
    code: str | None = None
    verifier: str = field(default_factory=lambda: _b64(secrets.token_bytes(64)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    issuer: FakeIssuer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silence per-request logging (it would print authorization codes)."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        status, headers, payload = self.server.issuer._route(self.command, url.path, url.query, self.headers, body)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


Reply = tuple[int, dict[str, str], bytes]


class FakeIssuer:
    def __init__(self, *, access_ttl: int = 3600, clock: Callable[[], float] = time.time) -> None:
        self.access_ttl = access_ttl
        self.clock = clock
        self.refresh_delay = 0.0  # seconds the refresh grant takes: widens race windows in concurrency tests
        self.device_interval = "5"
        self.calls: list[Call] = []
        self.issued: list[IssuedTokens] = []  # every login handed out (tests grep artefacts for these secrets)
        self.accounts: list[FakeAccount] = []
        self.login_as: FakeAccount | None = None  # who "signs in" at /oauth/authorize
        self.authorize_requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._polled = threading.Condition(self._lock)  # notified on every device-token poll
        self._live_refresh: dict[str, FakeAccount] = {}
        self._used_refresh: set[str] = set()
        self._codes: dict[str, tuple[FakeAccount, str, str]] = {}  # code → (account, challenge, redirect_uri)
        self._devices: dict[str, _Device] = {}
        self._failures: list[tuple[int, dict[str, Any], dict[str, str]]] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.issuer = self
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeIssuer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-issuer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls ------------------------------------------------------------------------------------

    def add_account(self, email: str, plan: str = "plus") -> FakeAccount:
        account = FakeAccount(email=email, plan=plan)
        with self._lock:
            self.accounts.append(account)
            self.login_as = self.login_as or account
        return account

    def issue(self, account: FakeAccount, *, expires_in: int | None = None) -> IssuedTokens:
        """A fresh login for `account` (its refresh token is live), as if it had signed in."""
        with self._lock:
            return self._issue(account, expires_in)

    def fail_next(
        self, status: int, body: dict[str, Any], *, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        """The next `times` token-endpoint calls answer this instead (transient or permanent failures)."""
        with self._lock:
            self._failures.extend([(status, body, headers or {})] * times)

    def revoke(self, refresh_token: str) -> None:
        with self._lock:
            self._live_refresh.pop(refresh_token, None)

    def approve(self, user_code: str) -> None:
        with self._lock:
            for device in self._devices.values():
                if device.user_code == user_code:
                    device.approved = True
                    return
        raise KeyError(user_code)

    def wait_for_device_polls(self, n: int, timeout: float = 20.0) -> None:
        """Blocks until the device-token endpoint was polled `n` times (so a test approves a *pending* code)."""
        path = "/api/accounts/deviceauth/token"
        with self._polled:
            if not self._polled.wait_for(lambda: sum(c.path == path for c in self.calls) >= n, timeout):
                raise TimeoutError(f"fewer than {n} device polls")

    def count(self, grant_type: str | None = None, path: str = "/oauth/token") -> int:
        with self._lock:
            return sum(1 for c in self.calls if c.path == path and (grant_type is None or c.grant_type == grant_type))

    def errors(self) -> list[str]:
        with self._lock:
            return [c.error for c in self.calls if c.error]

    # -- routes --------------------------------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: str, headers: Any, body: bytes) -> Reply:
        if method == "GET" and path == "/oauth/authorize":
            return self._authorize({k: v[0] for k, v in parse_qs(query).items()})
        if method == "POST" and path == "/oauth/token":
            return self._token(headers.get("content-type", ""), body)
        if method == "POST" and path == "/api/accounts/deviceauth/usercode":
            return self._usercode(body)
        if method == "POST" and path == "/api/accounts/deviceauth/token":
            return self._device_token(body)
        return _json(404, {"detail": "Not Found"})

    def _authorize(self, params: dict[str, str]) -> Reply:
        with self._lock:
            self.authorize_requests.append(params)
            account = self.login_as
            if (
                params.get("client_id") != CLIENT_ID
                or params.get("response_type") != "code"
                or params.get("code_challenge_method") != "S256"
                or not params.get("code_challenge")
                or not params.get("redirect_uri")
                or account is None
            ):
                return _json(400, {"error": "invalid_request"})
            code = "ac_" + secrets.token_urlsafe(24)
            self._codes[code] = (account, params["code_challenge"], params["redirect_uri"])
        location = params["redirect_uri"] + "?" + urlencode({"code": code, "state": params.get("state", "")})
        return 302, {"Location": location}, b""

    def _token(self, content_type: str, body: bytes) -> Reply:
        encoding = "json" if "json" in content_type else "form"
        try:
            params = orjson.loads(body) if encoding == "json" else {k: v[0] for k, v in parse_qs(body.decode()).items()}
        except (orjson.JSONDecodeError, UnicodeDecodeError):
            params = {}
        grant = params.get("grant_type") if isinstance(params, dict) else None
        if grant == "refresh_token" and self.refresh_delay:
            time.sleep(self.refresh_delay)
        with self._lock:
            if self._failures:
                status, err, headers = self._failures.pop(0)
                self._record("/oauth/token", grant, status, err, encoding)
                return _json(status, err, headers)
            if not isinstance(params, dict) or params.get("client_id") != CLIENT_ID:
                return self._reply_error(grant, encoding, 401, "invalid_client", "Unknown client.")
            if grant == "refresh_token":
                return self._refresh(str(params.get("refresh_token") or ""), encoding)
            if grant == "authorization_code":
                return self._exchange(params, encoding)
            return self._reply_error(grant, encoding, 400, "unsupported_grant_type", "Unsupported grant type.")

    def _refresh(self, token: str, encoding: str) -> Reply:
        if token in self._used_refresh:
            message = (
                "Your refresh token has already been used to generate a new access token. Please try signing in again."
            )
            return self._reply_error("refresh_token", encoding, 401, "refresh_token_reused", message)
        account = self._live_refresh.pop(token, None)
        if account is None:
            return self._reply_error(
                "refresh_token", encoding, 401, "refresh_token_invalidated", "Unknown refresh token."
            )
        self._used_refresh.add(token)
        issued = self._issue(account, None)
        self._record("/oauth/token", "refresh_token", 200, None, encoding)
        # The real issuer answers all three; the client must also cope with a partial answer.
        return _json(
            200,
            {"id_token": issued.id_token, "access_token": issued.access_token, "refresh_token": issued.refresh_token},
        )

    def _exchange(self, params: dict[str, Any], encoding: str) -> Reply:
        code = str(params.get("code") or "")
        entry = self._codes.pop(code, None)
        verifier = str(params.get("code_verifier") or "")
        if entry is None:
            return self._reply_error("authorization_code", encoding, 400, "invalid_grant", "Unknown or used code.")
        account, challenge, redirect_uri = entry
        if _b64(hashlib.sha256(verifier.encode()).digest()) != challenge:
            return self._reply_error("authorization_code", encoding, 400, "invalid_grant", "PKCE verification failed.")
        if params.get("redirect_uri") != redirect_uri:
            return self._reply_error("authorization_code", encoding, 400, "invalid_grant", "redirect_uri mismatch.")
        issued = self._issue(account, None)
        self._record("/oauth/token", "authorization_code", 200, None, encoding)
        return _json(
            200,
            {"id_token": issued.id_token, "access_token": issued.access_token, "refresh_token": issued.refresh_token},
        )

    def _usercode(self, body: bytes) -> Reply:
        params = _loads(body)
        with self._lock:
            self._record("/api/accounts/deviceauth/usercode", None, 200, None, "json")
            if params.get("client_id") != CLIENT_ID or self.login_as is None:
                return _json(400, {"error": "invalid_client"})
            device_id = "dev_" + secrets.token_hex(8)
            user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
            self._devices[device_id] = _Device(self.login_as, user_code)
        return _json(200, {"device_auth_id": device_id, "user_code": user_code, "interval": self.device_interval})

    def _device_token(self, body: bytes) -> Reply:
        params = _loads(body)
        with self._lock:
            self._polled.notify_all()  # waiters wake after this block, when the poll below is recorded
            device = self._devices.get(str(params.get("device_auth_id")))
            if device is None or device.user_code != params.get("user_code"):
                self._record("/api/accounts/deviceauth/token", None, 404, "unknown_device", "json")
                return _json(404, {"error": {"code": "not_found", "message": "Unknown device code."}})
            if not device.approved:
                self._record("/api/accounts/deviceauth/token", None, 403, None, "json")
                return _json(403, {"error": {"code": "deviceauth_authorization_pending", "message": "Pending."}})
            if device.code is None:
                device.code = "ac_" + secrets.token_urlsafe(24)
                challenge = _b64(hashlib.sha256(device.verifier.encode()).digest())
                self._codes[device.code] = (device.account, challenge, f"{self.url}/deviceauth/callback")
            self._record("/api/accounts/deviceauth/token", None, 200, None, "json")
            challenge = _b64(hashlib.sha256(device.verifier.encode()).digest())
            return _json(
                200, {"authorization_code": device.code, "code_challenge": challenge, "code_verifier": device.verifier}
            )

    # -- helpers (called with the lock held) ------------------------------------------------------------------

    def _issue(self, account: FakeAccount, expires_in: int | None) -> IssuedTokens:
        now = int(self.clock())
        auth = {
            "chatgpt_account_id": account.account_id,
            "chatgpt_plan_type": account.plan,
            "chatgpt_user_id": "user-1",
        }
        ttl = self.access_ttl if expires_in is None else expires_in
        issued = IssuedTokens(
            id_token=unsigned_jwt({"email": account.email, "exp": now + 3600, "https://api.openai.com/auth": auth}),
            access_token=unsigned_jwt(
                {"exp": now + ttl, "https://api.openai.com/auth": auth, "n": secrets.token_hex(8)}
            ),
            refresh_token="rt_" + secrets.token_urlsafe(24),
            account_id=account.account_id,
            email=account.email,
        )
        self._live_refresh[issued.refresh_token] = account
        self.issued.append(issued)
        return issued

    def _reply_error(self, grant: str | None, encoding: str, status: int, code: str, message: str) -> Reply:
        self._record("/oauth/token", grant, status, code, encoding)
        return _json(status, {"error": {"code": code, "message": message, "type": "invalid_request_error"}})

    def _record(self, path: str, grant: str | None, status: int, error: Any, encoding: str) -> None:
        if isinstance(error, dict):
            inner = error.get("error")
            error = inner.get("code") if isinstance(inner, dict) else inner
        self.calls.append(Call(path, grant, status, error if isinstance(error, str) else None, encoding))


def _loads(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, {"Content-Type": "application/json", **(headers or {})}, orjson.dumps(payload)
