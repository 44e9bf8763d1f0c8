"""recovery: one refresh after a 401, account switches after a usage limit, and the buffered side request.

`recover` runs against a fake pool (the `AccountPool` methods it calls, recording every call) and a fake `send`
that answers from a script, so each test states exactly which calls a first upstream answer leads to.
"""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
import pytest
from codex_gateway.accounts.auth_file import Credentials
from codex_gateway.accounts.pool import Lease
from codex_gateway.accounts.recovery import MAX_ACCOUNT_SWITCHES
from codex_gateway.accounts.recovery import UpstreamAnswer
from codex_gateway.accounts.recovery import needs_recovery
from codex_gateway.accounts.recovery import recover
from codex_gateway.accounts.recovery import send_upstream
from codex_gateway.errors import GatewayError

NOW = 1_760_000_000.0
OK = (200, {"content-type": "text/event-stream"}, b"data: ok\n\n")
EXPIRED = b'{"error":{"code":"token_expired","message":"Provided authentication token is expired."}}'
RESETS_AT = NOW + 3600


def usage_limit(**extra: Any) -> bytes:
    return orjson.dumps({"error": {"type": "usage_limit_reached", "message": "limit", **extra}})


LIMITED = usage_limit(resets_at=RESETS_AT)


def lease(key: str, token: str = "tok") -> Lease:
    return Lease(key, Credentials(access_token=f"{token}-{key}", account_id=key, label=f"{key}@example.com"))


class FakePool:
    """The part of AccountPool that `recover` uses; `accounts` are handed out in order by `acquire`."""

    def __init__(self, accounts: list[str] | None = None, acquire_error: GatewayError | None = None) -> None:
        self.accounts = list(accounts or ())
        self.acquire_error = acquire_error
        self.refresh_error: GatewayError | None = None
        self.calls: list[tuple[Any, ...]] = []

    async def after_unauthorized(self, old: Lease) -> Lease:
        self.calls.append(("after_unauthorized", old.key))
        if self.refresh_error is not None:
            raise self.refresh_error
        return lease(old.key, token="refreshed")

    async def acquire(self, session_key: str | None = None, exclude: frozenset[str] = frozenset()) -> Lease:
        self.calls.append(("acquire", session_key, exclude))
        if not self.accounts:
            raise self.acquire_error or GatewayError(503, "none left", code="no_available_accounts")
        return lease(self.accounts.pop(0))

    def cool_down(self, old: Lease, resets_at: float | None) -> None:
        self.calls.append(("cool_down", old.key, resets_at))

    async def shared(self) -> None:
        return None

    def record_headers(self, used: Lease, headers: Mapping[str, str]) -> None:
        self.calls.append(("record_headers", used.key, dict(headers)))


class FakeSend:
    """Answers the retries from a script, in order, and remembers the lease of each."""

    def __init__(self, *answers: tuple[int, dict[str, str], bytes]) -> None:
        self.answers = list(answers)
        self.leases: list[Lease] = []

    async def __call__(self, used: Lease) -> tuple[int, Mapping[str, str], bytes]:
        self.leases.append(used)
        return self.answers.pop(0)


def first(status: int, body: bytes, key: str = "a") -> UpstreamAnswer:
    return UpstreamAnswer(status, {}, body, lease(key))


async def run(pool: FakePool, answer: UpstreamAnswer, send: FakeSend) -> UpstreamAnswer:
    return await recover(pool, answer, send, "session-1", clock=lambda: NOW)  # type: ignore[arg-type]


# -- needs_recovery -------------------------------------------------------------------------------------------

