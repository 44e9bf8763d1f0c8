"""Fixtures of the account tests: a settable clock, a fake issuer, the two homes and a pool over them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from codex_gateway.accounts.pool import AccountPool

from scripts.fakes.fake_issuer import FakeIssuer
from tests.accounts.test_pool import HOUR
from tests.accounts.test_pool import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def issuer(clock: Clock) -> Iterator[FakeIssuer]:
    with FakeIssuer(clock=clock, access_ttl=30 * 24 * HOUR) as fake:
        yield fake


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "codex", tmp_path / "gateway"


@pytest.fixture
def pool(homes: tuple[Path, Path], issuer: FakeIssuer, clock: Clock) -> AccountPool:
    return AccountPool(homes[0], homes[1], issuer.url, clock=clock)
