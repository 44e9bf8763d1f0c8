"""The upstream tests decide the proxy themselves: the environment's proxy variables are cleared."""

from __future__ import annotations

import pytest

PROXY_VARIABLES = [f"{n}_proxy" for n in ("http", "https", "all", "no")]


@pytest.fixture(autouse=True)
def _no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
