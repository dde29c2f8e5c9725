"""The generation prompt and docs/filters.md teach the same filter language: the registries'.

The prompt section is written from the registries, so it cannot drift from the code; this
checks that the documentation a person reads lists exactly the same names."""

from __future__ import annotations

import re
from pathlib import Path

from app.domain.filter_language import (
    FILTER_PARAM_NAMES,
    INDICATOR_OUTPUTS,
    METHOD_NAMES,
    filter_language_reference,
)
from app.domain.filter_validation import INPUT_NAMES, PLAIN_HELPER_NAMES, SAFE_BUILTIN_NAMES
from app.domain.indicators import INDICATORS
from app.services.generation_prompt import generation_system

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "filters.md").read_text()


def _section(title: str) -> str:
    return DOCS.split(title, 1)[1].split("\n#", 1)[0]


def _helper_table() -> set[str]:
    table = _section("### Indicator helpers")
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`(\w+)`", line.split("|")[1]))
    return names


def _paragraph(start: str) -> str:
    return DOCS.split(start, 1)[1].split("\n\n", 1)[0]


def test_the_docs_list_every_indicator_and_no_other() -> None:
    assert _helper_table() == set(INDICATORS)


def test_the_docs_list_the_other_helpers_builtins_and_methods() -> None:
    assert set(re.findall(r"`(\w+)", _paragraph("Other helpers:"))) - {"a", "b"} == set(
        PLAIN_HELPER_NAMES
    )
    builtins = _section("### Builtins")
    listed = set(re.findall(r"`([a-z\s]+)`", builtins.split("Array methods")[0])[0].split())
    assert listed == SAFE_BUILTIN_NAMES
    methods = set(re.findall(r"`([a-z_\s]+)`", builtins.split("Array methods", 1)[1]))
    documented = {word for group in methods for word in group.split()}
    assert documented - INDICATOR_OUTPUTS == METHOD_NAMES


def test_the_docs_list_the_inputs_and_params() -> None:
    inputs = _section("## What a filter can read")
    for name in INPUT_NAMES:
        assert f"`{name}" in inputs
    assert set(re.findall(r"params\['(\w+)'\]", inputs)) == set(FILTER_PARAM_NAMES)


def test_the_prompt_teaches_every_name_the_docs_list() -> None:
    prompt = generation_system()
    assert filter_language_reference() in prompt
    for name in [*INDICATORS, *PLAIN_HELPER_NAMES, *SAFE_BUILTIN_NAMES, *METHOD_NAMES]:
        assert re.search(rf"\b{name}\b", prompt), name
    for name in FILTER_PARAM_NAMES:
        assert f"params['{name}']" in prompt
    for spec in INDICATORS.values():
        for param in spec.params:
            assert f"{param.name}={param.default}" in prompt
        for output in spec.outputs:
            if output != "value":
                assert f".{output}" in prompt
