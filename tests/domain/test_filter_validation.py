"""The validator agrees with the runtime: what Python would refuse or fail on, it refuses."""

from __future__ import annotations

import pytest

from app.domain.filter_validation import FilterValidationError, parse_filter

REFUSED_BY_THE_COMPILER = {
    "break outside a loop": ("x = 1\nbreak\nreturn True", (2, 1), "'break' outside loop"),
    "continue outside a loop": ("continue\nreturn True", (1, 1), "'continue' not properly"),
    "continue in a for-else": (
        "for i in range(3):\n    pass\nelse:\n    continue\nreturn True",
        (4, 5),
        "'continue' not properly",
    ),
    "starred target alone": ("*a = [1]\nreturn True", (1, 1), "starred assignment target"),
    "two starred targets": ("a, *b, *c = [1, 2]\nreturn True", (1, 1), "multiple starred"),
    "walrus rebinding a loop variable": (
        "x = [i := 0 for i in range(3)]\nreturn True",
        (1, 6),
        "cannot rebind comprehension iteration variable",
    ),
    "repeated keyword": ("return max(key=1, key=2)", (1, 19), "keyword argument repeated"),
}

UNKNOWN_OUTSIDE_THE_COMPREHENSION = {
    "list comprehension": ("x = [i for i in range(3)]\nreturn i > 0", (2, 8), "i"),
    "generator": ("s = sum(v for v in candles.close)\nreturn v > s", (2, 8), "v"),
    "dict comprehension": ("d = {k: 1 for k in 'ab'}\nreturn k == 'a'", (2, 8), "k"),
    "its own first iterable": ("return [x for x in x]", (1, 20), "x"),
    "a sibling comprehension": (
        "a = [j for j in range(2)]\nb = [j + k for k in a]\nreturn b",
        (2, 6),
        "j",
    ),
}

ACCEPTED = {
    "walrus inside a comprehension binds outside": "x = [y := c for c in range(3)]\nreturn y",
    "nested sees the outer": "return [[a + b for b in range(a)] for a in range(3)]",
    "a local of the same name as the loop variable": "x = [1]\nreturn [x for x in x]",
    "condition reads the loop variable": "return [v for v in candles.close if v > 0]",
}


@pytest.mark.parametrize("name", sorted(REFUSED_BY_THE_COMPILER))
def test_what_the_compiler_refuses_is_refused_at_validation(name: str) -> None:
    code, place, message = REFUSED_BY_THE_COMPILER[name]

    with pytest.raises(FilterValidationError) as raised:
        parse_filter(code)

    [error] = raised.value.errors
    assert (error.line, error.column) == place
    assert error.message.startswith("syntax error: ") and message in error.message


@pytest.mark.parametrize("name", sorted(UNKNOWN_OUTSIDE_THE_COMPREHENSION))
def test_a_name_bound_only_in_a_comprehension_is_unknown_outside_it(name: str) -> None:
    code, place, variable = UNKNOWN_OUTSIDE_THE_COMPREHENSION[name]

    with pytest.raises(FilterValidationError) as raised:
        parse_filter(code)

    [error] = raised.value.errors
    assert (error.line, error.column) == place
    assert error.message == f"unknown name '{variable}'"


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_names_python_resolves_are_accepted(name: str) -> None:
    parse_filter(ACCEPTED[name])
