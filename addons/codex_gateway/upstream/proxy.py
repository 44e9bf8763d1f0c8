"""The upstream proxy configuration: parsed from `codex_proxy`/`codex_no_proxy` or, when `codex_proxy` is unset,
from the environment as curl and httpx read it. Pure: no I/O, no mitmproxy, no httpx.

Proxy credentials (`http://user:password@host:port`) are kept out of every string this module makes:
`ProxyURL.display` and `mask_credentials` are what logs, error messages and metadata use.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

__all__ = [
    "ProxyURL",
    "NoProxy",
    "ProxyConfig",
    "DIRECT",
    "parse_proxy_url",
    "parse_no_proxy",
    "proxy_config",
    "mask_credentials",
]

_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)\S*@")
_ENV_PROXY = {"https": ("https_proxy", "HTTPS_PROXY"), "http": ("http_proxy", "HTTP_PROXY")}
_ENV_ALL = ("all_proxy", "ALL_PROXY")
_ENV_NO_PROXY = ("no_proxy", "NO_PROXY")


def mask_credentials(text: str, *secrets: str) -> str:
    """`text` with the userinfo of every URL in it replaced by `***` and each non-empty secret by `***`.

    The one place that makes proxy URLs (and messages that may quote them) fit for logs, comments, metadata
    and error messages. Greedy up to the last `@` of a token, so a password holding `@` or `/` is masked too.
    """
    masked = _USERINFO.sub(r"\1***@", text)
    for secret in secrets:
        if secret:
            masked = masked.replace(secret, "***")
    return masked


@dataclass(frozen=True)
class ProxyURL:
    """An HTTP(S) proxy. `str()`/`repr()` show `display`, never the credentials."""

    scheme: str  # "http" or "https": how the gateway talks to the proxy itself
    host: str
    port: int
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)

    @property
    def address(self) -> str:
        """`host:port` (IPv6 in brackets): how messages name the proxy."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def display(self) -> str:
        """The URL with any credentials replaced by `***`."""
        return f"{self.scheme}://{'***@' if self.has_credentials else ''}{self.address}"

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password)

    def url(self) -> str:
        """The full URL, credentials included (for httpx only; never log it)."""
        userinfo = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@" if self.has_credentials else ""
        return f"{self.scheme}://{userinfo}{self.address}"

    def authorization(self) -> str | None:
        """The `Proxy-Authorization` value for a CONNECT (Basic), or None without credentials."""
        if not self.has_credentials:
            return None
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()

    def mask(self, text: str) -> str:
        """`text` fit for a log or an error message: no URL userinfo, not this proxy's password."""
        return mask_credentials(text, self.password)

    def __str__(self) -> str:
        return self.display

    def __repr__(self) -> str:
        return f"ProxyURL({self.display})"


def parse_proxy_url(value: str, name: str = "codex_proxy", *, default_scheme: str | None = None) -> ProxyURL:
    """An `http://` or `https://` proxy URL, optionally with `user:password@`; the port defaults to 80/443.

    Raises ValueError naming `name`, with the value masked. `default_scheme` is for environment variables, which
    curl and httpx also accept without a scheme (`proxy.example:3128`).
    """
    text = value.strip()
    if default_scheme and "://" not in text:
        text = f"{default_scheme}://{text}"
    shown = mask_credentials(text)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme.startswith("socks"):
        raise ValueError(
            f"{name} is a SOCKS proxy ({shown}), which the gateway cannot use: give an http:// or https:// proxy"
        )
    if scheme not in ("http", "https"):
        raise ValueError(f"{name} must be an http:// or https:// proxy URL, not {shown!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{name} has an invalid port: {shown!r}") from None
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{name} must look like http://[user:password@]host:port, not {shown!r}")
    return ProxyURL(
        scheme=scheme,
        host=parts.hostname,
        port=port or (443 if scheme == "https" else 80),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
    )


@dataclass(frozen=True)
class NoProxy:
    """Hosts that go direct, matched like curl's `NO_PROXY`: `*` (everything), a domain (`example.com` and
    `.example.com` both match it and its subdomains; `*.example.com` likewise), an IP address or a CIDR block.
    A `:port` on an entry is ignored, as curl does."""

    everything: bool = False
    domains: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    text: str = ""  # the entries as given, for the start-up line

    def matches(self, host: str) -> bool:
        if self.everything:
            return True
        name = host.strip("[]").rstrip(".").lower()
        try:
            ip = ipaddress.ip_address(name)
        except ValueError:
            return any(name == d or name.endswith("." + d) for d in self.domains)
        return any(ip in net for net in self.networks) or name in self.domains


