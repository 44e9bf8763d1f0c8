"""The mitmproxy addon: guard clauses and glue around the pure translation modules.

Data flow (see DESIGN.md): `request` validates and rewrites the client's flow in place into a Codex Responses
request; `responseheaders` installs the streaming translator on successful upstream answers for streaming
clients; `response` translates everything that was buffered (non-streaming clients, upstream errors, replayed
responses) with the same state machine and stores the raw upstream SSE in the flow.
"""

from __future__ import annotations

import hmac
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.proxy import mode_specs

from . import __version__
from .auth import CodexAuthFile
from .auth import default_codex_home
from .chat_request import translate_chat_request
from .chat_sse import ChatSSETranslator
from .chat_sse import render_completion
from .chat_sse import run_body
from .chat_sse import translate_body
from .chat_stream import ChatStream
from .errors import GatewayError
from .errors import upstream_error
from .headers import client_response_headers
from .headers import redact_request
from .models import list_models
from .routes import Route
from .routes import route_for

logger = logging.getLogger(__name__)

META = "codex_gateway"
DEFAULT_UPSTREAM = "https://chatgpt.com/backend-api/codex"
DEFAULT_LISTEN = "reverse:https://chatgpt.com@127.0.0.1:8787"


class _DropDefaultListenerErrors(logging.Filter):
    """Hides the failure of mitmproxy's default *:8080 listener while the gateway replaces it (see `running`)."""

    active = True

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.active and record.levelno >= logging.ERROR)


