"""What makes a trader's settings valid, one rule per field of the trader's vocabulary.

Rules run on the changes a request asks for, before anything is written, so a failed
create or update writes nothing and tells the caller exactly which field is wrong. Fields
are named as in `TraderSpec` and the database (`stop_loss`); the API maps its GraphQL input
paths onto these names and back, so its errors still name the GraphQL field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from app.domain.bounds import json_problem, text_problem
from app.domain.enums import TradingMode
from app.domain.filter_validation import validate_filter_code
from app.domain.intervals import INTERVALS

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2_000
MAX_INSTRUCTIONS_LENGTH = 10_000
MAX_FILTER_DESCRIPTIONS = 20
MAX_FILTER_DESCRIPTION_LENGTH = 500
MAX_INDICATORS_CONFIG_BYTES = 16_384
MAX_INDICATORS_CONFIG_DEPTH = 8
MAX_SYMBOLS = 1000
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$")
PERCENT_PLACES = 4
PERCENT_QUANTUM = Decimal(1).scaleb(-PERCENT_PLACES)

Check = Callable[[object], str | None]


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def _check_name(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must not be empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"must be at most {MAX_NAME_LENGTH} characters"
    return text_problem(value)


def _text_check(max_length: int) -> Check:
    """Free text: a string of at most `max_length` characters that every database can store."""

    def check(value: object) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > max_length:
            return f"must be at most {max_length:,} characters, got {len(value):,}"
        return text_problem(value)

    return check


_check_filter_description_line = _text_check(MAX_FILTER_DESCRIPTION_LENGTH)


def _check_filter_description(value: object) -> str | None:
    if not isinstance(value, list | tuple):
        return "must be a list of strings"
    if len(value) > MAX_FILTER_DESCRIPTIONS:
        return f"must hold at most {MAX_FILTER_DESCRIPTIONS} lines, got {len(value)}"
    for index, line in enumerate(value):
        if (problem := _check_filter_description_line(line)) is not None:
            return f"line {index + 1} {problem}"
    return None


def _check_filter_indicators(value: object) -> str | None:
    return json_problem(
        value, max_depth=MAX_INDICATORS_CONFIG_DEPTH, max_bytes=MAX_INDICATORS_CONFIG_BYTES
    )


def _check_interval(value: object) -> str | None:
    if value not in INTERVALS:
        return f"unknown interval {value!r}; expected one of {', '.join(INTERVALS)}"
    return None


def _check_mode(value: object) -> str | None:
    if value not in {mode.value for mode in TradingMode}:
        return f"unknown mode {value!r}; expected demo or live"
    return None


def check_symbol(value: object) -> str | None:
    """One market symbol, as a trader lists it or a query filters by it."""
    if not isinstance(value, str) or not SYMBOL_PATTERN.match(value):
        return f"invalid symbol {value!r}; expected BASE/QUOTE such as BTC/USDT"
    return None


def _check_symbols(value: object) -> str | None:
    if not isinstance(value, list | tuple):
        return "must be a list of symbols such as BTC/USDT"
    if len(value) > MAX_SYMBOLS:
        return f"must hold at most {MAX_SYMBOLS} symbols"
    if bad := next((problem for s in value if (problem := check_symbol(s))), None):
        return bad
    if len(set(value)) != len(value):
        return "must not repeat a symbol"
    return None


@dataclass(frozen=True, slots=True)
class Range:
    """An open lower bound and an upper bound, inclusive or not: `(0, 100)`, `(0, 100]`."""

    low: Decimal
    high: Decimal
    high_inclusive: bool

    def __str__(self) -> str:
        return f"({self.low}, {self.high}{']' if self.high_inclusive else ')'}"


# The numeric risk settings and the values they may take: the rules below check them, and the
# generation prompt states them, from this one table.
RISK_RANGES: dict[str, Range] = {
    "stop_loss": Range(Decimal(0), Decimal(100), high_inclusive=False),
    "take_profit": Range(Decimal(0), Decimal(10000), high_inclusive=True),
    "position_size_percent": Range(Decimal(0), Decimal(100), high_inclusive=True),
    "max_drawdown": Range(Decimal(0), Decimal(100), high_inclusive=True),
    "min_risk_reward": Range(Decimal(0), Decimal(100), high_inclusive=True),
    "trailing_stop": Range(Decimal(0), Decimal(100), high_inclusive=False),
}


def _range_check(allowed: Range) -> Check:
    """The range holds for the value as stored (`PERCENT_QUANTUM`), not only as sent: 0.00001
    would be stored as 0 and 99.99999 as 100."""
    low, high, high_inclusive = allowed.low, allowed.high, allowed.high_inclusive

    def within(number: Decimal) -> bool:
        return number > low and (number <= high if high_inclusive else number < high)

    def check(value: object) -> str | None:
        if value is None:
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return f"must be a number, got {value!r}"
        if number.is_nan():
            return f"must be a number, got {number}"
        if not within(number):
            return f"must be in {allowed}, got {number}"
        stored = number.quantize(PERCENT_QUANTUM)
        if not within(stored):
            return (
                f"must be in {allowed} once rounded to {PERCENT_PLACES} decimal "
                f"places, got {number}, which rounds to {stored}"
            )
        return None

    return check


def _check_filter_code(value: object) -> str | None:
    """Empty code is allowed (a trader still being written screens nothing); any other code
    must pass the filter language's whitelist before it is saved."""
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return None
    if (problem := text_problem(value)) is not None:
        return problem
    errors = validate_filter_code(value)
    return "; ".join(str(error) for error in errors) if errors else None


