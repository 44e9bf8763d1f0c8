"""Property tests of the Messages request side.

- Any VALID Messages request (text, images, documents, tool use paired with results, thinking from earlier
  turns, tools, options the gateway drops) translates into a body the fake backend's rules accept.
- The same request with ONE thing broken (a wrong type, an unknown role or block type, a missing field, an
  unpaired tool result, bytes that are no JSON) raises a `GatewayError` 4xx whose Anthropic envelope is well formed;
  nothing else escapes.

The strategies are importable: tests/e2e/test_anthropic_e2e.py sends broken requests through a real gateway.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
from codex_gateway.anthropic.count import count_tokens
from codex_gateway.anthropic.errors import anthropic_error_answer
from codex_gateway.anthropic.models import DEFAULT_CLAUDE_MODELS
from codex_gateway.anthropic.models import parse_claude_models
from codex_gateway.anthropic.request import SIGNATURE_PREFIX
from codex_gateway.anthropic.request import translate_messages_request
from codex_gateway.errors import GatewayError
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from scripts.fakes.codex_rules import validate_responses_body

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAMILIES = parse_claude_models(DEFAULT_CLAUDE_MODELS)
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

text = st.text(max_size=20)
names = st.from_regex(r"[A-Za-z0-9_-]{1,100}", fullmatch=True)
cache = st.sampled_from([{}, {"cache_control": {"type": "ephemeral"}}])
text_block = st.builds(lambda t, c: {"type": "text", "text": t, **c}, text, cache)
image_block = st.sampled_from(
    [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/x.jpg"}},
    ]
)
doc_block = st.builds(
    lambda t: {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": t}}, text
)
user_block = st.one_of(text_block, image_block, doc_block)
inputs = st.dictionaries(st.text(max_size=5), st.integers(-(10**6), 10**6) | text, max_size=3)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(0, 3))):
        messages.append(
            {"role": "user", "content": draw(st.one_of(text, st.lists(user_block, min_size=1, max_size=3)))}
        )
        if draw(st.booleans()):
            messages.append({"role": "system", "content": draw(text)})
        blocks: list[dict[str, Any]] = []
        if draw(st.booleans()):
            blocks.append(
                {"type": "thinking", "thinking": draw(text), "signature": SIGNATURE_PREFIX + "gAAAA" + str(turn)}
            )
        if draw(st.booleans()):
            blocks.append({"type": "text", "text": draw(text)})
        calls = [f"toolu_{turn}_{k}" for k in range(draw(st.integers(0, 2)))]
        blocks += [{"type": "tool_use", "id": c, "name": draw(names), "input": draw(inputs)} for c in calls]
        messages.append({"role": "assistant", "content": blocks or draw(text)})
        if calls:
            results = [
                {
                    "type": "tool_result",
                    "tool_use_id": c,
                    "content": draw(st.one_of(text, st.lists(text_block, max_size=2))),
                    "is_error": draw(st.booleans()),
                }
                for c in calls
            ]
            messages.append({"role": "user", "content": results + draw(st.lists(text_block, max_size=1))})
            continue
    messages.append({"role": "user", "content": draw(st.one_of(text, st.lists(user_block, min_size=1, max_size=2)))})
    return messages


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "model": draw(st.sampled_from(["claude-opus-5-5", "claude-haiku-4-5", "gpt-5.4", "sonnet"])),
        "max_tokens": draw(st.integers(1, 128000)),
        "messages": draw(conversations()),
    }
    options = {
        "system": st.one_of(text, st.lists(text_block, max_size=3)),
        "stream": st.booleans(),
        "stop_sequences": st.lists(text, max_size=3),
        "temperature": st.floats(0, 1),
        "top_k": st.integers(0, 500),
        "metadata": st.just({"user_id": json.dumps({"session_id": "s1"})}),
        "thinking": st.sampled_from(
            [
                {"type": "adaptive", "display": "omitted"},
                {"type": "enabled", "budget_tokens": 5000},
                {"type": "disabled"},
            ]
        ),
        "output_config": st.sampled_from([{"effort": "low"}, {"effort": "max"}]),
        "tools": st.lists(
            st.builds(lambda n, d: {"name": n, "description": d, "input_schema": {"type": "object"}}, names, text),
            max_size=3,
            unique_by=lambda t: t["name"],
        ),
        "context_management": st.just({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}),
    }
    for key in draw(st.lists(st.sampled_from(sorted(options)), unique=True, max_size=5)):
        doc[key] = draw(options[key])
    return doc


@FUZZ
@given(requests())
def test_valid_requests_translate_into_bodies_the_backend_accepts(doc: dict[str, Any]) -> None:
    out = translate_messages_request(orjson.dumps(doc), None, {}, FAMILIES)
    assert validate_responses_body(out.body) is None, validate_responses_body(out.body)
    assert count_tokens(orjson.dumps(doc), None, {}, FAMILIES)["input_tokens"] >= 0


JUNK = [None, 1, 2.5, True, "x", [], {}, [1], {"type": "bogus"}]


@st.composite
def broken_requests(draw: st.DrawFn) -> bytes:
    # A copy: `st.just` and `st.sampled_from` hand out the same objects every time, and the breaking below mutates
    # them (mutated, they would change what later examples draw: hypothesis fails such a test as flaky).
    doc = copy.deepcopy(draw(requests()))
    how = draw(st.sampled_from(["junk", "drop", "bytes", "orphan"]))
    if how == "bytes":
        return orjson.dumps(doc)[: draw(st.integers(0, 20))]
    if how == "orphan":
        doc["messages"].append(
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}
        )
        return orjson.dumps(doc)
    paths = list(_paths(doc))
    path = draw(st.sampled_from(paths))
    target = doc
    for part in path[:-1]:
        target = target[part]
    if how == "drop":
        if isinstance(target, list) or path[-1] not in (
            "model",
            "messages",
            "max_tokens",
            "role",
            "type",
            "tool_use_id",
            "source",
            "data",
            "name",
            "id",
            "input",
            "input_schema",
        ):
            return orjson.dumps(None)  # dropping an optional field breaks nothing: send something that surely is broken
        del target[path[-1]]
    else:
        target[path[-1]] = draw(st.sampled_from(JUNK))
    return orjson.dumps(doc)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Any:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


@FUZZ
@given(broken_requests())
def test_broken_requests_get_an_anthropic_4xx_or_translate_validly(raw: bytes) -> None:
    try:
        out = translate_messages_request(raw, None, {}, FAMILIES)
    except GatewayError as e:
        answer = anthropic_error_answer(e)
        body = json.loads(answer.body)
        assert 400 <= answer.status < 500
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"} and body["error"]["message"]
        return
    # Junk where anything goes (a string for a string, a value inside a tool's input): still a valid body.
    assert validate_responses_body(copy.deepcopy(out.body)) is None
