"""stop_sequences.StopMatcher: chat `stop` emulation over streamed text deltas."""

from __future__ import annotations

import pytest
from codex_gateway.chat.stop_sequences import StopMatcher
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

# (id, stops, deltas, what each feed() returns, what flush() returns, stopped)
STEPS = [
    ("inside-one-delta", ("END",), ["Hello END world"], ["Hello "], "", True),
    ("at-the-start", ("Hi",), ["Hi there"], [""], "", True),
    ("spanning-deltas", ("END",), ["Hello E", "N", "D world"], ["Hello ", "", ""], "", True),
    ("prefix-released-when-not-a-stop", ("END",), ["Hello E", "Nx"], ["Hello ", "ENx"], "", False),
    ("prefix-released-at-flush", ("END",), ["abcEN"], ["abc"], "EN", False),
    ("no-prefix-no-holding", ("END",), ["abc", "def"], ["abc", "def"], "", False),
    ("earliest-wins", ("world", "lo"), ["hello world"], ["hel"], "", True),
    ("earliest-wins-across-deltas", ("xyz", "b"), ["ax", "by"], ["a", "x"], "", True),
    ("repeated-prefix", ("aab",), ["aaa", "ab"], ["a", "a"], "", True),
    ("newline-stop", ("\n\n",), ["a\n", "\nb"], ["a", ""], "", True),
    ("unicode", ("。",), ["日本語。続き"], ["日本語"], "", True),
    ("nothing-after-stop", ("X",), ["aXb", "more", "text"], ["a", "", ""], "", True),
    ("no-stops", (), ["abc", "END"], ["abc", "END"], "", False),
    ("empty-stop-ignored", ("",), ["abc"], ["abc"], "", False),
    ("empty-delta", ("END",), ["", "a", ""], ["", "a", ""], "", False),
]


@pytest.mark.parametrize("stops, deltas, emitted, flushed, stopped", [s[1:] for s in STEPS], ids=[s[0] for s in STEPS])
def test_feed_and_flush(
    stops: tuple[str, ...], deltas: list[str], emitted: list[str], flushed: str, stopped: bool
) -> None:
    matcher = StopMatcher(stops)
    assert [matcher.feed(d) for d in deltas] == emitted
    assert (matcher.flush(), matcher.stopped) == (flushed, stopped)


def test_flush_twice_releases_once() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.feed("xE") == "x"
    assert (matcher.flush(), matcher.flush()) == ("E", "")


def test_held_text_never_exceeds_the_longest_stop() -> None:
    matcher = StopMatcher(("abc", "z"))
    # "ab" may start "abc"; everything before it is released immediately.
    assert matcher.feed("xxxxab") == "xxxx"


# (id, stops, text, output) — the output must not depend on how the text is split into deltas.
SPLITS = [
    pytest.param(("END",), "one END two", "one ", id="single"),
    pytest.param(("END",), "no stop here, EN EN E", "no stop here, EN EN E", id="none"),
    pytest.param(("\n\n", "###"), "a\nb ### c\n\nd", "a\nb ", id="two-stops"),
    pytest.param(("abab",), "ababab", "", id="prefix-overlaps-itself"),
    pytest.param(("abab",), "abaabab!", "aba", id="near-miss"),
    pytest.param(("👋🏽",), "hi 👋 there 👋🏽 bye", "hi 👋 there ", id="unicode"),
    pytest.param(
        ("abcd", "bc"),
        "xabcdy",
        "xa",
        id="overlapping-stops",  # the stop that ENDS first wins; found as a bug, fixed during this session
    ),
]


def run(stops: tuple[str, ...], deltas: list[str]) -> str:
    matcher = StopMatcher(stops)
    return "".join(matcher.feed(d) for d in deltas) + matcher.flush()


@pytest.mark.parametrize("stops, text, output", SPLITS)
def test_output_independent_of_delta_boundaries(stops: tuple[str, ...], text: str, output: str) -> None:
    assert run(stops, [text]) == output
    assert run(stops, list(text)) == output
    for i in range(len(text) + 1):
        assert run(stops, [text[:i], text[i:]]) == output, i


def reference(stops: tuple[str, ...], text: str) -> str:
    """What generation would have returned: text up to the stop sequence that is complete first."""
    for end in range(1, len(text) + 1):
        ending = [s for s in stops if s and text[:end].endswith(s)]
        if ending:
            return text[: end - max(len(s) for s in ending)]
    return text


@given(
    stops=st.lists(st.text(alphabet="ab\n", min_size=1, max_size=4), max_size=4).map(tuple),
    text=st.text(alphabet="ab\nc", max_size=24),
    cuts=st.lists(st.integers(0, 24), max_size=6),
)
@settings(max_examples=300, deadline=None)
def test_matches_reference_for_any_split(stops: tuple[str, ...], text: str, cuts: list[int]) -> None:
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    deltas = [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]
    assert run(stops, deltas) == reference(stops, text)