def parse_no_proxy(value: str, name: str = "codex_no_proxy", *, strict: bool = True) -> NoProxy:
    """Comma-separated entries. `strict` (the option) rejects what cannot be a host; the environment's value is
    read leniently (unusable entries are skipped), as curl does."""
    domains: list[str] = []
    networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    entries = [e.strip() for e in value.split(",") if e.strip()]
    for entry in entries:
        if entry == "*":
            return NoProxy(everything=True, text="*")
        try:
            networks.append(_network(entry))
            continue
        except ValueError:
            pass
        domain = _domain(entry)
        if domain is None:
            if strict:
                raise ValueError(f"{name} takes host names, IP addresses or CIDR blocks, not {entry!r}")
            continue
        domains.append(domain)
    return NoProxy(domains=tuple(domains), networks=tuple(networks), text=", ".join(entries))


def _network(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    text = entry.strip("[]") if entry.startswith("[") and entry.endswith("]") else entry
    if text.startswith("[") and "]:" in text:  # [::1]:8080
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 10.0.0.1:8080
        text = text.split(":")[0]
    return ipaddress.ip_network(text, strict=False)


def _domain(entry: str) -> str | None:
    text = entry.lower()
    if text.startswith("*."):
        text = text[2:]
    text = text.lstrip(".")
    if ":" in text:
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    text = text.rstrip(".")
    if not text or not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?", text) or ".." in text:
        return None
    return text


@dataclass(frozen=True)
class ProxyConfig:
    """Which proxy an upstream connection uses: `for_target(scheme, host)`."""

    https: ProxyURL | None = None  # for https:// targets
    http: ProxyURL | None = None  # for http:// targets
    no_proxy: NoProxy = NoProxy()
    source: str = ""  # where the proxy came from: "codex_proxy", "HTTPS_PROXY in the environment", ...

    def for_target(self, scheme: str, host: str) -> ProxyURL | None:
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self.no_proxy.matches(host):
            return None
        return proxy

    def proxies(self) -> tuple[ProxyURL, ...]:
        return tuple(dict.fromkeys(p for p in (self.https, self.http) if p is not None))

    def describe(self, scheme: str, host: str) -> str:
        """The one start-up line: which proxy connections to `host` use, and where that came from."""
        proxy = self.https if scheme == "https" else self.http
        bypass = f"; direct for {self.no_proxy.text}" if self.no_proxy.text and proxy is not None else ""
        if proxy is None:
            return "upstream connections are direct (no codex_proxy, no proxy in the environment)"
        if self.no_proxy.matches(host):
            return f"upstream connections to {host} are direct: it is in the no-proxy list ({self.no_proxy.text})"
        return f"upstream connections go through the proxy {proxy.display} (from {self.source}){bypass}"


DIRECT = ProxyConfig()


def proxy_config(option: str | None, no_proxy: str, environ: Mapping[str, str]) -> ProxyConfig:
    """`codex_proxy` for every target when set, else the environment's per-scheme proxy (`https_proxy`,
    `HTTPS_PROXY`, then `all_proxy`/`ALL_PROXY`; `http_proxy`/`HTTP_PROXY` for http:// targets).

    `codex_no_proxy` when given, else (only with an environment proxy) `no_proxy`/`NO_PROXY`.
    Raises ValueError for an unusable value, naming its option or variable, with credentials masked.
    """
    bypass = parse_no_proxy(no_proxy) if no_proxy.strip() else None
    if option:
        proxy = parse_proxy_url(option)
        return ProxyConfig(https=proxy, http=proxy, no_proxy=bypass or NoProxy(), source="codex_proxy")
    if bypass is not None and bypass.everything:
        return DIRECT
    if bypass is None:
        env_name, env_value = _first(environ, _ENV_NO_PROXY)
        bypass = parse_no_proxy(env_value, env_name, strict=False)
    found = {scheme: _first(environ, (*names, *_ENV_ALL)) for scheme, names in _ENV_PROXY.items()}
    if not any(value for _, value in found.values()) or bypass.everything:
        return DIRECT
    parsed = {
        scheme: parse_proxy_url(value, env_name, default_scheme="http") if value else None
        for scheme, (env_name, value) in found.items()
    }
    source = found["https"][0] if parsed["https"] else found["http"][0]
    return ProxyConfig(
        https=parsed["https"], http=parsed["http"], no_proxy=bypass, source=f"{source} in the environment"
    )


def _first(environ: Mapping[str, str], names: tuple[str, ...]) -> tuple[str, str]:
    """The first of `names` set (non-empty) in `environ`, and its value."""
    for name in names:
        value = environ.get(name, "").strip()
        if value:
            return name, value
    return names[0], ""
