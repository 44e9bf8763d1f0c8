"""tool_calls.ToolCallSerializer: parallel, interleaved upstream calls → serialized chat tool-call deltas."""

from __future__ import annotations

from typing import Any

import pytest
from codex_gateway.chat.tool_calls import ToolCallSerializer


def fold(deltas: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """What the OpenAI SDK's accumulator would build, asserting the serialization rules on the way."""
    calls: list[list[str]] = []
    open_index = -1
    for d in deltas:
        if "id" in d:
            assert d["index"] == open_index + 1 == len(calls), "dense indexes, one call after the other"
            assert d["type"] == "function"
            open_index = d["index"]
            calls.append([d["id"], d["function"]["name"], d["function"]["arguments"]])
        else:
            assert d["index"] == open_index, "fragments only for the open call"
            assert set(d) == {"index", "function"} and set(d["function"]) == {"arguments"}
            calls[-1][2] += d["function"]["arguments"]
    return [(i, n, a) for i, n, a in calls]


def run(steps: list[tuple[str, Any]]) -> list[tuple[str, str, str]]:
    s = ToolCallSerializer()
    out: list[dict[str, Any]] = []
    for kind, arg in steps:
        if kind == "added":
            out += s.added(arg[0], {"call_id": arg[1], "name": arg[2], "arguments": ""})
        elif kind == "delta":
            out += s.arguments_delta(arg[0], arg[1])
        elif kind == "args_done":
            s.arguments_done(arg[0], arg[1])
        elif kind == "done":
            out += s.item_done(arg[0], arg[1])
    out += s.finish()
    return fold(out)


CASES = {
    "one call": [
        ("added", ("fc_1", "c1", "ls")),
        ("delta", ("fc_1", '{"a":')),
        ("delta", ("fc_1", "1}")),
        ("done", ("fc_1", '{"a":1}')),
    ],
    "interleaved": [
        ("added", ("fc_1", "c1", "a")),
        ("added", ("fc_2", "c2", "b")),
        ("delta", ("fc_1", "{")),
        ("delta", ("fc_2", "[")),
        ("delta", ("fc_1", "}")),
        ("delta", ("fc_2", "]")),
        ("done", ("fc_1", "{}")),
        ("done", ("fc_2", "[]")),
    ],
    "second finishes first": [
        ("added", ("fc_1", "c1", "a")),
        ("added", ("fc_2", "c2", "b")),
        ("done", ("fc_2", "[]")),
        ("delta", ("fc_1", "{}")),
        ("done", ("fc_1", "{}")),
    ],
    "arguments only in done": [("added", ("fc_1", "c1", "a")), ("done", ("fc_1", '{"x":2}'))],
    "arguments only in arguments.done": [
        ("added", ("fc_1", "c1", "a")),
        ("args_done", ("fc_1", "{}")),
        ("done", ("fc_1", None)),
    ],
    "never finished": [("added", ("fc_1", "c1", "a")), ("added", ("fc_2", "c2", "b")), ("delta", ("fc_2", "{}"))],
}
EXPECTED = {
    "one call": [("c1", "ls", '{"a":1}')],
    "interleaved": [("c1", "a", "{}"), ("c2", "b", "[]")],
    "second finishes first": [("c1", "a", "{}"), ("c2", "b", "[]")],
    "arguments only in done": [("c1", "a", '{"x":2}')],
    "arguments only in arguments.done": [("c1", "a", "{}")],
    "never finished": [("c1", "a", ""), ("c2", "b", "{}")],
}


@pytest.mark.parametrize("name", CASES)
def test_serialization(name: str) -> None:
    assert run(CASES[name]) == EXPECTED[name]


def test_names_in_index_order() -> None:
    s = ToolCallSerializer()
    s.added("fc_1", {"call_id": "c1", "name": "first"})
    s.added("fc_2", {"call_id": "c2", "name": "second"})
    s.item_done("fc_1", "{}")
    assert s.names == ["first", "second"] and bool(s)


def test_megabyte_arguments_arrive_whole() -> None:
    """1 MiB of arguments in 16,384 fragments (edge case 17): every fragment passes once, nothing is re-sent."""
    s = ToolCallSerializer()
    out = s.added("fc_1", {"call_id": "c1", "name": "write"})
    piece = "x" * 64
    for _ in range(16_384):
        out += s.arguments_delta("fc_1", piece)
    out += s.item_done("fc_1", piece * 16_384)
    assert fold(out) == [("c1", "write", piece * 16_384)]
