"""Where the gateway listens: the zero-flag start, and refusing public listeners without a key."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from mitmproxy.proxy import mode_specs

__all__ = ["DEFAULT_LISTEN", "DefaultListenerErrors", "public_listeners"]

DEFAULT_LISTEN = "reverse:https://chatgpt.com@127.0.0.1:8787"


class DefaultListenerErrors(logging.Filter):
    """Hides the failure of mitmproxy's default *:8080 listener while the gateway replaces it.

    mitmproxy 12 binds its servers before `-s` scripts are loaded, so with no `--mode` the default regular
    listener is already being bound when the addon first runs; if port 8080 is busy that error would abort
    start-up although the gateway is about to listen elsewhere.
    """

    active = True

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.active and record.levelno >= logging.ERROR)


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")  # mitmproxy keeps the brackets of `@[::1]:8787`
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "" (all interfaces) or a name: treat as public


def public_listeners(modes: Sequence[str], listen_host: str) -> list[str]:
    """The reverse-proxy listeners (the gateway's) that accept connections from other machines."""
    public = []
    for spec in modes:
        try:
            mode = mode_specs.ProxyMode.parse(spec)
        except ValueError:
            continue  # mitmproxy itself reports malformed modes
        if isinstance(mode, mode_specs.ReverseMode) and not _is_loopback(mode.listen_host(listen_host)):
            public.append(spec)
    return public
