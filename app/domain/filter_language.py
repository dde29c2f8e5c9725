"""The filter language as a model reads it, written from the registries that define it.

A generated trader is only as good as the model's knowledge of what a filter may use, and a
prompt kept by hand drifts from the code the day an indicator is added. So the reference
the generation prompt teaches is built here from the same registries the validator, the
sandbox and `docs/filters.md` follow: the indicator registry (names, parameters with their
defaults and ranges, outputs), the helpers, builtins and attributes the whitelist allows,
the inputs and the trader settings a filter reads. A test checks that the documentation
lists the same names.
"""

from __future__ import annotations

from app.domain.filter_validation import (
    ALLOWED_ATTRIBUTES,
    CANDLE_FIELDS,
    FORBIDDEN_NAMES,
    INPUT_NAMES,
    PLAIN_HELPER_NAMES,
    SAFE_BUILTIN_NAMES,
    TICKER_FIELDS,
)
from app.domain.indicators import INDICATORS, IndicatorSpec
from app.domain.intervals import INTERVALS
from app.domain.trader_spec import RISK_FIELDS

FILTER_PARAM_NAMES: tuple[str, ...] = ("interval", *RISK_FIELDS)

INDICATOR_OUTPUTS: frozenset[str] = frozenset(
    output for spec in INDICATORS.values() for output in spec.outputs
)
# Attributes of the filter's own values and of arrays: the whitelist minus the data fields.
METHOD_NAMES: frozenset[str] = (
    ALLOWED_ATTRIBUTES - INDICATOR_OUTPUTS - frozenset(CANDLE_FIELDS) - frozenset(TICKER_FIELDS)
)


def _indicator_line(spec: IndicatorSpec) -> str:
    params = ", ".join(f"{p.name}={p.default} (in [{p.minimum}, {p.maximum}])" for p in spec.params)
    call = f"{spec.name}(candles{', ' + params if params else ''})"
    if spec.outputs == ("value",):
        returns = "an array aligned with the candles" if spec.per_candle else "an array"
    else:
        returns = "an object with " + ", ".join(f".{name}" for name in spec.outputs)
    return f"- `{call}`: {spec.description}; returns {returns}"


def filter_language_reference() -> str:
    """The reference section of the generation prompt, in Markdown."""
    params = ", ".join(f"params['{name}']" for name in FILTER_PARAM_NAMES)
    lines = [
        "A filter is the BODY of a Python function (no `def` line). It runs once per symbol "
        "at each candle close and must `return` whether the symbol matches: a truth value, "
        "or `(matched, side)` with side 'long' or 'short', or `(matched, side, score)`.",
        "",
        "Inputs (read-only):",
        f"- `candles`: the symbol's candles at the trader's interval, with numpy arrays "
        f"{', '.join(CANDLE_FIELDS)} (oldest first; `candles.close[-1]` is the last close).",
        "- `timeframes['4h']`: candles at another interval; the key must be a literal, one of "
        + ", ".join(INTERVALS)
        + ".",
        f"- `ticker`: {', '.join('ticker.' + name for name in TICKER_FIELDS)} (24 h figures; "
        "NaN when unknown).",
        f"- `params`: the trader's settings, {params} (numbers or None).",
        "- `symbol`: the symbol being screened, e.g. 'BTC/USDT'.",
        f"(The inputs are exactly: {', '.join(INPUT_NAMES)}.)",
        "",
        "Indicator helpers (candles first, then parameters by position or by name):",
        *(_indicator_line(spec) for spec in INDICATORS.values()),
        "",
        "Other helpers: "
        + ", ".join(f"`{name}`" for name in sorted(PLAIN_HELPER_NAMES))
        + " (`crossed_above(a, b)` / `crossed_below(a, b)`: series a crossed series or number "
        "b on the last candle).",
        "Builtins: " + ", ".join(sorted(SAFE_BUILTIN_NAMES)) + ".",
        "Methods and properties: " + ", ".join(sorted(METHOD_NAMES)) + ".",
        "",
        "Not allowed (the filter is refused): import, def, class, lambda, while, try, with, "
        "global, nonlocal, del, raise, assert, yield, await, match; names or attributes "
        "starting with '_'; any attribute not listed above; assigning to attributes or items; "
        "the keyword arguments out= and where=; **kwargs; the names "
        + ", ".join(sorted(FORBIDDEN_NAMES))
        + ". Return one truth value, never a whole array.",
    ]
    return "\n".join(lines)