NEEDS_RECOVERY = [
    ("401 with a code", 401, EXPIRED, True),
    ("401 without a body", 401, b"", True),
    ("401 html", 401, b"<html>nope</html>", True),
    ("429 usage limit as type", 429, usage_limit(), True),
    ("429 usage limit as code", 429, b'{"error":{"code":"usage_limit_reached"}}', True),
    ("429 code wins over type", 429, b'{"error":{"code":"rate_limit_exceeded","type":"usage_limit_reached"}}', False),
    ("429 rate limit", 429, b'{"error":{"code":"rate_limit_exceeded"}}', False),
    ("429 not json", 429, b"slow down", False),
    ("429 error is a string", 429, b'{"error":"usage_limit_reached"}', False),
    ("429 json list", 429, b"[]", False),
    ("429 json null", 429, b"null", False),
    ("429 empty", 429, b"", False),
    ("200", 200, b"", False),
    ("403", 403, usage_limit(), False),
    ("500", 500, EXPIRED, False),
]


@pytest.mark.parametrize("status, body, expected", [c[1:] for c in NEEDS_RECOVERY], ids=[c[0] for c in NEEDS_RECOVERY])
def test_needs_recovery(status: int, body: bytes, expected: bool) -> None:
    assert needs_recovery(status, body) is expected


# -- 401: one refresh, one retry ------------------------------------------------------------------------------


async def test_401_refreshes_once_and_retries_with_the_new_credentials() -> None:
    pool, send = FakePool(), FakeSend(OK)
    answer = await run(pool, first(401, EXPIRED), send)
    assert (answer.status, answer.body, answer.lease) == (200, OK[2], lease("a", token="refreshed"))
    assert send.leases == [lease("a", token="refreshed")]
    assert pool.calls == [("after_unauthorized", "a"), ("record_headers", "a", OK[1])]
    assert answer.notes == ["401 token_expired: token refreshed, retried"]


async def test_a_second_401_is_the_answer() -> None:
    second = (401, {"x": "1"}, b'{"error":{"code":"token_invalidated"}}')
    pool, send = FakePool(), FakeSend(second)
    answer = await run(pool, first(401, EXPIRED), send)
    assert (answer.status, answer.body) == (401, second[2])
    assert [c[0] for c in pool.calls] == ["after_unauthorized", "record_headers"]
    assert len(send.leases) == 1


async def test_a_failed_refresh_propagates_without_a_retry() -> None:
    pool, send = FakePool(), FakeSend()
    pool.refresh_error = GatewayError(401, "log in again", code="refresh_token_expired")
    with pytest.raises(GatewayError) as e:
        await run(pool, first(401, EXPIRED), send)
    assert e.value is pool.refresh_error
    assert send.leases == []


# -- 429 usage_limit_reached: cool down, switch account -------------------------------------------------------


async def test_usage_limit_cools_the_account_down_and_retries_on_another() -> None:
    pool, send = FakePool(["b"]), FakeSend(OK)
    answer = await run(pool, first(429, LIMITED), send)
    assert (answer.status, answer.lease) == (200, lease("b"))
    assert pool.calls == [
        ("cool_down", "a", RESETS_AT),
        ("acquire", "session-1", frozenset({"a"})),
        ("record_headers", "b", OK[1]),
    ]
    assert answer.notes == ["usage limit on a@example.com: retried on b@example.com"]


async def test_usage_limit_reset_in_seconds_is_counted_from_the_clock() -> None:
    pool = FakePool(["b"])
    await run(pool, first(429, usage_limit(resets_in_seconds=90)), FakeSend(OK))
    assert pool.calls[0] == ("cool_down", "a", NOW + 90)


async def test_usage_limit_without_a_reset_time_cools_down_with_none() -> None:
    pool = FakePool(["b"])
    await run(pool, first(429, usage_limit()), FakeSend(OK))
    assert pool.calls[0] == ("cool_down", "a", None)


async def test_every_account_already_tried_is_excluded() -> None:
    pool, send = FakePool(["b", "c"]), FakeSend((429, {}, LIMITED), OK)
    answer = await run(pool, first(429, LIMITED), send)
    assert answer.lease == lease("c")
    excludes = [c[2] for c in pool.calls if c[0] == "acquire"]
    assert excludes == [frozenset({"a"}), frozenset({"a", "b"})]