class CodexGateway:
    """Serves OpenAI `/v1/chat/completions` and `/v1/models` from the Codex backend with a ChatGPT login.

    - Only flows that arrive on a reverse-proxy listener are handled; other modes are left alone.
    - Nothing untranslated is ever forwarded: unknown paths get a 404, bad requests a 400, and an exception
      in a hook a 500, each as an OpenAI error envelope.
    """

    def __init__(self) -> None:
        self.upstream = urlsplit(DEFAULT_UPSTREAM)
        self.auth = CodexAuthFile(default_codex_home())
        self.codex_home = default_codex_home()
        self._switch_listener: _DropDefaultListenerErrors | None = None

    # -- options ----------------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        loader.add_option(
            "codex_upstream",
            str,
            DEFAULT_UPSTREAM,
            "Base URL of the Codex backend; requests go to {codex_upstream}/responses.",
        )
        loader.add_option(
            "codex_home", str, "", "Codex CLI home holding auth.json (default: $CODEX_HOME, else ~/.codex)."
        )
        loader.add_option(
            "codex_auth_issuer",
            str,
            "https://auth.openai.com",
            "OAuth issuer used to refresh and obtain ChatGPT tokens.",
        )
        loader.add_option(
            "gateway_api_key",
            str | None,
            None,
            "If set, clients must send it as `Authorization: Bearer <key>`. It is never forwarded.",
        )
        loader.add_option(
            "codex_originator", str, "codex_gateway", "Value of the `originator` header sent to the Codex backend."
        )
        loader.add_option(
            "codex_user_agent", str, f"codex_gateway/{__version__}", "User-Agent sent to the Codex backend."
        )

    def configure(self, updated: set[str]) -> None:
        if "codex_upstream" in updated:
            url = urlsplit(ctx.options.codex_upstream.rstrip("/"))
            if url.scheme not in ("http", "https") or not url.hostname:
                raise exceptions.OptionsError(
                    f"codex_upstream must be an http(s) URL, not {ctx.options.codex_upstream!r}"
                )
            self.upstream = url
        if "codex_home" in updated:
            self.codex_home = (
                Path(ctx.options.codex_home).expanduser() if ctx.options.codex_home else default_codex_home()
            )
            self.auth = CodexAuthFile(self.codex_home)
        if "codex_auth_issuer" in updated:
            issuer = urlsplit(ctx.options.codex_auth_issuer)
            if issuer.scheme not in ("http", "https") or not issuer.hostname:
                raise exceptions.OptionsError(
                    f"codex_auth_issuer must be an http(s) URL, not {ctx.options.codex_auth_issuer!r}"
                )
        if "mode" in updated and ctx.options.mode == ["regular"] and self._switch_listener is None:
            # No --mode given. mitmproxy starts its servers before scripts load, so the default *:8080 listener
            # is already being bound; `running` replaces it, and its failure (port busy) must not abort start-up.
            self._switch_listener = _DropDefaultListenerErrors()
            logging.getLogger("mitmproxy.addons.proxyserver").addFilter(self._switch_listener)

    def running(self) -> None:
        if self._switch_listener is not None and ctx.options.mode == ["regular"]:
            logger.info(f"codex-gateway: no --mode given, switching the listener to {DEFAULT_LISTEN}")
            ctx.options.update(mode=[DEFAULT_LISTEN])
        if self._switch_listener is not None:
            self._switch_listener.active = False
        logger.info(f"codex-gateway {__version__}: /v1/chat/completions → {self._upstream_url('/responses')}")

    # -- hooks ------------------------------------------------------------------------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        if not isinstance(flow.client_conn.proxy_mode, mode_specs.ReverseMode):
            return
        if flow.is_replay == "request":
            self._reauthorize_replay(flow)
            return
        try:
            self._handle_request(flow)
        except GatewayError as e:
            self._answer_error(flow, e)
        except Exception as e:  # never forward an untranslated request
            logger.exception("codex-gateway: translating the request failed")
            self._answer_error(
                flow,
                GatewayError(
                    500, f"The gateway failed to translate the request: {type(e).__name__}", code="gateway_error"
                ),
            )

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        info = flow.metadata.get(META)
        if not info or flow.response is None or "client_status" in info:
            return
        redact_request(flow.request.headers)
        response = flow.response
        if not (200 <= response.status_code < 300) or not info["stream"] or response.raw_content is not None:
            return  # buffered: translated in `response`
        machine = ChatStream(model=info["model"], include_usage=info["include_usage"], stop=tuple(info["stop"]))
        response.stream = ChatSSETranslator(machine)
        response.headers = client_response_headers(
            response.headers, "text/event-stream", chunked=flow.request.http_version == "HTTP/1.1"
        )

    def response(self, flow: http.HTTPFlow) -> None:
        info = flow.metadata.get(META)
        if not info or flow.response is None or "client_status" in info:
            return
        try:
            self._finish_response(flow, info)
        except Exception as e:
            logger.exception("codex-gateway: translating the response failed")
            self._answer_error(
                flow,
                GatewayError(
                    502,
                    f"The gateway failed to translate the upstream answer: {type(e).__name__}",
                    code="gateway_error",
                ),
            )
        finally:
            redact_request(flow.request.headers)

    def error(self, flow: http.HTTPFlow) -> None:
        if META in flow.metadata:
            redact_request(flow.request.headers)
            flow.metadata[META]["error"] = flow.error.msg if flow.error else "unknown"

    # -- request side -----------------------------------------------------------------------------------

    def _handle_request(self, flow: http.HTTPFlow) -> None:
        self._check_key(flow)
        route = route_for(flow.request.method, flow.request.path)
        if route is Route.MODELS:
            flow.response = _json_response(200, list_models(self.codex_home))
            return
        assert route is Route.CHAT
        req = translate_chat_request(flow.request.get_content(strict=False) or b"")
        creds = self.auth.credentials()
        flow.metadata[META] = {
            "endpoint": "chat.completions",
            "model": req.model,
            "stream": req.stream,
            "include_usage": req.include_usage,
            "stop": list(req.stop),
            "dropped": req.dropped,
            "messages": req.message_count,
            "tools": req.tool_count,
            "account": creds.label,
            "started": time.time(),
        }
        flow.request.method = "POST"
        flow.request.url = self._upstream_url("/responses")
        flow.request.headers = http.Headers(
            [
                (b"Authorization", f"Bearer {creds.access_token}".encode()),
                (b"ChatGPT-Account-ID", creds.account_id.encode()),
                (b"originator", ctx.options.codex_originator.encode()),
                (b"User-Agent", ctx.options.codex_user_agent.encode()),
                (b"session_id", req.session_id.encode()),
                (b"Accept", b"text/event-stream"),
                (b"Content-Type", b"application/json"),
                (b"Accept-Encoding", b"identity"),
            ]
        )
        flow.request.host_header = self.upstream.netloc
        flow.request.content = req.body_bytes()

    def _check_key(self, flow: http.HTTPFlow) -> None:
        key = ctx.options.gateway_api_key
        if not key:
            return
        auth = flow.request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else flow.request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise GatewayError(
                401,
                "Incorrect or missing gateway API key: send it as `Authorization: Bearer <key>`.",
                code="invalid_api_key",
            )

    def _reauthorize_replay(self, flow: http.HTTPFlow) -> None:
        # A saved upstream request replayed with `replay.client`: its credentials were redacted when saved.
        if not flow.request.path.endswith("/responses"):
            return
        creds = self.auth.credentials()
        flow.request.headers["Authorization"] = f"Bearer {creds.access_token}"
        flow.request.headers["ChatGPT-Account-ID"] = creds.account_id

    def _upstream_url(self, path: str) -> str:
        return f"{self.upstream.scheme}://{self.upstream.netloc}{self.upstream.path.rstrip('/')}{path}"

    # -- response side ----------------------------------------------------------------------------------

    def _finish_response(self, flow: http.HTTPFlow, info: dict[str, Any]) -> None:
        response = flow.response
        assert response is not None
        translator = response.stream if isinstance(response.stream, ChatSSETranslator) else None
        if translator is not None:
            # Streamed: the client has its answer; keep the upstream SSE in the flow for capture and replay.
            response.raw_content = translator.raw_body()
            self._record_outcome(info, translator.machine, response.status_code)
            return
        body = response.get_content(strict=False) or b""
        if not (200 <= response.status_code < 300):
            err = upstream_error(response.status_code, body, response.headers)
            info["upstream_status"] = response.status_code
            info["upstream_body"] = body[:4096].decode("utf-8", "replace")
            self._answer_error(flow, err, keep_headers=response.headers)
            return
        # A non-streamed answer always carries usage; it is folded from the same chunks a stream would get.
        include_usage = info["include_usage"] or not info["stream"]
        machine = ChatStream(model=info["model"], include_usage=include_usage, stop=tuple(info["stop"]))
        if info["stream"]:
            client_body = translate_body(machine, body)
            self._record_outcome(info, machine, 200)
            response.headers = client_response_headers(response.headers, "text/event-stream")
            response.content = client_body
            return
        chunks = run_body(machine, body)
        self._record_outcome(info, machine, 200)
        if machine.error is not None:
            status = 429 if machine.error.get("type") == "rate_limit_error" else 502
            self._answer_error(
                flow,
                GatewayError(status, machine.error["message"], type=machine.error["type"], code=machine.error["code"]),
                keep_headers=response.headers,
            )
            return
        response.headers = client_response_headers(response.headers, "application/json")
        response.content = orjson.dumps(render_completion(chunks))

    def _record_outcome(self, info: dict[str, Any], machine: ChatStream, status: int) -> None:
        info["client_status"] = status
        info["finish_reason"] = machine.finish_reason
        info["usage"] = machine.usage
        if machine.error is not None:
            info["error"] = machine.error.get("message")

    def _answer_error(self, flow: http.HTTPFlow, err: GatewayError, keep_headers: http.Headers | None = None) -> None:
        headers = (
            client_response_headers(keep_headers, "application/json")
            if keep_headers is not None
            else http.Headers(content_type="application/json")
        )
        for name, value in err.headers.items():
            headers[name] = value
        body = err.body()
        if flow.response is None:
            flow.response = http.Response.make(err.status, body, headers)
        else:
            flow.response.status_code = err.status
            flow.response.reason = ""
            flow.response.headers = headers
            flow.response.content = body
        flow.metadata.setdefault(META, {}).update({"client_status": err.status, "error": err.message})


def _json_response(status: int, payload: Any) -> http.Response:
    return http.Response.make(status, orjson.dumps(payload), {"content-type": "application/json"})
