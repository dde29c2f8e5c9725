"""Bounds on untrusted text and JSON: what every back end can store, and how much of it.

Text from a client must be storable on SQLite and PostgreSQL alike: PostgreSQL refuses the
NUL character in text and JSON columns, and neither database can encode a lone UTF-16
surrogate ("\\ud800" is a valid JSON escape, but no UTF-8 string holds it). Checked here, a
bad value is a clear error naming its field instead of a database error after the fact.

JSON from a client must be JSON a database accepts (finite numbers: PostgreSQL has no NaN in
`jsonb`; integers within 64 bits: Tortoise encodes JSON columns with orjson), nested no deeper
than the code that walks it can go, and small. The values a filter
read, stored with each of its signals, come from untrusted filter code: `cap_indicators`
keeps a bounded number of them, in the order the filter read them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

MAX_SIGNAL_INDICATORS = 32
MAX_SIGNAL_INDICATORS_BYTES = 4096
INT64 = range(-(2**63), 2**63)

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def unicode_problem(text: str) -> str | None:
    """Why `text` is not Unicode that UTF-8 can hold, or None. A surrogate pair from JSON is
    decoded into one character, so any surrogate left in a Python string is a lone one."""
    found = _LONE_SURROGATE.search(text)
    if found is not None:
        return f"holds a lone surrogate U+{ord(found.group()):04X}, which is not Unicode text"
    return None


def text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as text, or None."""
    if "\x00" in text:
        return "must not contain the NUL character (U+0000)"
    return unicode_problem(text)


def _number_problem(number: int | float) -> str | None:
    if isinstance(number, float) and not math.isfinite(number):
        return f"must hold finite numbers only, not {number}"
    if isinstance(number, int) and not isinstance(number, bool) and number not in INT64:
        return f"must hold integers within 64 bits, not one of {len(str(abs(number)))} digits"
    return None


def json_problem(
    value: object, *, max_depth: int, max_bytes: int | None = None, storable: bool = True
) -> str | None:
    """Why `value` (decoded JSON) cannot be taken, or None: nesting deeper than `max_depth`
    (a scalar is depth 0, `[1]` depth 1), a key or string that is not Unicode, or more than
    `max_bytes` once encoded. With `storable` (to be stored, not only parsed) also a key or
    string that `text_problem` refuses and a number no database column takes. Iterative, so a
    value nested too deep for recursion is refused rather than crashing the walk."""
    check_text = text_problem if storable else unicode_problem
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= max_depth:
                return f"must not nest deeper than {max_depth} levels"
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(item, dict):
                    if not isinstance(key, str):
                        return f"has a key that is not a string: {key!r}"
                    if (problem := check_text(key)) is not None:
                        return f"a key {problem}"
                pending.append((child, depth + 1))
        elif isinstance(item, str):
            if (problem := check_text(item)) is not None:
                return f"a string {problem}"
        elif isinstance(item, int | float):
            if storable and (problem := _number_problem(item)) is not None:
                return problem
        elif item is not None:
            return f"holds a {type(item).__name__}, which is not JSON"
    if max_bytes is not None:
        size = _json_size(value)
        if size > max_bytes:
            return f"must be at most {max_bytes:,} bytes as JSON, got {size:,}"
    return None


def _json_size(value: object) -> int:
    """The bytes of `value` as compact UTF-8 JSON."""
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def cap_indicators(
    indicators: Mapping[str, object],
    max_entries: int = MAX_SIGNAL_INDICATORS,
    max_bytes: int = MAX_SIGNAL_INDICATORS_BYTES,
) -> dict[str, object]:
    """The first `max_entries` indicator values a filter read, in reading order, that fit in
    `max_bytes` of JSON together; an entry that does not fit is left out, later smaller ones
    may still fit. Entries that are not storable JSON are left out too.

    Mostly all of them fit: then one check and one encoding of the whole mapping say so,
    with the result of the entry by entry walk below (the sizes add up to the whole's)."""
    if (
        len(indicators) <= max_entries
        and json_problem(indicators, max_depth=3) is None
        and _json_size(indicators) <= max_bytes
    ):
        return dict(indicators)
    kept: dict[str, object] = {}
    size = 2  # the braces
    for name, value in indicators.items():
        if len(kept) >= max_entries:
            break
        if json_problem({name: value}, max_depth=3) is not None:
            continue
        entry = _json_size({name: value})
        # {"a":1} is one entry of 7 bytes; each further entry costs its bytes less the braces,
        # plus a comma.
        cost = entry - 2 + (1 if kept else 0)
        if size + cost > max_bytes:
            continue
        kept[name] = value
        size += cost
    return kept