async def test_single_account_keeps_the_original_429() -> None:
    pool, send = FakePool([]), FakeSend()
    original = first(429, LIMITED)
    answer = await run(pool, original, send)
    assert answer is original
    assert (answer.status, answer.body, answer.notes) == (429, LIMITED, [])
    assert send.leases == []


async def test_all_accounts_cooling_raises_the_pools_error() -> None:
    cooling = GatewayError(429, "All accounts are cooling down.", code="usage_limit_reached")
    pool, send = FakePool([], acquire_error=cooling), FakeSend()
    with pytest.raises(GatewayError) as e:
        await run(pool, first(429, LIMITED), send)
    assert e.value is cooling
    assert send.leases == []


async def test_account_switches_are_bounded() -> None:
    accounts = [f"acct{i}" for i in range(MAX_ACCOUNT_SWITCHES + 5)]
    send = FakeSend(*[(429, {}, LIMITED)] * len(accounts))
    answer = await run(FakePool(accounts), first(429, LIMITED), send)
    assert len(send.leases) == MAX_ACCOUNT_SWITCHES
    assert answer.status == 429


async def test_401_then_usage_limit_then_success() -> None:
    pool, send = FakePool(["b"]), FakeSend((429, {}, LIMITED), OK)
    answer = await run(pool, first(401, EXPIRED), send)
    assert (answer.status, answer.lease) == (200, lease("b"))
    assert send.leases == [lease("a", token="refreshed"), lease("b")]
    assert len(answer.notes) == 2


async def test_only_one_refresh_per_request_even_after_an_account_switch() -> None:
    pool, send = FakePool(["b"]), FakeSend((429, {}, LIMITED), (401, {}, EXPIRED))
    answer = await run(pool, first(401, EXPIRED), send)
    assert answer.status == 401
    assert [c[0] for c in pool.calls].count("after_unauthorized") == 1


@pytest.mark.parametrize(
    "status, body",
    [(200, b"data: ok\n\n"), (500, b"oops"), (403, b"denied"), (429, b'{"error":{"code":"rate_limit_exceeded"}}')],
)
async def test_other_answers_are_returned_untouched(status: int, body: bytes) -> None:
    pool, send = FakePool(["b"]), FakeSend()
    original = first(status, body)
    assert await run(pool, original, send) is original
    assert pool.calls == [] and send.leases == []


# -- send_upstream ----------------------------------------------------------------------------------------------


async def test_send_upstream_posts_the_body_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, content=b"fine")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        status, _, body = await send_upstream(client, "https://up.test/codex/responses", {"x-one": "1"}, b"{}")
    assert (status, body) == (201, b"fine")
    assert len(seen) == 1
    request = seen[0]
    assert (request.method, str(request.url), request.content) == ("POST", "https://up.test/codex/responses", b"{}")
    assert request.headers["x-one"] == "1"


async def test_send_upstream_drops_hop_headers_and_decodes_the_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers=[
                ("content-type", "text/event-stream"),
                ("content-encoding", "gzip"),
                ("transfer-encoding", "chunked"),
                ("connection", "keep-alive"),
                ("x-codex-primary-used-percent", "12"),
            ],
            content=gzip.compress(b"data: hi\n\n"),
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        _, headers, body = await send_upstream(client, "https://up.test/r", {}, b"{}")
    assert headers == {"content-type": "text/event-stream", "x-codex-primary-used-percent": "12"}
    assert body == b"data: hi\n\n"


async def test_send_upstream_drops_content_length() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"abc")  # httpx sets content-length itself

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        _, headers, _ = await send_upstream(client, "https://up.test/r", {}, None)
    assert "content-length" not in headers


@pytest.mark.parametrize("error", [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
async def test_send_upstream_network_error_is_a_502(error: type[httpx.HTTPError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error("boom", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(GatewayError) as e:
            await send_upstream(client, "https://up.test/r", {}, b"{}")
    assert (e.value.status, e.value.code, e.value.type) == (502, "retry_failed", "server_error")
    assert error.__name__ in e.value.message
