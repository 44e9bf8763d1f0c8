"""The mitmproxy addon: guard clauses and glue around the pure translation modules.

Data flow: `request` validates and rewrites the client's flow in place into a Codex request (endpoints.py);
`responseheaders` installs the streaming translator on successful upstream answers for streaming clients;
`response` translates everything that was buffered (non-streaming clients, upstream errors, replayed responses)
with the same state machines, after retrying a 401 or a usage limit as a side request (recovery.py), and keeps
the raw upstream answer in the flow for capture and replay (answer_writer.py).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Any

import orjson
from mitmproxy import command
from mitmproxy import ctx
from mitmproxy import exceptions
from mitmproxy import http
from mitmproxy.proxy import mode_specs
from mitmproxy.utils import asyncio_utils

from . import __version__
from .accounts.backends import check_backend
from .accounts.commands import AccountCommands
from .accounts.login_store import StoreUnavailable
from .accounts.upstream_access import UpstreamAccess
from .answer import ClientAnswer
from .answer import StreamCallable
from .anthropic.models import anthropic_model_list
from .anthropic.models import model_info as anthropic_model_info
from .errors import GatewayError
from .flow_record import FlowRecord
from .flow_record import Route
from .flow_record import record_of
from .flow_record import set_record
from .http.answer_writer import AnswerWriter
from .http.answer_writer import answer_headers
from .http.answer_writer import json_response
from .http.answer_writer import keeps_stream_bodies
from .http.answer_writer import write_answer
from .http.cors import allowed_origin
from .http.cors import cors_headers
from .http.cors import preflight_headers
from .http.endpoints import buffered_answer
from .http.endpoints import count_message_tokens
from .http.endpoints import error_answer
from .http.endpoints import prepare_upstream
from .http.endpoints import stream_translator
from .http.headers import client_response_headers
from .http.headers import codex_fields
from .http.headers import header_map
from .http.headers import redact_request
from .http.headers import upstream_fields
from .http.headers import upstream_target
from .http.listeners import DEFAULT_LISTEN
from .http.listeners import DefaultListenerErrors
from .http.listeners import public_listeners
from .http.routes import check_body
from .http.routes import endpoint_of
from .http.routes import gateway_page
from .http.routes import local_route
from .http.routes import model_id
from .http.routes import route_for
from .http.upstream_request import rewrite_in_place
from .inspect import commands
from .inspect.observer import Observer
from .inspect.summary import annotate
from .inspect.summary import client_name
from .inspect.summary import remember_upstream_body
from .inspect.summary import sanitized_request
from .inspect.summary import status_after_error
from .inspect.summary import trace_id
from .model_catalog import ModelCatalog
from .model_catalog import list_object
from .settings import Settings
from .settings import deferred_option_problems
from .settings import parse_settings
from .settings import register_options
from .sse import translation_failure
from .upstream import flows as proxy_flows
from .upstream.gate import ProxyGate

logger = logging.getLogger(__name__)

# mitmproxy's options of the addons that read a finished flow after the gateway (see `_keep_bodies`).
READERS_OF_FLOWS = frozenset({"hardump", "save_stream_file", "flow_detail"})


class CodexGateway:
    """Serves the OpenAI API (chat completions, responses, models, images) from the Codex backend with a
    ChatGPT login.

    - Only flows that arrive on a reverse-proxy listener are handled; other modes are left alone.
    - Nothing untranslated is ever forwarded: unknown paths get a 404, bad requests a 400, and an exception
      in a hook a 500, each as an OpenAI error envelope.
    - Credentials are put on the upstream request last and redacted as soon as it has been sent.
    """

    def __init__(self) -> None:
        _fail_closed_on_bad_options()
        self.settings: Settings | None = None
        self.access: UpstreamAccess | None = None
        self.catalog: ModelCatalog | None = None
        self.gate: ProxyGate | None = None  # the upstream proxy (settings.proxy) and its check before a flow
        self._switch_listener: DefaultListenerErrors | None = None
        self._deferred: dict[str, ClientAnswer] = {}
        self.writer = AnswerWriter(self._deferred)
        self.account_commands = AccountCommands(lambda: self.access, lambda: self.settings)
        self.observer = Observer()  # request log, metrics, health/status/metrics/page answers

    # -- options ----------------------------------------------------------------------------------------

    def load(self, loader: Any) -> None:
        register_options(loader)
        commands.load(loader)  # inspection: codex.* commands and content views
        self.account_commands.load(loader)  # codex.accounts, codex.use, codex.export, codex.quota, …

    def configure(self, updated: set[str]) -> None:
        try:
            settings = parse_settings(ctx.options)
        except ValueError as e:
            raise exceptions.OptionsError(str(e)) from e
        old = self.settings
        new_access = old is None or (old.codex_home, old.gateway_home, old.issuer, old.proxy, old.state) != (
            settings.codex_home,
            settings.gateway_home,
            settings.issuer,
            settings.proxy,
            settings.state,
        )
        if new_access:
            replaced, self.access = self.access, UpstreamAccess(_checked_state(settings))
            if replaced is not None and _loop_running():  # its store's connections and listener end with it
                asyncio_utils.create_task(replaced.aclose(), name="codex-gateway: close replaced state", keep_ref=True)
        if old is None or old.proxy != settings.proxy:
            self.gate = ProxyGate(settings.proxy)
            up = settings.upstream
            logger.info("codex-gateway: %s", settings.proxy.describe(up.scheme, up.hostname or ""))
        assert self.access is not None
        self.access.settings = settings
        if new_access or old is None or old.upstream != settings.upstream:
            self.catalog = ModelCatalog(
                settings.codex_home,
                settings.gateway_home,
                settings.upstream_url(""),
                cache=self.access.pool.backend.catalog,
            )
        assert self.catalog is not None
        self.catalog.aliases = settings.model_aliases
        self.settings = settings
        self.observer.configure(settings)
        if self.writer.registered and updated & READERS_OF_FLOWS:
            self._keep_bodies()
        if "codex_idle_timeout" in updated:
            # mitmproxy closes a connection after tcp_timeout seconds without traffic: a stalled upstream stream
            # is then cut off towards the client (an incomplete chunked body, never a clean finish).
            ctx.options.update(tcp_timeout=settings.idle_timeout)
        if "mode" in updated and ctx.options.mode == ["regular"] and self._switch_listener is None:
            # No --mode given: `running` replaces mitmproxy's default listener (see DefaultListenerErrors).
            self._switch_listener = DefaultListenerErrors()
            logging.getLogger("mitmproxy.addons.proxyserver").addFilter(self._switch_listener)
        if updated & {"mode", "listen_host", "gateway_api_key", "gateway_allow_public"}:
            public = public_listeners(ctx.options.mode, ctx.options.listen_host)
            if public and not settings.api_key and not settings.allow_public:
                raise exceptions.OptionsError(
                    f"Refusing to serve your ChatGPT login on a non-loopback address ({', '.join(public)}) without "
                    "a key: set gateway_api_key (or gateway_allow_public=true if you really mean it)."
                )

    def running(self) -> None:
        if old := ctx.master.addons.get(AnswerWriter.name):  # a hot-reloaded script leaves its writer behind
            ctx.master.addons.remove(old)
        ctx.master.addons.add(self.writer)
        self.writer.registered = True
        self._keep_bodies()
        if self._switch_listener is not None and ctx.options.mode == ["regular"]:
            logger.info("codex-gateway: no --mode given, switching the listener to %s", DEFAULT_LISTEN)
            # Lazy: an eager reverse proxy would connect to the nominal target for every client connection,
            # even for requests the gateway answers itself.
            ctx.options.update(mode=[DEFAULT_LISTEN], connection_strategy="lazy")
        elif ctx.options.connection_strategy == "eager":
            logger.warning("codex-gateway: add `--set connection_strategy=lazy` so local answers need no upstream")
        if self._switch_listener is not None:
            self._switch_listener.active = False
        assert self.settings is not None
        logger.info(
            "codex-gateway %s: /v1/chat/completions → %s", __version__, self.settings.upstream_url("/responses")
        )
        commands.running()  # inspection: the summary column in mitmweb's flow list
        self.observer.running()  # the request log starts writing

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
            await self._handle_request(flow)
        except GatewayError as e:
            self._answer_locally(flow, self._error_answer(flow, e))
        except Exception as e:  # never forward an untranslated request
            logger.exception("codex-gateway: translating the request failed")
            failure = GatewayError(500, f"The gateway failed to translate the request ({type(e).__name__}).")
            self._answer_locally(flow, self._error_answer(flow, failure))
        if flow.response is not None:
            # Answered here: the client's own credentials (the gateway key) must not stay in a saved flow.
            redact_request(flow.request.headers)
            if flow.request.method == "HEAD":  # RFC 9110: no content, or keep-alive clients misread the stream
                flow.response.raw_content = b""

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        record = record_of(flow)
        response = flow.response
        if record is None or response is None or record.answered or not flow.live:
            return
        redact_request(flow.request.headers)  # sent already; from here on the flow is shown and may be saved
        if self.access is not None:
            self.access.record(flow.id, codex_fields(response.headers))
        if not (200 <= response.status_code < 300) or response.raw_content is not None:
            return  # buffered: upstream error or replayed body; translated in `response`
        stream = stream_translator(record, keep_raw=self.writer.keeps_streams)
        if stream is None:
            return  # a non-streaming client: buffered and answered in `response`
        response.stream = stream
        response.headers = client_response_headers(
            response.headers, "text/event-stream", chunked=flow.request.http_version == "HTTP/1.1"
        )
        if record.cors_origin:
            response.headers.update(cors_headers(record.cors_origin))

    async def response(self, flow: http.HTTPFlow) -> None:
        record = record_of(flow)
        response = flow.response
        if record is None or response is None or record.answered or not flow.live:
            return
        try:
            # `response.stream` may also be False, True (mitmproxy's stream_large_bodies) or another addon's
            # function: only the gateway's own callables are `StreamCallable`s.
            stream = response.stream if isinstance(response.stream, StreamCallable) else None
            if stream is not None:
                # The client has its answer; keep the raw upstream SSE in the flow for capture and replay.
                response.raw_content = stream.take_raw_body()
                record.record_answer(response.status_code, stream.outcome())
            else:
                body = response.get_content(strict=False) or b""
                if response.status_code >= 300:
                    record.upstream_status = response.status_code
                if flow.is_replay != "response" and self.access is not None:
                    body = await self._retried(flow, record, body)
                self._defer_answer(flow, buffered_answer(record, response.status_code, response.headers, body))
        except GatewayError as e:
            self._defer_answer(flow, self._error_answer(flow, e))
        except Exception as e:
            logger.exception("codex-gateway: translating the upstream answer failed")
            failure = GatewayError(502, translation_failure(e)["message"])
            self._defer_answer(flow, self._error_answer(flow, failure))
        finally:
            if self.access is not None:
                self.access.release(flow.id)
            record.finished_at = time.time()
            self._finished(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        record = record_of(flow)
        if record is None or not flow.live:  # flows read from a file (-r) keep their recorded summary
            return
        redact_request(flow.request.headers)
        self._deferred.pop(flow.id, None)
        if self.access is not None:
            self.access.release(flow.id)
        record.finished_at = time.time()
        if self.gate is not None:
            proxy_flows.name_failure(flow, self.gate)  # mitmproxy's message does not say a proxy was involved
        record.error = flow.error.msg if flow.error else "unknown error"
        if record.client_status is None:
            response = flow.response
            streamed = response.status_code if response is not None and callable(response.stream) else None
            record.client_status = status_after_error(streamed, record.error)
        self._finished(flow)

    def _finished(self, flow: http.HTTPFlow) -> None:
        """A gateway flow ended: its summary (which also redacts the request's credentials), then the metrics and
        the request log."""
        annotate(flow)
        self.observer.record(flow)

    def _keep_bodies(self) -> None:
        """What the answer writer keeps of finished flows, from who reads them later: mitmweb's view and a HAR
        export (`hardump`) keep whole flows; a save file and mitmdump's body printing need the raw upstream SSE."""
        options = ctx.options

        def option(name: str, default: Any) -> Any:  # each is another addon's (mitmweb has no Dumper)
            return getattr(options, name) if name in options else default

        writer = self.writer
        writer.keeps_flows = ctx.master.addons.get("view") is not None or bool(option("hardump", ""))
        writer.keeps_streams = keeps_stream_bodies(
            keeps_flows=writer.keeps_flows,
            save_stream_file=option("save_stream_file", None),
            flow_detail=option("flow_detail", 1),
        )

    def http_connect_upstream(self, flow: http.HTTPFlow) -> None:
        if self.gate is not None:
            proxy_flows.authorize_connect(flow, self.gate)  # the proxy's credentials, on mitmproxy's CONNECT only

    # -- request side -----------------------------------------------------------------------------------

    async def _handle_request(self, flow: http.HTTPFlow) -> None:
        settings = self.settings
        assert settings is not None
        request = flow.request
        client_headers = header_map(request.headers)  # one pass; every lookup below is a dict lookup
        method = request.method
        origin = allowed_origin(client_headers.get("origin"), settings.cors_origins)
        if method == "OPTIONS" and origin:
            requested = client_headers.get("access-control-request-headers")
            flow.response = http.Response.make(204, b"", preflight_headers(origin, requested))
            return
        path = request.path
        local = local_route(method, path)
        if local is not None:  # the gateway's own pages: each checks the key as its clients send it
            await self.observer.answer(flow, local, settings, self.access, self.catalog)
            return
        self._check_key(flow, settings.api_key)
        route = route_for(method, path)
        if route in (Route.MODELS, Route.MODEL):
            await self._answer_models(flow, route, origin, anthropic="anthropic-version" in client_headers)
            return
        # `get_content` looks the content-encoding up again; without one, the raw body is the content.
        raw = (
            request.get_content(strict=False) if "content-encoding" in client_headers else request.raw_content
        ) or b""
        content_type = client_headers.get("content-type")
        check_body(content_type, len(raw), settings.body_limit, multipart=route is Route.IMAGES_EDITS)
        parsed = _json_or_none(raw)  # parsed once: for the client's name here and the translation below
        if route is Route.COUNT_TOKENS:  # answered here: a local estimate, nothing goes upstream
            counted = count_message_tokens(raw, parsed, client_headers, settings.claude_models)
            flow.response = json_response(200, counted, origin)
            self._record_local(flow, route, client_name(client_headers, parsed))
            return
        record = set_record(
            flow,
            FlowRecord(
                endpoint=route,
                started=request.timestamp_start,
                client=client_name(client_headers, parsed),
                trace=trace_id(client_headers),
                cors_origin=origin,
                original_request=sanitized_request(method, path, request.headers, raw),
            ),
        )
        upstream = prepare_upstream(
            route,
            raw,
            content_type,
            request.headers.items(multi=True),
            record,
            image_orchestrator=settings.image_model,
            parsed=parsed,
            claude_models=settings.claude_models,
            model_choice=self.catalog.choose if self.catalog is not None else None,
        )
        record.session_headers = upstream.session_headers
        if route in (Route.CHAT, Route.RESPONSES, Route.MESSAGES) and record.model is not None:
            self.catalog_check(record.codex_model or record.model)
        target = upstream_target(settings)
        assert self.gate is not None and self.access is not None
        # Before a lease is taken: a proxy that cannot take the flow is a 502 envelope, never mitmproxy's page.
        replaying = _server_replaying()
        await proxy_flows.route(
            flow, self.gate, settings.upstream.scheme, target.host, target.port, check=not replaying
        )
        creds = await self.access.credentials(flow.id, record.session_id, replaying=replaying)
        record.account = creds.label if creds else None
        fields = upstream_fields(target, creds, upstream.session_headers, len(upstream.body))
        rewrite_in_place(request, target, upstream.path, fields, upstream.body)

    def catalog_check(self, model: str) -> None:
        if self.catalog is not None:
            self.catalog.check(model)  # a 404 only while the live catalog is authoritative

    async def _answer_models(
        self, flow: http.HTTPFlow, route: Route, origin: str | None, *, anthropic: bool = False
    ) -> None:
        assert self.catalog is not None and self.access is not None
        headers = await self.access.catalog_headers(replaying=_server_replaying())
        models = await self.catalog.models(headers, self.access.client())
        if route is Route.MODELS:
            payload = anthropic_model_list(models) if anthropic else list_object(models)
        else:
            found = self.catalog.retrieve(model_id(flow.request.path))
            payload = anthropic_model_info(found) if anthropic else found
        flow.response = json_response(200, payload, origin)
        self._record_local(flow, route, client_name(flow.request.headers, None), models_source=self.catalog.source)

    def _record_local(self, flow: http.HTTPFlow, route: Route, client: str, **fields: Any) -> None:
        """The record of a request the gateway answered itself, successfully."""
        record = FlowRecord(
            endpoint=route, started=flow.request.timestamp_start, client=client, finished_at=time.time(), **fields
        )
        set_record(flow, record).record_answer(200)
        self._finished(flow)

    def _error_answer(self, flow: http.HTTPFlow, err: GatewayError) -> ClientAnswer:
        """Anthropic clients get Anthropic's error envelope, everyone else OpenAI's."""
        return error_answer(err, flow.request.path, flow.request.headers)

    @staticmethod
    def _check_key(flow: http.HTTPFlow, key: str | None) -> None:
        if not key:
            return
        auth = flow.request.headers.get("authorization", "")
        given = auth[7:].strip() if auth[:7].lower() == "bearer " else flow.request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), key.encode()):
            raise GatewayError(
                401,
                "Incorrect or missing gateway API key: send it as `Authorization: Bearer <key>` (or `x-api-key`).",
                code="invalid_api_key",
            )

    def _reauthorize_replay(self, flow: http.HTTPFlow) -> None:
        # A saved upstream request replayed with `replay.client`: its credentials were redacted when saved.
        if not flow.request.path.endswith("/responses") or self.access is None:
            return
        if self.gate is not None:
            proxy_flows.set_via(flow, self.gate.proxy_for(flow.request.scheme, flow.request.host))
        creds = self.access.auth.credentials()
        flow.request.headers["Authorization"] = f"Bearer {creds.access_token}"
        flow.request.headers["ChatGPT-Account-ID"] = creds.account_id

    # -- retries (side requests) ----------------------------------------------------------------------------

    async def _retried(self, flow: http.HTTPFlow, record: FlowRecord, body: bytes) -> bytes:
        """After a 401 or a usage limit, the retried upstream answer becomes the flow's (so a saved flow holds
        what the client's answer was made from); returns the body to translate."""
        response = flow.response
        assert response is not None and self.access is not None
        answer = (response.status_code, response.headers, body)
        session = (record.session_headers or [], record.session_id)
        final = await self.access.retry(flow.id, answer, flow.request.url, flow.request.content, session)
        if final is None:
            return body
        record.retries = final.notes
        record.account = final.lease.credentials.label
        record.upstream_status = final.status if final.status >= 300 else None
        response.status_code = final.status
        response.headers = http.Headers([(k.encode(), v.encode()) for k, v in final.headers.items()])
        response.content = final.body
        return final.body

    async def done(self) -> None:
        self.observer.close()  # writes the rows still queued
        if self.access is not None:
            await self.access.aclose()

    @command.command("codex.doctor")
    def doctor(self) -> str:
        """Check the path to the Codex backend (proxy, DNS, TCP, TLS, GET /models); the report goes to the event log."""
        return proxy_flows.doctor_command(self.settings, self.access)

    # -- answers ----------------------------------------------------------------------------------------

    def _answer_locally(self, flow: http.HTTPFlow, answer: ClientAnswer) -> None:
        settings = self.settings
        origin = allowed_origin(flow.request.headers.get("origin"), settings.cors_origins) if settings else None
        flow.response = http.Response.make(answer.status, answer.body, answer_headers(answer, None, origin))
        record = record_of(flow)
        if record is None:
            if gateway_page(flow.request.path):
                return  # a refusal on the gateway's own pages (a wrong method or key) is not an API request
            record = set_record(
                flow, FlowRecord(endpoint=endpoint_of(flow.request.path), started=flow.request.timestamp_start)
            )
        record.record_answer(answer.status)
        record.error = answer.error
        record.finished_at = time.time()
        self._finished(flow)

    def _defer_answer(self, flow: http.HTTPFlow, answer: ClientAnswer) -> None:
        """Records the client's answer; `AnswerWriter` puts it in the flow after mitmproxy's Save addon ran,
        so a saved flow keeps the raw upstream body (what server replay needs) while the client gets `answer`."""
        record = record_of(flow)
        assert record is not None  # only flows the gateway translated get here
        record.record_answer(answer.status, answer.outcome())
        if self.writer.registered:
            self._deferred[flow.id] = answer
        else:
            remember_upstream_body(flow)
            write_answer(flow, answer)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _checked_state(settings: Settings) -> Settings:
    """Refuses to start with a shared state store that cannot be used (unreachable, wrong secret), saying why."""
    try:
        warning = check_backend(settings.state)
    except StoreUnavailable as e:
        raise exceptions.OptionsError(f"gateway_state: {e}") from None
    if warning:  # not an error: mitmproxy would exit, and a gateway waiting for `accounts import` is useful
        logger.warning("codex-gateway: %s", warning)
    if settings.state.url is not None:
        logger.info("codex-gateway: accounts and their state are shared in %s", settings.state.address)
    return settings


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _fail_closed_on_bad_options() -> None:
    """A `--set` value mitmproxy cannot parse would keep this script from loading without a word, and mitmproxy
    would then forward requests untranslated (with the client's credentials). Stop instead."""
    master = getattr(ctx, "master", None)
    if master is None:
        return
    problems = deferred_option_problems(master.options)
    if problems:
        for problem in problems:
            logger.error("codex-gateway: %s", problem)  # during start-up, mitmproxy exits 1 on a logged error
        proxyserver = master.addons.get("proxyserver")
        if proxyserver is not None and proxyserver.is_running:
            master.shutdown()  # a hot reload: nothing else would stop the untranslated forwarding
        raise ValueError("codex-gateway: refusing to start with invalid options: " + "; ".join(problems))


class _ServerReplayFlag:
    """Whether `server_replay` names any file. Reading an option deep-copies its value, on every request; so the
    answer is kept and updated by the options' change signal (which also reports rollbacks)."""

    def __init__(self) -> None:
        self.options: Any = None  # the OptManager subscribed to (a new master brings a new one)
        self.on = False

    def __call__(self) -> bool:
        options = ctx.options
        if options is not self.options:
            if "server_replay" not in options:  # no ServerPlayback addon (e.g. in tests)
                return False
            options.subscribe(self._changed, ["server_replay"])
            self.options = options
            self.on = bool(options.server_replay)
        return self.on

    def _changed(self, options: Any, updated: set[str]) -> None:
        if options is self.options:
            self.on = bool(options.server_replay)


_server_replaying = _ServerReplayFlag()
