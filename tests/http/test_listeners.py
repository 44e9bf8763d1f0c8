"""listeners: which reverse-proxy listeners are public, and hiding the default listener's start-up error."""

from __future__ import annotations

import logging

import pytest
from codex_gateway.http.listeners import DEFAULT_LISTEN
from codex_gateway.http.listeners import DefaultListenerErrors
from codex_gateway.http.listeners import public_listeners

UP = "reverse:https://chatgpt.com"

LISTENERS = [
    # (mode spec, listen_host option, public?)
    (f"{UP}@127.0.0.1:8787", "", False),
    (f"{UP}@127.0.0.2:8787", "", False),
    (f"{UP}@::1:8787", "", False),
    (f"{UP}@localhost:8787", "", False),
    (f"{UP}@8787", "127.0.0.1", False),
    (UP, "127.0.0.1", False),
    (UP, "localhost", False),
    (f"{UP}@127.0.0.1:8787", "0.0.0.0", False),  # the spec's own host wins over listen_host
    (f"{UP}@0.0.0.0:8787", "", True),
    (f"{UP}@0.0.0.0:8787", "127.0.0.1", True),
    (f"{UP}@:::8787", "", True),
    (f"{UP}@192.168.1.20:8787", "", True),
    (f"{UP}@10.0.0.1:8787", "127.0.0.1", True),
    (f"{UP}@gateway.lan:8787", "", True),
    (f"{UP}@8787", "", True),
    (UP, "", True),
    (UP, "0.0.0.0", True),
    (UP, "my-host", True),
    ("regular", "", False),
    ("regular@0.0.0.0:8080", "", False),
    ("socks5@0.0.0.0:1080", "", False),
    ("upstream:http://proxy.example:3128@0.0.0.0:8080", "", False),
    ("no-such-mode:x@0.0.0.0:1", "", False),
    (f"{UP}@0.0.0.0:not-a-port", "", False),  # malformed: mitmproxy reports it itself
]


@pytest.mark.parametrize("spec, listen_host, public", LISTENERS, ids=[f"{s} host={h!r}" for s, h, _ in LISTENERS])
def test_public_listeners(spec: str, listen_host: str, public: bool) -> None:
    assert public_listeners([spec], listen_host) == ([spec] if public else [])


def test_the_default_listener_is_private() -> None:
    assert public_listeners([DEFAULT_LISTEN], "") == []


def test_only_the_public_ones_are_listed_in_order() -> None:
    modes = [f"{UP}@0.0.0.0:1", "regular@0.0.0.0:8080", f"{UP}@127.0.0.1:2", f"{UP}@gateway.lan:3"]
    assert public_listeners(modes, "") == [f"{UP}@0.0.0.0:1", f"{UP}@gateway.lan:3"]


# -- DefaultListenerErrors --------------------------------------------------------------------------------------


def record(level: int) -> logging.LogRecord:
    return logging.LogRecord("mitmproxy.proxy.mode_servers", level, __file__, 1, "failed to listen", None, None)


LEVELS = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]


@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_while_active_errors_are_dropped_and_the_rest_kept(level: int) -> None:
    assert DefaultListenerErrors().filter(record(level)) is (level < logging.ERROR)


@pytest.mark.parametrize("level", LEVELS, ids=logging.getLevelName)
def test_when_inactive_everything_is_kept(level: int) -> None:
    errors = DefaultListenerErrors()
    errors.active = False
    assert errors.filter(record(level)) is True


def test_as_a_handler_filter_it_hides_errors_only_while_active() -> None:
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, r: logging.LogRecord) -> None:
            seen.append(r.getMessage())

    logger = logging.getLogger("tests.listeners.default_errors")
    logger.propagate = False
    handler = Collect()
    errors = DefaultListenerErrors()
    handler.addFilter(errors)
    logger.addHandler(handler)
    try:
        logger.error("hidden")
        logger.warning("shown")
        errors.active = False
        logger.error("shown later")
    finally:
        logger.removeHandler(handler)
    assert seen == ["shown", "shown later"]
