"""Property tests of the request side: schema-aware chat requests through `translate_chat_request`.

- Any VALID chat.completions request (roles, content parts, tools, tool calls paired with their results, options,
  fields the gateway drops) translates into a body the fake backend's rules (`validate_responses_body`, an
  allow-list of what the real backend accepts) let through.
- The same request with ONE field broken (wrong type, unknown role / part type / enum value, missing required
  field, non-object tool schema, orphan or missing tool result, huge string, deep nesting, broken JSON bytes)
  raises a `GatewayError` 400 whose envelope names that field in `param` (None for bytes that are not JSON) and
  nothing else escapes.

The strategies are importable: tests/e2e/test_bad_input_e2e.py sends mutated requests through a real gateway.
The same properties with many more examples (5,000 each; not in CI), each failure with hypothesis' minimal example:

    REQUEST_FUZZ_PROFILE=request-fuzz-deep .venv/bin/python -m pytest tests/test_request_fuzz.py -q
    # add --hypothesis-seed=1 for a fixed seed, -k pairing (or valid, wrong_type, …) for some properties only
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from codex_gateway.chat.request import translate_chat_request
from codex_gateway.errors import GatewayError
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from scripts.fakes.codex_rules import validate_responses_body

settings.register_profile("request-fuzz", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "request-fuzz-deep", settings.get_profile("request-fuzz"), max_examples=5000, database=None, print_blob=True
)
FUZZ = settings.get_profile(os.environ.get("REQUEST_FUZZ_PROFILE", "request-fuzz"))

Json = Any
ENVELOPE_KEYS = {"message", "type", "param", "code"}
EFFORTS = ["none", "minimal", "low", "medium", "high", "xhigh"]
ROLES = {"system", "developer", "user", "assistant", "tool"}
PNG_1PX = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

# -- valid requests ---------------------------------------------------------------------------------------------

text = st.text(max_size=30)
short_text = st.text(max_size=12)
# The OpenAI API's function-name rule (and the backend's): letters, digits, '_' and '-', at most 64.
fn_names = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
json_scalars = (
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    json_scalars | short_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3),
    max_leaves=8,
)
json_arguments = st.dictionaries(short_text, json_values, max_size=3).map(lambda d: json.dumps(d, ensure_ascii=False))


@st.composite
def object_schemas(draw: st.DrawFn) -> dict[str, Json]:
    props: dict[str, Json] = draw(
        st.dictionaries(
            st.from_regex(r"[a-z_]{1,10}", fullmatch=True),
            st.fixed_dictionaries(
                {"type": st.sampled_from(["string", "integer", "number", "boolean"])},
                optional={"description": short_text},
            ),
            max_size=3,
        )
    )
    schema: dict[str, Json] = {"type": "object", "properties": props}
    if draw(st.booleans()) and props:
        schema["required"] = sorted(props)
    if draw(st.booleans()):
        schema["additionalProperties"] = False
    if draw(st.integers(0, 5)) == 0:
        del schema["type"]  # "object" is implied (the gateway says so upstream)
    return schema


text_parts = st.builds(lambda t: {"type": "text", "text": t}, text)
image_urls = st.sampled_from(["https://example.com/cat.png", "http://img.example/a.jpg?x=1", PNG_1PX])
image_parts = st.builds(
    lambda url, detail: {"type": "image_url", "image_url": {"url": url, **({"detail": detail} if detail else {})}},
    image_urls,
    st.sampled_from([None, "auto", "low", "high"]),
)
names = st.one_of(st.none(), st.from_regex(r"[a-z]{1,8}", fullmatch=True))


def _named(msg: dict[str, Json], name: str | None) -> dict[str, Json]:
    return {**msg, "name": name} if name is not None else msg


system_messages = st.builds(
    lambda role, content, name: _named({"role": role, "content": content}, name),
    st.sampled_from(["system", "developer"]),
    text | st.lists(text_parts, min_size=1, max_size=3),
    names,
)
user_messages = st.builds(
    lambda content, name: _named({"role": "user", "content": content}, name),
    text | st.lists(text_parts | image_parts, max_size=4),
    names,
)
refusal_parts = st.builds(lambda t: {"type": "refusal", "refusal": t}, text)


@st.composite
def assistant_messages(draw: st.DrawFn) -> dict[str, Json]:
    msg: dict[str, Json] = {"role": "assistant"}
    content = draw(st.sampled_from(["absent", "none", "str", "parts"]))
    if content == "none":
        msg["content"] = None
    elif content == "str":
        msg["content"] = draw(text)
    elif content == "parts":
        msg["content"] = draw(st.lists(text_parts | refusal_parts, max_size=3))
    if draw(st.booleans()):
        msg["refusal"] = draw(st.none() | text)
    if draw(st.booleans()):
        msg["reasoning_content"] = draw(text)  # echoed back by many OpenAI-compatible clients; dropped
    return msg


@st.composite
def tool_turns(draw: st.DrawFn, first_id: int) -> list[dict[str, Json]]:
    """An assistant message with 1-3 tool calls, then one tool message per call (in any order)."""
    n = draw(st.integers(1, 3))
    ids = [f"call_{first_id + k}_{draw(st.from_regex(r'[A-Za-z0-9]{0,6}', fullmatch=True))}" for k in range(n)]
    calls = [
        {"id": cid, "type": "function", "function": {"name": draw(fn_names), "arguments": draw(json_arguments)}}
        for cid in ids
    ]
    assistant = draw(assistant_messages())
    assistant["tool_calls"] = calls
    results = [
        _named(
            {"role": "tool", "tool_call_id": cid, "content": draw(text | st.lists(text_parts, min_size=1, max_size=2))},
            draw(names),
        )
        for cid in draw(st.permutations(ids))
    ]
    return [assistant, *results]


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Json]]:
    kinds = draw(st.lists(st.sampled_from(["system", "user", "assistant", "tools"]), min_size=1, max_size=7))
    messages: list[dict[str, Json]] = []
    for i, kind in enumerate(kinds):
        if kind == "system":
            messages.append(draw(system_messages))
        elif kind == "user":
            messages.append(draw(user_messages))
        elif kind == "assistant":
            messages.append(draw(assistant_messages()))
        else:
            messages += draw(tool_turns(first_id=10 * i))
    return messages


@st.composite
def tool_lists(draw: st.DrawFn) -> list[dict[str, Json]]:
    tool_names = draw(st.lists(fn_names, max_size=3, unique=True))
    tools = []
    for name in tool_names:
        fn: dict[str, Json] = {"name": name}
        if draw(st.booleans()):
            fn["description"] = draw(text)
        if draw(st.booleans()):
            fn["parameters"] = draw(object_schemas())
        if draw(st.booleans()):
            fn["strict"] = draw(st.booleans())
        tools.append({"type": "function", "function": fn})
    return tools


response_formats = st.one_of(
    st.just({"type": "text"}),
    st.just({"type": "json_object"}),
    st.builds(
        lambda name, schema, extra: {"type": "json_schema", "json_schema": {"name": name, "schema": schema, **extra}},
        st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
        object_schemas(),
        st.fixed_dictionaries({}, optional={"strict": st.booleans(), "description": text}),
    ),
)
numbers = st.integers(0, 2) | st.floats(0, 2, allow_nan=False)
# Options the gateway forwards, emulates or drops; each may be absent.
OPTIONS = {
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
    "parallel_tool_calls": st.booleans(),
    "reasoning_effort": st.sampled_from(EFFORTS),
    "reasoning": st.fixed_dictionaries(
        {}, optional={"effort": st.sampled_from(EFFORTS), "summary": st.sampled_from(["auto", "concise", "detailed"])}
    ),
    "response_format": response_formats,
    "verbosity": st.sampled_from(["low", "medium", "high"]),
    "prompt_cache_key": text,
    "stop": short_text | st.lists(short_text, max_size=4),
    "n": st.just(1),
    "max_tokens": st.integers(1, 10**6),
    "max_completion_tokens": st.integers(1, 10**6),
    "temperature": numbers,
    "top_p": st.integers(0, 1) | st.floats(0, 1, allow_nan=False),
    "presence_penalty": st.floats(-2, 2, allow_nan=False),
    "frequency_penalty": st.integers(-2, 2),
    "seed": st.integers(-(2**63), 2**63 - 1),
    "user": text,
    "metadata": st.dictionaries(short_text, short_text, max_size=3),
    "logit_bias": st.dictionaries(st.from_regex(r"[0-9]{1,5}", fullmatch=True), st.integers(-100, 100), max_size=3),
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 20),
    "store": st.booleans(),
    "service_tier": st.sampled_from(["auto", "default", "flex"]),
    "safety_identifier": text,
    "x_vendor_extension": json_values,  # unknown fields are dropped, never forwarded
}


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Json]:
    """A valid chat.completions request body, as a dict."""
    body: dict[str, Json] = {
        "model": draw(st.sampled_from(["gpt-5.4", "gpt-5-codex", "gpt-5.1-codex-mini"]) | st.text(min_size=1)),
        "messages": draw(conversations()),
    }
    body.update(draw(st.fixed_dictionaries({}, optional=OPTIONS)))
    if draw(st.booleans()):
        body["tools"] = draw(tool_lists())
        tool_names = [t["function"]["name"] for t in body["tools"]]
        choices: list[Json] = ["auto", "none"]
        if tool_names:
            choices += ["required", *({"type": "function", "function": {"name": n}} for n in tool_names)]
        if draw(st.booleans()):
            body["tool_choice"] = draw(st.sampled_from(choices))
    return body


def translate_ok(body: dict[str, Json]) -> dict[str, Json]:
    """Translates a valid request; returns the upstream body exactly as it would go on the wire."""
    req = translate_chat_request(orjson.dumps(body))
    upstream = orjson.loads(req.body_bytes())
    assert (req.message_count, req.tool_count) == (len(body["messages"]), len(body.get("tools") or []))
    assert req.stream is bool(body.get("stream"))
    return upstream


@given(body=chat_requests())
@FUZZ
def test_valid_requests_satisfy_the_backend_rules(body: dict[str, Json]) -> None:
    upstream = translate_ok(body)
    assert validate_responses_body(upstream) is None


@given(body=chat_requests())
@FUZZ
def test_every_tool_call_is_forwarded_with_its_result(body: dict[str, Json]) -> None:
    check_calls_forwarded(body)


def check_calls_forwarded(body: dict[str, Json]) -> None:
    upstream = translate_ok(body)
    calls = [call for msg in body["messages"] for call in msg.get("tool_calls", ())]
    sent = {it["call_id"]: it for it in upstream["input"] if it["type"] == "function_call"}
    outputs = [it["call_id"] for it in upstream["input"] if it["type"] == "function_call_output"]
    assert [c["id"] for c in calls] == list(sent) and sorted(outputs) == sorted(sent)
    for call in calls:
        assert (sent[call["id"]]["name"], sent[call["id"]]["arguments"]) == (
            call["function"]["name"],
            call["function"]["arguments"],
        )


def test_huge_valid_strings_are_translated() -> None:
    big = "x" * 2_000_000 + "é\U0001f600"
    body = {
        "model": "gpt-5.4",
        "messages": [{"role": "system", "content": big}, {"role": "user", "content": big}],
        "tools": [{"type": "function", "function": {"name": "f", "description": big}}],
    }
    upstream = translate_ok(body)
    assert validate_responses_body(upstream) is None
    assert upstream["instructions"] == big and upstream["input"][0]["content"][0]["text"] == big


# -- one field broken -------------------------------------------------------------------------------------------


@dataclass
class Mutation:
    """A broken request: the JSON body (or raw bytes) and the `param` the gateway must name (None: not JSON)."""

    kind: str
    body: dict[str, Json] | None
    param: str | None
    raw: bytes | None = None

    def payload(self) -> bytes:
        return self.raw if self.raw is not None else orjson.dumps(self.body)


def expect_400(payload: bytes) -> GatewayError:
    """The one acceptable outcome for a broken request: a 400 with a complete OpenAI envelope."""
    with pytest.raises(GatewayError) as info:
        translate_chat_request(payload)
    err = info.value
    envelope = orjson.loads(err.body())
    assert set(envelope) == {"error"} and set(envelope["error"]) == ENVELOPE_KEYS
    assert err.status == 400 and envelope["error"]["type"] == "invalid_request_error"
    assert isinstance(envelope["error"]["message"], str) and envelope["error"]["message"]
    return err


# Wrong-typed values per declared type of a top-level field (never None: every optional field accepts null).
NOT_STR: list[Json] = [7, 1.5, True, [], {}, ["x"]]
NOT_BOOL: list[Json] = ["true", 1, 0, [], {}]
NOT_INT: list[Json] = ["1", 1.5, True, [], {}]
NOT_NUMBER: list[Json] = ["1", True, [], {}]
NOT_LIST: list[Json] = ["x", 3, {}, True]
NOT_OBJECT: list[Json] = ["x", 3, [], True]
TOP_LEVEL_TYPES: dict[str, list[Json]] = {
    "model": [*NOT_STR, None, ""],
    "messages": [*NOT_LIST, None, []],
    "stream": NOT_BOOL,
    "stream_options": NOT_OBJECT,
    "tools": NOT_LIST,
    "tool_choice": [3, [], True, "sometimes"],
    "parallel_tool_calls": NOT_BOOL,
    "reasoning_effort": [*NOT_STR, "max"],
    "reasoning": NOT_OBJECT,
    "response_format": NOT_OBJECT,
    "verbosity": [*NOT_STR, "loud"],
    "prompt_cache_key": NOT_STR,
    "stop": [3, {}, True],
    "n": [*NOT_INT, 0],
    "max_tokens": [*NOT_INT, 0],
    "max_completion_tokens": [*NOT_INT, -1],
    "temperature": [*NOT_NUMBER, 2.5, -0.1],
    "top_p": [*NOT_NUMBER, 1.5],
    "presence_penalty": [*NOT_NUMBER, 3],
    "frequency_penalty": [*NOT_NUMBER, -3],
    "seed": NOT_INT,
    "user": NOT_STR,
    "metadata": NOT_OBJECT,
    "logit_bias": NOT_OBJECT,
    "logprobs": NOT_BOOL,
    "top_logprobs": [*NOT_INT, 21],
    "store": NOT_BOOL,
    "service_tier": NOT_STR,
    "safety_identifier": NOT_STR,
}


# Content parts of these roles are a plain list[TextPart], not a discriminated union (named differently by pydantic).
PLAIN_TEXT_ROLES = {"system", "developer", "tool"}


def _message_paths(body: dict[str, Json]) -> list[tuple[int, dict[str, Json]]]:
    return list(enumerate(body["messages"]))


@st.composite
def wrong_top_level_type(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    field = draw(st.sampled_from(sorted(TOP_LEVEL_TYPES)))
    body[field] = draw(st.sampled_from(TOP_LEVEL_TYPES[field]))
    return Mutation("wrong top-level type", body, field)


@st.composite
def wrong_nested_type(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    targets: list[tuple[str, Any, Any]] = []  # (param, container, key or index) of the field to break
    for i, msg in _message_paths(body):
        targets += [(f"messages[{i}]", body["messages"], i), (f"messages[{i}].content", msg, "content")]
        targets.append((f"messages[{i}].name", msg, "name"))
        if isinstance(msg.get("content"), list):
            for j, part in enumerate(msg["content"]):
                key = {"text": "text", "refusal": "refusal", "image_url": "image_url"}[part["type"]]
                targets.append((f"messages[{i}].content[{j}].{key}", part, key))
        for j, call in enumerate(msg.get("tool_calls") or ()):
            for key in ("name", "arguments"):
                targets.append((f"messages[{i}].tool_calls[{j}].function.{key}", call["function"], key))
        if msg["role"] == "tool":
            targets.append((f"messages[{i}].tool_call_id", msg, "tool_call_id"))
    for k, tool in enumerate(body.get("tools") or ()):
        for key in ("name", "description", "parameters"):
            targets.append((f"tools[{k}].function.{key}", tool["function"], key))
        targets += [(f"tools[{k}].function", tool, "function"), (f"tools[{k}]", body["tools"], k)]
    path, holder, key = draw(st.sampled_from(targets))
    # Every field above is a string, an object or a list; content also takes a list, parameters a string.
    wrong: list[Json] = [5, 2.5, True, [1]]
    if path.endswith(".content"):
        wrong = [5, 2.5, True, {"text": "x"}]
    elif path.endswith(".parameters"):
        wrong = [5, [], "x", True]
    holder[key] = draw(st.sampled_from(wrong))
    return Mutation("wrong nested type", body, path)


@st.composite
def missing_required(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    targets: list[tuple[str, dict[str, Json], str]] = [("model", body, "model"), ("messages", body, "messages")]
    for i, msg in _message_paths(body):
        targets.append((f"messages[{i}].role", msg, "role"))
        if msg["role"] != "assistant":
            targets.append((f"messages[{i}].content", msg, "content"))
        if msg["role"] == "tool":
            targets.append((f"messages[{i}].tool_call_id", msg, "tool_call_id"))
        for j, part in enumerate(msg["content"] if isinstance(msg.get("content"), list) else ()):
            targets.append((f"messages[{i}].content[{j}].type", part, "type"))
            key = {"text": "text", "refusal": "refusal", "image_url": "image_url"}[part["type"]]
            targets.append((f"messages[{i}].content[{j}].{key}", part, key))
            if key == "image_url":
                targets.append((f"messages[{i}].content[{j}].image_url.url", part["image_url"], "url"))
        for j, call in enumerate(msg.get("tool_calls") or ()):
            prefix = f"messages[{i}].tool_calls[{j}]"
            targets += [(f"{prefix}.id", call, "id"), (f"{prefix}.function", call, "function")]
            targets += [(f"{prefix}.function.{k}", call["function"], k) for k in ("name", "arguments")]
    for k, tool in enumerate(body.get("tools") or ()):
        targets += [(f"tools[{k}].type", tool, "type"), (f"tools[{k}].function", tool, "function")]
        targets.append((f"tools[{k}].function.name", tool["function"], "name"))
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        targets.append(("response_format.type", fmt, "type"))
        if fmt["type"] == "json_schema":
            targets.append(("response_format.json_schema", fmt, "json_schema"))
            targets.append(("response_format.json_schema.name", fmt["json_schema"], "name"))
    path, holder, key = draw(st.sampled_from(targets))
    del holder[key]
    return Mutation("missing required field", body, path)


@st.composite
def unknown_tag(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    """An unknown role, content part type, tool type or enum value."""
    bogus = draw(st.sampled_from(["robot", "function", "System", "", "input_text", "video", "audio", "file"]))
    targets: list[tuple[str, dict[str, Json], str, set[str]]] = []
    for i, msg in _message_paths(body):
        targets.append((f"messages[{i}].role", msg, "role", ROLES))
        allowed = {"user": {"text", "image_url"}, "assistant": {"text", "refusal"}}.get(msg["role"], {"text"})
        for j, part in enumerate(msg["content"] if isinstance(msg.get("content"), list) else ()):
            targets.append((f"messages[{i}].content[{j}].type", part, "type", allowed))
            if part["type"] == "image_url":
                targets.append((f"messages[{i}].content[{j}].image_url.detail", part["image_url"], "detail", set()))
        for j, call in enumerate(msg.get("tool_calls") or ()):
            targets.append((f"messages[{i}].tool_calls[{j}].type", call, "type", {"function"}))
    for k, tool in enumerate(body.get("tools") or ()):
        targets.append((f"tools[{k}].type", tool, "type", {"function"}))
    for field, holder in (("reasoning_effort", body), ("verbosity", body)):
        targets.append((field, holder, field, set()))
    if isinstance(body.get("response_format"), dict):
        targets.append(("response_format.type", body["response_format"], "type", set()))
    if isinstance(body.get("reasoning"), dict):
        targets.append(("reasoning.summary", body["reasoning"], "summary", set()))
    path, holder, key, allowed = draw(st.sampled_from(targets))
    holder[key] = bogus if bogus not in allowed else bogus + "x"
    return Mutation("unknown tag or enum value", body, path)


@st.composite
def broken_tool_pairing(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    messages = body["messages"]
    tool_at = [i for i, m in enumerate(messages) if m["role"] == "tool"]
    ops = ["orphan"] + (["drop_result", "duplicate_result"] if tool_at else [])
    op = draw(st.sampled_from(ops))
    if op == "orphan":  # a tool message answering a call nobody made
        at = draw(st.integers(0, len(messages)))
        messages.insert(at, {"role": "tool", "tool_call_id": "call_nobody_made", "content": "42"})
        return Mutation("orphan tool message", body, f"messages[{at}].tool_call_id")
    i = draw(st.sampled_from(tool_at))
    call_id = messages[i]["tool_call_id"]
    made_at = next(k for k, m in enumerate(messages) if any(c["id"] == call_id for c in m.get("tool_calls") or ()))
    if op == "drop_result":
        del messages[i]
        return Mutation("tool call without result", body, f"messages[{made_at}].tool_calls")
    at = draw(st.integers(i + 1, len(messages)))
    messages.insert(at, copy.deepcopy(messages[i]))
    return Mutation("second result for one call", body, f"messages[{at}].tool_call_id")


HUGE = 300_000


@st.composite
def huge_string_in_a_bounded_field(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    big = draw(st.sampled_from(["x", "é", "\U0001f600", "a b"])) * HUGE
    targets: list[tuple[str, dict[str, Json], str]] = [("reasoning_effort", body, "reasoning_effort")]
    targets += [(f"messages[{i}].role", m, "role") for i, m in _message_paths(body)]
    targets += [(f"tools[{k}].function.name", t["function"], "name") for k, t in enumerate(body.get("tools") or ())]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt["type"] == "json_schema":
        targets.append(("response_format.json_schema.name", fmt["json_schema"], "name"))
    path, holder, key = draw(st.sampled_from(targets))
    holder[key] = big
    return Mutation("huge string", body, path)


@st.composite
def broken_bytes(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    """Not JSON at all: truncated, invalid UTF-8, nested past the parser's depth limit, or not an object."""
    raw = orjson.dumps(body)
    op = draw(st.sampled_from(["truncate", "bad_utf8", "deep", "not_object"]))
    if op == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif op == "bad_utf8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82"])) + raw[at:]
    elif op == "deep":
        depth = draw(st.integers(1100, 10_000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + (b"1" if opener != b"[" else b"") + closer * depth
        raw = b'{"model":"gpt-5.4","messages":' + inner + b"}"
    else:
        raw = orjson.dumps(draw(st.sampled_from([[body], [], None, "hi", 1, True])))
    return Mutation(f"broken bytes ({op})", None, None, raw)


MUTATORS = {
    "wrong_top_level_type": wrong_top_level_type,
    "wrong_nested_type": wrong_nested_type,
    "missing_required": missing_required,
    "unknown_tag": unknown_tag,
    "broken_tool_pairing": broken_tool_pairing,
    "huge_string": huge_string_in_a_bounded_field,
    "broken_bytes": broken_bytes,
}


@st.composite
def mutated_requests(draw: st.DrawFn, kinds: tuple[str, ...] | None = None) -> Mutation:
    """A valid request with one field broken (by one of `kinds`, default all), and the `param` that names it."""
    body = draw(chat_requests())
    return draw(MUTATORS[draw(st.sampled_from(kinds or tuple(MUTATORS)))](copy.deepcopy(body)))


def check_mutation(m: Mutation) -> None:
    err = expect_400(m.payload())
    assert err.param == m.param, (m.kind, err.message[:300])
    if m.param is None:
        assert err.code in ("invalid_json", "invalid_type"), err.code


@given(m=mutated_requests(("wrong_top_level_type", "wrong_nested_type")))
@FUZZ
def test_a_wrong_type_is_a_400_naming_the_field(m: Mutation) -> None:
    check_mutation(m)


@given(m=mutated_requests(("missing_required",)))
@FUZZ
def test_a_missing_required_field_is_a_400_naming_it(m: Mutation) -> None:
    check_mutation(m)


@given(m=mutated_requests(("unknown_tag",)))
@FUZZ
def test_an_unknown_role_part_type_or_enum_value_is_a_400_naming_it(m: Mutation) -> None:
    check_mutation(m)


@given(m=mutated_requests(("broken_tool_pairing",)))
@FUZZ
def test_broken_tool_call_pairing_is_a_400_naming_the_message(m: Mutation) -> None:
    check_mutation(m)


@given(m=mutated_requests(("huge_string",)))
@settings(max_examples=max(40, FUZZ.max_examples // 10), deadline=None)  # 300 kB strings: slower per example
def test_a_huge_string_in_a_bounded_field_is_a_400_naming_it(m: Mutation) -> None:
    check_mutation(m)


@given(m=mutated_requests(("broken_bytes",)))
@FUZZ
def test_bytes_that_are_not_a_json_object_are_a_400_without_param(m: Mutation) -> None:
    check_mutation(m)


# -- what the backend would refuse is refused here, naming the client's field ---------------------------------

USER = [{"role": "user", "content": "hi"}]
NOT_OBJECT_SCHEMAS: list[Json] = [{"type": "string"}, {"type": "array", "items": {}}, {"type": "null"}]
NOT_IMAGE_URLS = ["not a url", "ftp://example.com/cat.png", "data:text/plain;base64,aGk=", "/cat.png"]
NOT_JSON_ARGUMENTS = ['{"q": "unterminated', "query=cats", "{'q': 1}"]


def _nested(depth: int) -> dict[str, Json]:
    schema: dict[str, Json] = {}
    for _ in range(depth):
        schema = {"a": schema}
    return schema


@st.composite
def backend_rule(draw: st.DrawFn, body: dict[str, Json]) -> Mutation:
    """Breaks a rule the backend enforces (tool names, object schemas, JSON arguments, image URLs, depth)."""
    targets: list[tuple[str, Any, Any, st.SearchStrategy[Json]]] = []
    for k, tool in enumerate(body.get("tools") or ()):
        fn = tool["function"]
        bad_name = st.builds(lambda n, c: n[:32] + c + n[32:], fn_names, st.sampled_from([".", " ", "/", ":", "é"]))
        targets.append((f"tools[{k}].function.name", fn, "name", bad_name))
        targets.append((f"tools[{k}].function.parameters", fn, "parameters", st.sampled_from(NOT_OBJECT_SCHEMAS)))
        deep = st.integers(101, 240).map(lambda d: {"type": "object", "properties": _nested(d)})
        targets.append((f"tools[{k}].function.parameters", fn, "parameters", deep))
    for i, msg in _message_paths(body):
        for j, call in enumerate(msg.get("tool_calls") or ()):
            path = f"messages[{i}].tool_calls[{j}].function.arguments"
            targets.append((path, call["function"], "arguments", st.sampled_from(NOT_JSON_ARGUMENTS)))
        for j, part in enumerate(msg["content"] if isinstance(msg.get("content"), list) else ()):
            if part["type"] == "image_url":
                path = f"messages[{i}].content[{j}].image_url.url"
                targets.append((path, part["image_url"], "url", st.sampled_from(NOT_IMAGE_URLS)))
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt["type"] == "json_schema":
        deep = st.integers(101, 240).map(_nested)
        targets.append(("response_format.json_schema.schema", fmt["json_schema"], "schema", deep))
    if not targets:  # no tools, calls or images: add a tool the backend would refuse
        body["tools"] = [_tool("web.search")]
        return Mutation("backend rule", body, "tools[0].function.name")
    path, holder, key, values = draw(st.sampled_from(targets))
    holder[key] = draw(values)
    return Mutation("backend rule", body, path)


MUTATORS["backend_rule"] = backend_rule


@given(m=mutated_requests(("backend_rule",)))
@FUZZ
def test_what_the_backend_would_refuse_is_a_400_naming_the_field(m: Mutation) -> None:
    check_mutation(m)


def _tool(name: str = "lookup", parameters: Json = None) -> dict[str, Json]:
    fn: dict[str, Json] = {"name": name}
    if parameters is not None:
        fn["parameters"] = parameters
    return {"type": "function", "function": fn}


def _call_and_result(arguments: str) -> list[dict[str, Json]]:
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": arguments}}
    return [
        *USER,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "x"},
    ]


def _image(url: str) -> list[dict[str, Json]]:
    return [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]


REFUSED: dict[str, tuple[dict[str, Json], str]] = {
    "dotted tool name": ({"tools": [_tool("web.search")]}, "tools[0].function.name"),
    **{
        f"tool schema {schema}": ({"tools": [_tool(parameters=schema)]}, "tools[0].function.parameters")
        for schema in NOT_OBJECT_SCHEMAS
    },
    "non-JSON tool-call arguments": (
        {"messages": _call_and_result('{"q": "unterminated')},
        "messages[1].tool_calls[0].function.arguments",
    ),
    **{
        f"image url {url!r}": ({"messages": _image(url)}, "messages[0].content[0].image_url.url")
        for url in NOT_IMAGE_URLS
    },
}


@pytest.mark.parametrize(("change", "param"), REFUSED.values(), ids=REFUSED.keys())
def test_a_request_the_backend_would_refuse_is_a_local_400(change: dict[str, Json], param: str) -> None:
    assert expect_400(orjson.dumps({"model": "gpt-5.4", "messages": USER, **change})).param == param


@pytest.mark.parametrize("parameters", [{}, {"properties": {"q": {"type": "string"}}, "required": ["q"]}])
def test_a_tool_schema_without_a_type_is_sent_as_an_object_schema(parameters: dict[str, Json]) -> None:
    upstream = translate_ok({"model": "gpt-5.4", "messages": USER, "tools": [_tool(parameters=parameters)]})
    assert validate_responses_body(upstream) is None
    assert upstream["tools"][0]["parameters"] == {"type": "object", "properties": {}, **parameters}


def deep_schema(depth: int) -> bytes:
    """A tool schema nested `depth` objects deep: parses (orjson reads up to 1024 levels), as raw request bytes."""
    nested = b'{"a":' * depth + b"{}" + b"}" * depth
    return (
        b'{"model":"gpt-5.4","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":'
        b'{"name":"f","parameters":{"type":"object","properties":' + nested + b"}}}]}"
    )


def test_a_tool_schema_too_deep_to_forward_is_a_400_not_an_exception() -> None:
    """300 levels parse (orjson reads 1024) but could not be written again (orjson writes 254)."""
    assert expect_400(deep_schema(300)).param == "tools[0].function.parameters"


@pytest.mark.parametrize("role", sorted(PLAIN_TEXT_ROLES))
@pytest.mark.parametrize("broken", ["wrong type", "missing"])
def test_the_text_of_a_plain_text_part_is_named(role: str, broken: str) -> None:
    part: dict[str, Json] = {"type": "text"} if broken == "missing" else {"type": "text", "text": 5}
    msg: dict[str, Json] = {"role": role, "content": [part]}
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    msg = msg if role != "tool" else {**msg, "tool_call_id": "c1"}
    messages = [*USER, {"role": "assistant", "tool_calls": [call]}, msg] if role == "tool" else [*USER, USER[0], msg]
    assert expect_400(orjson.dumps({"model": "gpt-5.4", "messages": messages})).param == "messages[2].content[0].text"


@pytest.mark.parametrize(
    "url", ["data:image/svg+xml;base64,PHN2Zz4=", "data:image/png;base64,not base64!", "https://", "http:///cat.png"]
)
def test_an_image_url_the_backend_refuses_is_a_local_400(url: str) -> None:
    assert expect_400(orjson.dumps({"model": "gpt-5.4", "messages": _image(url)})).param == (
        "messages[0].content[0].image_url.url"
    )
