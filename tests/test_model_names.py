"""model_names: aliases, `<model>-<effort>` names, and how a choice rewrites the translated Codex body."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from codex_gateway.flow_record import FlowRecord
from codex_gateway.flow_record import Route
from codex_gateway.http.endpoints import prepare_upstream
from codex_gateway.inspect.summary import summary_line
from codex_gateway.model_names import ModelChoice
from codex_gateway.model_names import apply_choice
from codex_gateway.model_names import parse_aliases
from codex_gateway.model_names import resolve

CATALOG = {"gpt-5.4", "gpt-5.4-mini", "gpt-5.3-codex", "odd-model-high"}
ALIASES = {"gpt-4o": "gpt-5.4", "fast": "gpt-5.4-mini-low", "deep": "gpt-5.4-xhigh"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        ("gpt-4o=gpt-5.4", {"gpt-4o": "gpt-5.4"}),
        (" gpt-4o = gpt-5.4 , fast=gpt-5.4-mini-low ,", {"gpt-4o": "gpt-5.4", "fast": "gpt-5.4-mini-low"}),
    ],
)
def test_parse_aliases(text: str, expected: dict[str, str]) -> None:
    assert parse_aliases(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("gpt-4o", "'gpt-4o' is not of the form name=target"),
        ("=gpt-5.4", "not of the form"),
        ("gpt-4o=", "not of the form"),
        ("a b=gpt-5.4", "whitespace"),
        ("x=x", "names itself"),
        ("x=gpt-5.4,x=gpt-5.4-mini", "'x' is given twice"),
    ],
)
def test_parse_aliases_refuses_bad_entries(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match="codex_model_aliases") as raised:
        parse_aliases(text)
    assert complaint in str(raised.value)


@pytest.mark.parametrize(
    ("name", "model", "effort", "alias"),
    [
        ("gpt-5.4", "gpt-5.4", None, None),
        ("gpt-5.4-high", "gpt-5.4", "high", None),
        ("gpt-5.4-mini-low", "gpt-5.4-mini", "low", None),
        ("gpt-5.4-none", "gpt-5.4", "none", None),
        ("gpt-5.4-minimal", "gpt-5.4", "minimal", None),
        ("gpt-5.4-xhigh", "gpt-5.4", "xhigh", None),
        ("gpt-5.4-medium", "gpt-5.4", "medium", None),
        ("gpt-5.4-turbo", "gpt-5.4-turbo", None, None),  # not an effort: the name goes as it is
        ("gpt-5.4-HIGH", "gpt-5.4-HIGH", None, None),  # efforts are lower case, as the API spells them
        ("-high", "-high", None, None),  # no model before the suffix
        ("odd-model-high", "odd-model-high", None, None),  # the catalog has this exact id: it is not split
        ("unknown-model-low", "unknown-model", "low", None),  # split even when the base is unknown: 404 names it
        ("gpt-4o", "gpt-5.4", None, "gpt-4o"),
        ("fast", "gpt-5.4-mini", "low", "fast"),
        ("deep", "gpt-5.4", "xhigh", "deep"),
    ],
)
def test_resolve(name: str, model: str, effort: str | None, alias: str | None) -> None:
    assert resolve(name, ALIASES, CATALOG.__contains__) == ModelChoice(name, model, effort, alias)


def test_an_alias_target_is_not_looked_up_as_an_alias_again() -> None:
    aliases = {"a": "b", "b": "gpt-5.4"}
    assert resolve("a", aliases, CATALOG.__contains__).model == "b"


def test_an_alias_named_like_a_catalog_model_wins() -> None:
    choice = resolve("gpt-5.4", {"gpt-5.4": "gpt-5.4-high"}, CATALOG.__contains__)
    assert (choice.model, choice.effort) == ("gpt-5.4", "high")


@pytest.mark.parametrize(
    ("body", "expected_reasoning", "applied"),
    [
        ({"model": "x", "include": []}, {"effort": "high", "summary": "auto"}, "high"),
        ({"model": "x"}, {"effort": "high", "summary": "auto"}, "high"),
        ({"model": "x", "reasoning": {"summary": "detailed"}}, {"effort": "high", "summary": "detailed"}, "high"),
        ({"model": "x", "reasoning": {"effort": "low"}}, {"effort": "low"}, None),  # the request's effort wins
    ],
)
def test_apply_choice_sets_the_effort_unless_the_request_has_one(
    body: dict[str, Any], expected_reasoning: dict[str, str], applied: str | None
) -> None:
    assert apply_choice(body, ModelChoice("gpt-5.4-high", "gpt-5.4", "high")) == applied
    assert body["model"] == "gpt-5.4"
    assert body["reasoning"] == expected_reasoning
    if applied:
        assert body["include"] == ["reasoning.encrypted_content"]


def test_apply_choice_keeps_other_includes_and_does_not_repeat_encrypted_content() -> None:
    body: dict[str, Any] = {"model": "x", "include": ["file_search_call.results", "reasoning.encrypted_content"]}
    apply_choice(body, ModelChoice("m-low", "m", "low"))
    assert body["include"] == ["file_search_call.results", "reasoning.encrypted_content"]


def test_apply_choice_without_effort_only_renames() -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "include": []}
    assert apply_choice(body, ModelChoice("gpt-4o", "gpt-5.4", None, "gpt-4o")) is None
    assert body == {"model": "gpt-5.4", "include": []}


def choose(name: str) -> ModelChoice:
    return resolve(name, ALIASES, CATALOG.__contains__)


CHAT = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES = {"model": "fast", "input": "hi"}


@pytest.mark.parametrize(("route", "doc"), [(Route.CHAT, CHAT), (Route.RESPONSES, RESPONSES)])
def test_chat_and_responses_send_the_chosen_model_and_effort(route: Route, doc: dict[str, Any]) -> None:
    record = FlowRecord()
    upstream = prepare_upstream(route, orjson.dumps(doc), "application/json", [], record, model_choice=choose)
    body = orjson.loads(upstream.body)
    assert body["model"] == "gpt-5.4-mini"
    assert body["reasoning"]["effort"] == "low"
    assert "reasoning.encrypted_content" in body["include"]
    assert (record.model, record.requested_model, record.name_effort) == ("gpt-5.4-mini", "fast", "low")
    assert record.to_json()["requested_model"] == "fast"  # saved with the flow


@pytest.mark.parametrize(
    ("route", "doc"),
    [
        (Route.CHAT, {**CHAT, "model": "gpt-5.4-high", "reasoning_effort": "minimal"}),
        (Route.RESPONSES, {**RESPONSES, "model": "gpt-5.4-high", "reasoning": {"effort": "minimal"}}),
    ],
)
def test_an_explicit_effort_in_the_request_wins(route: Route, doc: dict[str, Any]) -> None:
    record = FlowRecord()
    upstream = prepare_upstream(route, orjson.dumps(doc), "application/json", [], record, model_choice=choose)
    body = orjson.loads(upstream.body)
    assert (body["model"], body["reasoning"]["effort"]) == ("gpt-5.4", "minimal")
    assert record.name_effort is None and record.requested_model == "gpt-5.4-high"


def test_a_catalog_id_leaves_the_body_and_metadata_as_they_were() -> None:
    raw = orjson.dumps({**CHAT, "model": "gpt-5.4"})
    plain_record, chosen_record = FlowRecord(), FlowRecord()
    plain = prepare_upstream(Route.CHAT, raw, "application/json", [], plain_record)
    chosen = prepare_upstream(Route.CHAT, raw, "application/json", [], chosen_record, model_choice=choose)
    assert chosen.body == plain.body
    assert chosen_record.to_json() == plain_record.to_json()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "gpt-5.4 stream"),
        ({"requested_model": "gpt-4o"}, "gpt-5.4 (asked gpt-4o) stream"),
        ({"requested_model": "gpt-5.4-high", "name_effort": "high"}, "gpt-5.4 effort high (asked gpt-5.4-high) stream"),
    ],
)
def test_the_summary_says_which_model_served(extra: dict[str, Any], expected: str) -> None:
    line = summary_line(FlowRecord(client="curl", model="gpt-5.4", stream=True, **extra))
    assert line == f"curl | {expected}"
