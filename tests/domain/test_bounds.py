"""Text and JSON bounds, and the cap on the indicator values a signal keeps."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.bounds import (
    MAX_SIGNAL_INDICATORS,
    MAX_SIGNAL_INDICATORS_BYTES,
    cap_indicators,
    json_problem,
    text_problem,
    unicode_problem,
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("plain", None),
        ("émoji 😀 and 中文", None),
        (json.loads('"\\ud83d\\ude00"'), None),  # a surrogate pair is one character
        ("a\x00b", "must not contain the NUL character (U+0000)"),
        (json.loads('"a\\ud800"'), "holds a lone surrogate U+D800, which is not Unicode text"),
        (json.loads('"\\udfff"'), "holds a lone surrogate U+DFFF, which is not Unicode text"),
    ],
)
def test_text_problem(text: str, problem: str | None) -> None:
    assert text_problem(text) == problem


def test_unicode_problem_allows_nul() -> None:
    assert unicode_problem("a\x00b") is None
    assert unicode_problem("\ud800") is not None


def test_json_problem_depth_is_counted_iteratively() -> None:
    assert json_problem([[1]], max_depth=2) is None
    assert json_problem([[[1]]], max_depth=2) == "must not nest deeper than 2 levels"
    assert json_problem({"a": {"b": {}}}, max_depth=2) == "must not nest deeper than 2 levels"
    deep: list[object] = []
    for _ in range(100_000):  # far beyond the recursion limit
        deep = [deep]
    assert json_problem(deep, max_depth=64) == "must not nest deeper than 64 levels"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"rsi": 14, "ok": [1.5, True, None, "x"]}, None),
        ({"x": float("nan")}, "must hold finite numbers only, not nan"),
        ([float("inf")], "must hold finite numbers only, not inf"),
        ({"a\x00": 1}, "a key must not contain the NUL character (U+0000)"),
        (["\ud800"], "a string holds a lone surrogate U+D800, which is not Unicode text"),
        ({1: "x"}, "has a key that is not a string: 1"),
        ([object], "holds a type, which is not JSON"),
    ],
)
def test_json_problem(value: object, problem: str | None) -> None:
    assert json_problem(value, max_depth=8) == problem


def test_json_problem_size_is_counted_in_utf8_bytes() -> None:
    assert json_problem(["é" * 3], max_depth=1, max_bytes=10) is None  # ["ééé"] is 10 bytes
    assert json_problem(["é" * 4], max_depth=1, max_bytes=10) == (
        "must be at most 10 bytes as JSON, got 12"
    )


def test_json_problem_for_json_not_stored_checks_unicode_and_depth_only() -> None:
    assert json_problem(["a\x00", float("nan"), 2**70], max_depth=1, storable=False) is None
    assert json_problem(["\ud800"], max_depth=1, storable=False) is not None
    assert json_problem([[1]], max_depth=1, storable=False) is not None


def test_json_problem_integers_must_fit_64_bits() -> None:
    assert json_problem([2**63 - 1, -(2**63)], max_depth=1) is None
    assert json_problem([2**63], max_depth=1) == (
        "must hold integers within 64 bits, not one of 19 digits"
    )
    assert json_problem({"big": -(10**400)}, max_depth=1) == (
        "must hold integers within 64 bits, not one of 401 digits"
    )


def test_cap_indicators_keeps_the_first_entries_in_reading_order() -> None:
    read = {f"1h.sma({period})": float(period) for period in range(2, 200)}
    kept = cap_indicators(read)
    assert list(kept) == list(read)[:MAX_SIGNAL_INDICATORS]
    assert cap_indicators({"b": 1.0, "a": None}) == {"b": 1.0, "a": None}


def test_cap_indicators_bounds_the_stored_bytes() -> None:
    read = {
        "small": 1.0,
        "huge": {f"output{n}": 1.0 for n in range(1000)},
        "nan": float("nan"),
        "later": {"macd": 0.1, "signal": 0.2},
    }
    kept = cap_indicators(read)
    assert kept == {"small": 1.0, "later": {"macd": 0.1, "signal": 0.2}}

    many = {f"{'x' * 90}{n:02d}": 123456.789 for n in range(100)}  # ,"x..x00":123456.789
    kept = cap_indicators(many, max_entries=100)
    encoded = json.dumps(kept, separators=(",", ":")).encode()
    assert len(encoded) <= MAX_SIGNAL_INDICATORS_BYTES < len(encoded) + 106  # as many as fit
    assert list(kept) == list(many)[: len(kept)]


def test_cap_indicators_size_is_exact_at_the_boundary() -> None:
    assert cap_indicators({"a": 1}, max_bytes=7) == {"a": 1}  # {"a":1}
    assert cap_indicators({"a": 1}, max_bytes=6) == {}
    assert cap_indicators({"a": 1, "b": 2}, max_bytes=13) == {"a": 1, "b": 2}  # {"a":1,"b":2}
    assert cap_indicators({"a": 1, "b": 2}, max_bytes=12) == {"a": 1}


_readings = st.dictionaries(
    st.text(max_size=12),
    st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.dictionaries(st.text(max_size=6), st.none() | st.floats(), max_size=3),
    max_size=8,
)


@given(_readings, st.integers(min_value=0, max_value=10), st.integers(min_value=2, max_value=300))
def test_cap_indicators_keeps_each_entry_that_fits_after_those_before_it(
    read: dict[str, object], max_entries: int, max_bytes: int
) -> None:
    """Whether the whole mapping fits at once or not, the entries kept are those a walk in
    reading order keeps: each storable one that still fits, until `max_entries` are kept."""
    kept: dict[str, object] = {}
    for name, value in read.items():
        if len(kept) == max_entries:
            break
        if json_problem({name: value}, max_depth=3) is None:
            tried = {**kept, name: value}
            if len(json.dumps(tried, ensure_ascii=False, separators=(",", ":")).encode()) <= (
                max_bytes
            ):
                kept = tried
    assert cap_indicators(read, max_entries, max_bytes) == kept
    assert list(cap_indicators(read, max_entries, max_bytes)) == list(kept)
