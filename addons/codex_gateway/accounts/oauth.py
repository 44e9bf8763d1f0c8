"""ChatGPT OAuth with the Codex CLI's public client: refresh, browser (PKCE) login and device-code login.

Everything follows the Codex CLI's wire format (its public client id, `https://auth.openai.com/oauth/token`,
the callback on `localhost:1455`), so tokens obtained here are interchangeable with `codex login`'s. Pure
asyncio + httpx: nothing here imports mitmproxy, and no function logs or formats a token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import urlsplit

import httpx
import orjson

from ..upstream.client import upstream_client
from ..upstream.proxy import proxy_config

__all__ = [
    "CLIENT_ID",
    "DEFAULT_ISSUER",
    "OAuthError",
    "TokenResponse",
    "authorize_url",
    "browser_login",
    "device_login",
    "exchange_code",
    "pkce_pair",
    "refresh_tokens",
]

logger = logging.getLogger(__name__)

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
DEFAULT_ISSUER = "https://auth.openai.com"
SCOPE = "openid profile email offline_access api.connectors.read api.connectors.invoke"
CALLBACK_PATH = "/auth/callback"
DEFAULT_PORT = 1455
FALLBACK_PORT = 1457
DEVICE_TIMEOUT_S = 15 * 60
PERMANENT_REFRESH_CODES = frozenset({"refresh_token_expired", "refresh_token_reused", "refresh_token_invalidated"})
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class OAuthError(Exception):
    """A failed token-endpoint call. `permanent` means retrying with the same refresh token cannot succeed."""

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.permanent = permanent
        self.retry_after: int | None = None


@dataclass(frozen=True)
class TokenResponse:
    id_token: str
    access_token: str
    refresh_token: str

    def __repr__(self) -> str:
        return "TokenResponse(<redacted>)"


def pkce_pair() -> tuple[str, str]:
    """(verifier, challenge): 64 random bytes b64url without padding, and b64url(sha256(verifier)), as the Codex
    CLI makes them."""
    verifier = _b64url(secrets.token_bytes(64))
    return verifier, _b64url(hashlib.sha256(verifier.encode()).digest())


def new_state() -> str:
    return _b64url(secrets.token_bytes(32))


def authorize_url(issuer: str, redirect_uri: str, challenge: str, state: str, originator: str = "codex_cli_rs") -> str:
    """The authorize URL with the Codex CLI's parameters, in its order, each value percent-encoded."""
    params = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("scope", SCOPE),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
        ("state", state),
        ("originator", originator),
    ]
    query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params)
    return f"{issuer.rstrip('/')}/oauth/authorize?{query}"


def own_client() -> httpx.AsyncClient:
    """The client of a caller that brings none (the command line): the environment's proxy settings
    (`HTTPS_PROXY`, `NO_PROXY`, ...), read as the gateway reads them when `codex_proxy` is unset."""
    return upstream_client(proxy_config(None, "", os.environ), TIMEOUT)


# -- token endpoint -------------------------------------------------------------------------------------------


async def refresh_tokens(http: httpx.AsyncClient | None, issuer: str, refresh_token: str) -> dict[str, str]:
    """The refresh grant, a JSON body as the Codex CLI sends it; returns the string fields present among
    id/access/refresh token (each is optional: present ones replace the stored ones, and the refresh token
    rotates)."""
    body = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": refresh_token}
    data = await _token_call(http, issuer, json=body, refresh=True)
    return {k: v for k in ("id_token", "access_token", "refresh_token") if isinstance(v := data.get(k), str) and v}


