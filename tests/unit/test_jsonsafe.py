"""Deeply nested JSON is refused before the C parser can overflow the stack."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from aggregation.errors import EncodingError
from aggregation.jsonsafe import loads, nesting_depth


def test_py_ecc_really_raises_the_recursion_limit() -> None:
    # Why the guard exists: with this limit, json.loads of deep input segfaults.
    import py_ecc  # noqa: F401

    assert sys.getrecursionlimit() >= 100_000


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_absurd_nesting_is_an_encoding_error(opener: str) -> None:
    for body in (opener * 300_000, (opener * 300_000).encode()):
        with pytest.raises(EncodingError, match="nested deeper"):
            loads(body)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[[[[{{{{" * 1000, "b": ['\\"[', 1]})
    assert nesting_depth(text) == 2
    assert loads(text)["b"][1] == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@given(json_values)
def test_matches_json_for_ordinary_documents(value: object) -> None:
    text = json.dumps(value)
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


def _reference_scan(text: str) -> tuple[int, bool]:
    """A plain character-by-character scan: (depth, whether every string was closed)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest, not in_string


@given(st.text(alphabet='[]{}"\\ab,:', max_size=60))
def test_depth_agrees_with_a_plain_scan(text: str) -> None:
    depth, closed = _reference_scan(text)
    assume(closed)  # an unterminated string hides nothing from nesting_depth (see below)
    assert nesting_depth(text) == depth
    assert nesting_depth(text.encode()) == depth


def test_unterminated_string_does_not_hide_brackets() -> None:
    assert nesting_depth('"never closed [[[') == 3
    assert nesting_depth("]]") == 0
