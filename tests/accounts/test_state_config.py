"""`gateway_state` and friends: which store, and never a password or secret where it could be shown."""

from __future__ import annotations

import pytest
from codex_gateway.accounts.state import StateConfig


@pytest.mark.parametrize(
    ("url", "address"),
    [
        (None, "files"),
        ("", "files"),
        ("files", "files"),
        ("redis://10.0.0.5:6379/0", "redis://10.0.0.5:6379/0"),
        ("redis://:s3cret@10.0.0.5:6379/2", "redis://***@10.0.0.5:6379/2"),
        ("rediss://user:s3cret@cache.example:6380/0", "rediss://***@cache.example:6380/0"),
    ],
)
def test_the_store_and_how_it_is_shown(url: str | None, address: str) -> None:
    assert StateConfig.parse(url).address == address


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://:s3cret@host:6379", "must be unset, `files`, or redis://"),
        ("redis://:s3cret@host:6379/zero", "must be a number"),
        ("redis:///0", "must be unset"),
    ],
)
def test_an_unusable_value_is_refused_without_its_password(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says) as info:
        StateConfig.parse(url)
    assert "s3cret" not in str(info.value)


def test_options_win_over_the_environment() -> None:
    env = {"CODEX_GATEWAY_STATE": "redis://env:6379/0", "CODEX_GATEWAY_STATE_PREFIX": "envp"}
    given = StateConfig.from_env(env, url="redis://opt:6379/1", prefix=None)
    assert (given.address, given.prefix) == ("redis://opt:6379/1", "envp")


def test_the_repr_holds_neither_password_nor_secret() -> None:
    config = StateConfig.parse("redis://:s3cret@host:6379/0", secret="passphrase")
    assert "s3cret" not in repr(config) and "passphrase" not in repr(config)
