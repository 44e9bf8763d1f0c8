"""OAuth client: authorize URL, PKCE browser login with a simulated browser, device code, token error mapping."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl
from urllib.parse import urlsplit

import httpx
import pytest
from codex_gateway.accounts.auth_file import parse_auth_doc
from codex_gateway.accounts.oauth import CLIENT_ID
from codex_gateway.accounts.oauth import OAuthError
from codex_gateway.accounts.oauth import TokenResponse
from codex_gateway.accounts.oauth import authorize_url
from codex_gateway.accounts.oauth import browser_login
from codex_gateway.accounts.oauth import device_login
from codex_gateway.accounts.oauth import pkce_pair
from codex_gateway.accounts.oauth import refresh_tokens

from scripts.fakes.fake_issuer import FakeIssuer


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        fake.add_account("me@example.com", plan="pro")
        yield fake


def account_of(tokens: TokenResponse) -> tuple[str | None, str | None, str]:
    doc = {"tokens": {"id_token": tokens.id_token, "access_token": tokens.access_token}}
    record = parse_auth_doc(doc)
    return record.email, record.plan, record.account_id


def test_authorize_url_has_codex_parameters_in_order() -> None:
    verifier, challenge = pkce_pair()
    assert len(base64.urlsafe_b64decode(verifier + "==")) == 64 and "=" not in verifier
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    assert challenge == digest
    url = authorize_url("https://auth.openai.com", "http://localhost:1455/auth/callback", challenge, "st4te")
    assert url.startswith(
        "https://auth.openai.com/oauth/authorize?response_type=code&client_id=app_EMoamEEZ73f0CkXaXp7hrann&"
    )
    query = urlsplit(url).query
    assert "redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback" in query
    assert "scope=openid%20profile%20email%20offline_access%20api.connectors.read%20api.connectors.invoke" in query
    assert [k for k, _ in parse_qsl(query)] == [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "code_challenge",
        "code_challenge_method",
        "id_token_add_organizations",
        "codex_cli_simplified_flow",
        "state",
        "originator",
    ]
    params = dict(parse_qsl(query))
    assert params["code_challenge_method"] == "S256" and params["originator"] == "codex_cli_rs"
    assert params["id_token_add_organizations"] == params["codex_cli_simplified_flow"] == "true"


def browse(url: str, follow: bool = True) -> httpx.Response:
    """The simulated browser: open the authorize URL; the issuer redirects to the local callback."""
    return httpx.get(url, follow_redirects=follow, timeout=10)


async def test_browser_login_with_simulated_browser(issuer: FakeIssuer) -> None:
    lines: list[str] = []
    pages: list[httpx.Response] = []

    def open_browser(url: str) -> None:  # runs the "browser" beside the event loop serving the callback
        threading.Thread(target=lambda: pages.append(browse(url)), daemon=True).start()

    tokens = await browser_login(issuer.url, announce=lines.append, port=0, open_browser=open_browser, timeout=10)
    assert account_of(tokens)[:2] == ("me@example.com", "pro")
    assert pages and pages[0].status_code == 200 and "Signed in" in pages[0].text
    sent = issuer.authorize_requests[0]
    port = next(line.split()[-1] for line in lines if line.startswith("Callback server listening"))
    assert sent["redirect_uri"] == f"http://localhost:{port}/auth/callback"
    exchange = [c for c in issuer.calls if c.grant_type == "authorization_code"]
    assert [(c.status, c.encoding) for c in exchange] == [(200, "form")]  # the code exchange is form-encoded


async def test_wrong_state_is_refused_and_the_real_redirect_still_works(issuer: FakeIssuer) -> None:
    results: list[int] = []

    def open_browser(url: str) -> None:
        def run() -> None:
            redirect = browse(url, follow=False).headers["location"]
            forged = redirect.split("&state=")[0] + "&state=forged"
            results.append(httpx.get(forged).status_code)
            results.append(httpx.get(redirect).status_code)

        threading.Thread(target=run, daemon=True).start()

    tokens = await browser_login(issuer.url, announce=lambda _: None, port=0, open_browser=open_browser, timeout=10)
    assert results == [400, 200] and tokens.access_token


async def test_pasted_redirect_url_completes_the_login(issuer: FakeIssuer) -> None:
    urls: list[str] = []
    pasted = threading.Event()

    def announce(text: str) -> None:
        if "/oauth/authorize?" in text:
            urls.append(text.strip().split()[-1])
            pasted.set()

    def paste() -> str:  # the user copies the address bar of a browser that could not reach the callback
        pasted.wait(10)
        return browse(urls[0], follow=False).headers["location"] + "\n"

    tokens = await browser_login(issuer.url, announce=announce, port=0, paste_source=paste, timeout=10)
    assert account_of(tokens)[0] == "me@example.com"


async def test_missing_entitlement_is_explained(issuer: FakeIssuer) -> None:
    def open_browser(url: str) -> None:
        redirect = dict(parse_qsl(urlsplit(url).query))["redirect_uri"]
        target = f"{redirect}?error=access_denied&error_description=missing_codex_entitlement"
        threading.Thread(target=lambda: httpx.get(target), daemon=True).start()

    with pytest.raises(OAuthError, match="Codex is not enabled for your workspace"):
        await browser_login(issuer.url, announce=lambda _: None, port=0, open_browser=open_browser, timeout=10)


async def test_browser_login_times_out(issuer: FakeIssuer) -> None:
    with pytest.raises(OAuthError, match="No login within"):
        await browser_login(issuer.url, announce=lambda _: None, port=0, timeout=0.05)


async def test_device_login_with_simulated_approval(issuer: FakeIssuer) -> None:
    codes: list[str] = []
    pending = 0

    async def on_response(response: httpx.Response) -> None:
        nonlocal pending
        if response.url.path.endswith("/deviceauth/token") and response.status_code == 403:
            pending += 1
            if pending == 2:  # the user approves on another device after a couple of polls
                issuer.approve(codes[0])

    def announce(text: str) -> None:
        if text.startswith("Open "):
            codes.append(text.split()[-1])

    async with httpx.AsyncClient(event_hooks={"response": [on_response]}) as http:
        tokens = await device_login(issuer.url, announce=announce, poll_interval=0, timeout=10, http=http)
    assert account_of(tokens)[0] == "me@example.com" and pending == 2
    assert any(c.grant_type == "authorization_code" and c.status == 200 for c in issuer.calls)


async def test_device_login_gives_up_after_its_timeout(issuer: FakeIssuer) -> None:
    with pytest.raises(OAuthError, match="not approved"):
        await device_login(issuer.url, announce=lambda _: None, poll_interval=0.01, timeout=0.05)


@pytest.mark.parametrize(
    ("status", "body", "headers", "permanent", "code"),
    [
        (401, {"error": {"code": "refresh_token_reused", "message": "used"}}, {}, True, "refresh_token_reused"),
        (400, {"error": "refresh_token_expired", "error_description": "old"}, {}, True, "refresh_token_expired"),
        (400, {"code": "refresh_token_invalidated"}, {}, True, "refresh_token_invalidated"),
        (401, {"detail": "nope"}, {}, True, None),
        (400, {"error": "invalid_request"}, {}, False, "invalid_request"),
        (500, {"detail": "boom"}, {}, False, None),
        (429, {"error": {"code": "rate_limited"}}, {"retry-after": "30"}, False, "rate_limited"),
    ],
)
async def test_refresh_error_classification(
    issuer: FakeIssuer, status: int, body: dict[str, Any], headers: dict[str, str], permanent: bool, code: str | None
) -> None:
    issuer.fail_next(status, body, headers=headers)
    with pytest.raises(OAuthError) as err:
        await refresh_tokens(None, issuer.url, "rt_whatever")
    assert (err.value.permanent, err.value.code, err.value.status) == (permanent, code, status)
    if headers:
        assert err.value.retry_after == 30
    assert "rt_whatever" not in str(err.value)


async def test_fake_issuer_accepts_form_refresh_and_rotates(issuer: FakeIssuer) -> None:
    tokens = issuer.issue(issuer.accounts[0])
    form = {"client_id": CLIENT_ID, "grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    async with httpx.AsyncClient() as http:
        first = await http.post(issuer.url + "/oauth/token", data=form)
        second = await http.post(issuer.url + "/oauth/token", data=form)
    assert first.status_code == 200 and first.json()["refresh_token"] != tokens.refresh_token
    assert second.status_code == 401 and second.json()["error"]["code"] == "refresh_token_reused"