def _check_enabled(value: object) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _check_max_positions(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, int) or value < 1:
        return f"must be at least 1, got {value}"
    return None


def _count_check(low: int, high: int) -> Check:
    def check(value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            return f"must be a whole number in [{low}, {high}], got {value}"
        return None

    return check


MAX_CANDLES = 10_000


# Every field a user may set, with its rule: the trader's writable vocabulary.
RULES: dict[str, Check] = {
    "name": _check_name,
    "description": _text_check(MAX_DESCRIPTION_LENGTH),
    "enabled": _check_enabled,
    "filter_description": _check_filter_description,
    "filter_indicators": _check_filter_indicators,
    "strategy_instructions": _text_check(MAX_INSTRUCTIONS_LENGTH),
    "interval": _check_interval,
    "mode": _check_mode,
    "symbols": _check_symbols,
    "filter_code": _check_filter_code,
    "exit_filter_code": _check_filter_code,
    "max_positions": _check_max_positions,
    "cooldown_candles": _count_check(1, MAX_CANDLES),
    "stop_loss_guard": _count_check(1, 100),
    "stop_loss_guard_candles": _count_check(1, MAX_CANDLES),
    "review_candles": _count_check(1, MAX_CANDLES),
    **{field: _range_check(allowed) for field, allowed in RISK_RANGES.items()},
}


def validate_trader_fields(changes: Mapping[str, object]) -> list[FieldError]:
    """Errors for the given `{field: value}` changes; fields not given are not checked, and a
    field that is not the trader's to set is an error of its own."""
    errors = []
    for field, value in changes.items():
        rule = RULES.get(field)
        if rule is None:
            errors.append(FieldError(field, "is not a field of a trader"))
        elif (message := rule(value)) is not None:
            errors.append(FieldError(field, message))
    return errors


# Stored with the columns' 4 decimal places.
DECIMAL_FIELDS = frozenset(RISK_RANGES)


def normalize_trader_fields(changes: Mapping[str, object]) -> dict[str, object]:
    """Valid changes in stored form: names trimmed, risk numbers at the column's 4 places."""
    normalized = dict(changes)
    if isinstance(name := normalized.get("name"), str):
        normalized["name"] = name.strip()
    for field in DECIMAL_FIELDS & normalized.keys():
        if (value := normalized[field]) is not None:
            normalized[field] = Decimal(str(value)).quantize(PERCENT_QUANTUM)
    return normalized
