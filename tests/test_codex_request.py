"""codex_request: the uuid-shaped keys every Codex request carries (`prompt_cache_key`, `session_id`)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import orjson
import pytest
from codex_gateway.chat.request import translate_chat_request
from codex_gateway.codex_request import conversation_key
from codex_gateway.codex_request import uuid_key
from codex_gateway.flow_record import FlowRecord
from codex_gateway.http.endpoints import prepare_upstream
from codex_gateway.http.routes import Route
from codex_gateway.images.request import prepare_generation
from codex_gateway.responses.request import prepare


def test_uuid_key_is_what_the_uuid_module_writes() -> None:
    for n in range(300):
        data = str(n).encode()
        assert uuid_key(data) == str(uuid.UUID(bytes=hashlib.sha256(data).digest()[:16], version=4))


def _chat_key() -> str:
    body = {
        "model": "gpt-5.4",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }
    return translate_chat_request(orjson.dumps(body)).session_id


def _responses_key() -> str:
    body = {"model": "gpt-5.4", "instructions": "Be brief.", "input": "hi"}
    return prepare(orjson.dumps(body), default_instructions="x").session_id


def _images_key() -> str:
    return prepare_generation(orjson.dumps({"prompt": "a red cube"}), "application/json")[1].session_id


def _compact_key() -> str:
    raw = b'{"model":"gpt-5.4","input":[]}'
    headers = prepare_upstream(Route.COMPACT, raw, "application/json", [], FlowRecord()).session_headers
    return dict(headers)["session_id"]


# Keys derived before they had one home: a replayed recording only matches when they never change.
PINNED = [
    ("chat", _chat_key, "6151e4cf-7e65-4564-8944-526611ac536c"),
    ("responses", _responses_key, "c48cc2f3-fb4b-496e-b328-7348ac8ab968"),
    ("images", _images_key, "41247a2f-0aa2-46e5-8488-4c1438fbaf79"),
    ("compact", _compact_key, "fcda0282-21e9-4f51-8c0e-afb45dafada4"),
]


@pytest.mark.parametrize("derive, key", [p[1:] for p in PINNED], ids=[p[0] for p in PINNED])
def test_derived_keys_stay_what_they_were(derive: Callable[[], str], key: str) -> None:
    assert derive() == key


def test_a_namespace_keeps_two_apis_keys_apart() -> None:
    items = [{"type": "message", "role": "user", "content": "hi"}]
    assert conversation_key("i", items) != conversation_key("i", items, namespace="responses")


@pytest.mark.parametrize("noise", [["not an item"], [{"role": "developer", "content": "x"}], [None, 5]])
def test_the_key_follows_the_first_user_message_only(noise: list[object]) -> None:
    user = {"type": "message", "role": "user", "content": "hi"}
    later = {"type": "message", "role": "assistant", "content": "hello"}
    assert conversation_key("i", [*noise, user, later]) == conversation_key("i", [user])