async def exchange_code(
    http: httpx.AsyncClient | None, issuer: str, code: str, redirect_uri: str, verifier: str
) -> TokenResponse:
    """The authorization-code grant: a form-encoded body; all three tokens are required in the answer."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": CLIENT_ID,
        "code_verifier": verifier,
    }
    data = await _token_call(http, issuer, data=form, refresh=False)
    values = [data.get(k) for k in ("id_token", "access_token", "refresh_token")]
    if not all(isinstance(v, str) and v for v in values):
        raise OAuthError("The token endpoint's answer lacks id_token, access_token or refresh_token.")
    return TokenResponse(*(str(v) for v in values))


async def _token_call(http: httpx.AsyncClient | None, issuer: str, *, refresh: bool, **kwargs: Any) -> dict[str, Any]:
    url = f"{issuer.rstrip('/')}/oauth/token"
    try:
        if http is None:
            async with own_client() as client:
                resp = await client.post(url, **kwargs)
        else:
            resp = await http.post(url, timeout=TIMEOUT, **kwargs)
    except httpx.HTTPError as exc:  # network errors and timeouts: transient
        raise OAuthError(f"could not reach {url} ({type(exc).__name__})") from None
    try:
        data = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        data = None
    if resp.status_code == 200 and isinstance(data, dict):
        return data
    code, message = _token_error(data)
    if resp.status_code == 200:
        message = "the token endpoint answered 200 without a JSON object"
    err = OAuthError(
        f"the token endpoint answered HTTP {resp.status_code}" + (f" ({code}: {message})" if code else ""),
        code=code,
        status=resp.status_code,
        # As the Codex CLI judges a refresh: these codes (expired, reused, invalidated) and any 401 mean the
        # refresh token is dead for good; anything else may pass.
        permanent=refresh and (code in PERMANENT_REFRESH_CODES or resp.status_code == 401),
    )
    header = resp.headers.get("retry-after", "").strip()
    err.retry_after = int(header) if header.isdigit() else None
    raise err


def _token_error(data: Any) -> tuple[str | None, str]:
    """Error code and message from `{"error":{"code","message"}}`, `{"error":"…","error_description"}` or `{"code"}`."""
    if not isinstance(data, dict):
        return None, ""
    err = data.get("error")
    if isinstance(err, dict):
        code, message = err.get("code") or err.get("type"), err.get("message")
    elif isinstance(err, str):
        code, message = err, data.get("error_description")
    else:
        code, message = data.get("code"), data.get("message")
    code = code if isinstance(code, str) else None
    # The message is from the issuer (no token in it); keep it short for logs and error envelopes.
    return code, (message if isinstance(message, str) else "")[:200]


# -- browser login (PKCE + local callback) -----------------------------------------------------------------------


class _Callback:
    """A one-shot HTTP server on 127.0.0.1 receiving `/auth/callback?code=…&state=…` from the browser."""

    def __init__(self, state: str, result: asyncio.Future[str]) -> None:
        self.state = state
        self.result = result
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, port: int) -> None:
        ports = [port, FALLBACK_PORT] if port == DEFAULT_PORT else [port]
        for i, candidate in enumerate(ports):
            try:
                self.server = await asyncio.start_server(self._handle, "127.0.0.1", candidate)
                break
            except OSError:
                if i == len(ports) - 1:
                    raise
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            while await asyncio.wait_for(reader.readline(), 10) not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing in them matters for the redirect
            parts = line.decode("latin-1").split()
            target = urlsplit(parts[1] if len(parts) > 1 else "/")
            status, text = self.accept(target.path, target.query)
            body = f"<!doctype html><title>Codex gateway login</title><p>{text}</p>".encode()
            head = f"HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
            await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            writer.close()

    def accept(self, path: str, query: str) -> tuple[str, str]:
        """Checks one redirect (from the browser or pasted); resolves the login future on success or refusal."""
        if path == "/cancel":
            _settle(self.result, error=OAuthError("Login cancelled."))
            return "200 OK", "Login cancelled."
        if path != CALLBACK_PATH:
            return "404 Not Found", "Not found."
        params = {k: v[0] for k, v in parse_qs(query).items()}
        if params.get("error"):
            description = params.get("error_description", "")
            message = f"The issuer refused the login: {params['error']} {description}".strip()
            if "missing_codex_entitlement" in description:
                message = "Codex is not enabled for your workspace; ask its admin, or log in with another account."
            _settle(self.result, error=OAuthError(message, code=params["error"]))
            return "400 Bad Request", "Login failed; see the terminal."
        if not secrets.compare_digest(params.get("state", ""), self.state):
            # A stale tab or a forged request: refuse it but keep waiting for the real redirect.
            logger.warning("login callback with a wrong state ignored")
            return "400 Bad Request", "State mismatch: start the login again from the terminal."
        if not params.get("code"):
            return "400 Bad Request", "Missing authorization code."
        _settle(self.result, value=params["code"])
        return "200 OK", "Signed in. You can close this tab and return to the terminal."


def _settle(fut: asyncio.Future[str], *, value: str | None = None, error: BaseException | None = None) -> None:
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(value or "")


async def browser_login(
    issuer: str,
    *,
    announce: Callable[[str], None],
    port: int = DEFAULT_PORT,
    open_browser: Callable[[str], object] | None = None,
    paste_source: Callable[[], str] | None = None,
    timeout: float = 600.0,
    http: httpx.AsyncClient | None = None,
) -> TokenResponse:
    """PKCE login: serve the callback, show the URL, wait for the redirect (or a pasted redirect URL), exchange.

    `paste_source` is a blocking line reader (stdin); it runs in a daemon thread so an unanswered prompt never
    keeps the process alive. `port=0` picks a free port (tests); the redirect URI always names the bound port.
    """
    loop = asyncio.get_running_loop()
    verifier, challenge = pkce_pair()
    state = new_state()
    result: asyncio.Future[str] = loop.create_future()
    callback = _Callback(state, result)
    await callback.start(port)
    try:
        redirect_uri = f"http://localhost:{callback.port}{CALLBACK_PATH}"
        url = authorize_url(issuer, redirect_uri, challenge, state)
        announce(f"Callback server listening on port {callback.port}")
        announce(f"Open this URL in a browser to sign in:\n\n  {url}\n")
        if paste_source is not None:
            announce("If the browser cannot reach this machine, paste the URL it was redirected to here.")
            _read_pastes(loop, paste_source, callback, announce)
        if open_browser is not None:
            open_browser(url)
        code = await asyncio.wait_for(result, timeout)
    except TimeoutError:
        raise OAuthError(f"No login within {timeout:.0f} s.") from None
    finally:
        callback.close()
    return await exchange_code(http, issuer, code, redirect_uri, verifier)


def _read_pastes(
    loop: asyncio.AbstractEventLoop, source: Callable[[], str], callback: _Callback, announce: Callable[[str], None]
) -> None:
    def run() -> None:
        while not callback.result.done():
            try:
                line = source()
            except Exception:  # whatever the reader's failure (closed stdin, ...), pasting is simply over
                return
            if not line:  # EOF: nothing will be pasted
                return
            pasted = urlsplit(line.strip())
            try:
                loop.call_soon_threadsafe(_accept_paste, callback, pasted.path or CALLBACK_PATH, pasted.query, announce)
            except RuntimeError:  # the login already ended (its event loop is closed): nobody waits for a paste
                return

    threading.Thread(target=run, name="login-paste", daemon=True).start()


def _accept_paste(callback: _Callback, path: str, query: str, announce: Callable[[str], None]) -> None:
    status, text = callback.accept(path, query)
    if not status.startswith("200") and not callback.result.done():
        announce(f"Not accepted: {text} Paste the full redirect URL.")


# -- device-code login --------------------------------------------------------------------------------------------


async def device_login(
    issuer: str,
    *,
    announce: Callable[[str], None],
    poll_interval: float | None = None,
    timeout: float = DEVICE_TIMEOUT_S,
    http: httpx.AsyncClient | None = None,
) -> TokenResponse:
    """Device-code login for machines without a browser: ask for a user code, have the user enter it at
    `{issuer}/codex/device`, poll until approved (403/404 mean pending), then exchange the code it yields as
    in a browser login. `poll_interval` overrides the issuer's."""
    base = issuer.rstrip("/")
    async with own_client() if http is None else contextlib.nullcontext(http) as client:
        try:
            resp = await client.post(f"{base}/api/accounts/deviceauth/usercode", json={"client_id": CLIENT_ID})
        except httpx.HTTPError as exc:
            raise OAuthError(f"could not reach {base} ({type(exc).__name__})") from None
        data = _json_object(resp)
        device_id, user_code = data.get("device_auth_id"), data.get("user_code") or data.get("usercode")
        if resp.status_code != 200 or not isinstance(device_id, str) or not isinstance(user_code, str):
            raise OAuthError(f"device login is not available (HTTP {resp.status_code})", status=resp.status_code)
        interval = poll_interval if poll_interval is not None else _float(data.get("interval"), 5.0)
        announce(f"Open {base}/codex/device in any browser and enter the code:\n\n  {user_code}\n")
        announce(f"Waiting up to {timeout / 60:.0f} min for the approval…")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                poll = await client.post(
                    f"{base}/api/accounts/deviceauth/token", json={"device_auth_id": device_id, "user_code": user_code}
                )
            except httpx.HTTPError as exc:  # a blip while the user types the code should not end the login
                logger.warning("device login poll failed (%s); retrying", type(exc).__name__)
                poll = None
            if poll is not None and poll.status_code == 200:
                answer = _json_object(poll)
                code, verifier = answer.get("authorization_code"), answer.get("code_verifier")
                if not isinstance(code, str) or not isinstance(verifier, str):
                    raise OAuthError("The device login answer lacks authorization_code or code_verifier.")
                return await exchange_code(client, issuer, code, f"{base}/deviceauth/callback", verifier)
            if poll is not None and poll.status_code not in (403, 404):
                code_, message = _token_error(_json_object(poll))
                raise OAuthError(f"device login failed (HTTP {poll.status_code} {code_ or ''} {message})".strip())
            if loop.time() + interval > deadline:
                raise OAuthError(f"The code was not approved within {timeout / 60:.0f} min.")
            await asyncio.sleep(interval)


def _json_object(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(resp.content) if resp.content else {}
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _float(value: Any, default: float) -> float:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return default


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
