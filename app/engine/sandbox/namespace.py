"""The world a filter runs in: its builtins, helpers, candles, and how its result is read.

Everything a filter can name is here, built from the same registries the validator checks
against (`SAFE_BUILTIN_NAMES`, `PLAIN_HELPER_NAMES`, `INDICATORS`, `ALLOWED_ATTRIBUTES`),
so the documented language and the runtime cannot drift apart unnoticed.

numpy imports a few of its Python helpers on first use (`ndarray.mean` and the other
reductions, `str()` of an array) through the `__import__` of the calling frame's builtins,
which a filter's builtins deliberately lack. `warm_up` calls each allowed array method and
the array printers once with the real builtins, before any filter runs, so numpy has them
cached; `__import__` stays out of the filter's reach.

What a filter sees of a failure is `describe(exc)`: the line and column in its own code and
the error, with memory addresses, module paths and the sandbox's class names replaced by
the names the documentation uses (`candles`, `indicator outputs`, `ticker`).
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from app.domain.enums import Side
from app.domain.filter_validation import (
    ALLOWED_ATTRIBUTES,
    CANDLE_FIELDS,
    FUNCTION_NAME,
    SAFE_BUILTIN_NAMES,
    filter_module,
    parse_filter,
)
from app.domain.indicators import INDICATORS, IndicatorSpec
from app.engine.sandbox.jobs import TickerValues
from app.engine.sandbox.messages import MAX_FAILURE, MAX_READS, MEMORY_EXCEEDED

TIME_EXCEEDED = "time limit exceeded"
MAX_BINDS = 256
SAFE_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}


class FilterTimeout(Exception):
    """Raised into a filter when its evaluation runs out of time."""


class FilterCandles:
    """One series as a filter reads it: `candles.close` and the other columns, read-only."""

    __slots__ = CANDLE_FIELDS

    def __init__(self, time_: np.ndarray, values: np.ndarray) -> None:
        self.time = time_
        self.open, self.high, self.low, self.close, self.volume = values


class IndicatorOutputs:
    """Several outputs of one indicator, read as attributes: `macd(candles).hist`."""

    def __init__(self, outputs: Mapping[str, np.ndarray]) -> None:
        self.__dict__.update(outputs)


def crossed_above(a: Any, b: Any) -> bool:
    """Whether series `a` went from at or below `b` to above it on the last candle."""
    a0, a1 = a[-2], a[-1]
    b0, b1 = (b[-2], b[-1]) if isinstance(b, np.ndarray) else (b, b)
    return bool(a0 <= b0 and a1 > b1)


def crossed_below(a: Any, b: Any) -> bool:
    """Whether series `a` went from at or above `b` to below it on the last candle."""
    a0, a1 = a[-2], a[-1]
    b0, b1 = (b[-2], b[-1]) if isinstance(b, np.ndarray) else (b, b)
    return bool(a0 >= b0 and a1 < b1)


PLAIN_HELPERS: dict[str, Any] = {
    "crossed_above": crossed_above,
    "crossed_below": crossed_below,
    "isnan": math.isnan,
    "isfinite": math.isfinite,
    "sqrt": math.sqrt,
    "log": math.log,
    "exp": math.exp,
    "floor": math.floor,
    "ceil": math.ceil,
    "nan": math.nan,
}


def json_float(value: Any) -> float | None:
    """A number as JSON can carry it: NaN and infinities become None."""
    number = float(value)
    return number if math.isfinite(number) else None


def _readonly_result(outputs: Mapping[str, np.ndarray]) -> Any:
    for array in outputs.values():
        array.flags.writeable = False
    if len(outputs) == 1 and "value" in outputs:
        return outputs["value"]
    return IndicatorOutputs(outputs)


def _last_values(outputs: Mapping[str, np.ndarray]) -> Any:
    """What a signal records of an indicator it read: the latest value of each output."""
    last = {name: json_float(array[-1]) if len(array) else None for name, array in outputs.items()}
    return last["value"] if len(last) == 1 and "value" in last else last


class Indicators:
    """Indicator helpers for one symbol at a time, memoised across every trader that screens
    it, and the values the current filter read (recorded into its signal, at most
    `MAX_READS` of them)."""

    def __init__(self) -> None:
        self.memo: dict[tuple[Any, ...], tuple[Any, str, Mapping[str, np.ndarray]]] = {}
        self.labels: dict[tuple[Any, ...], str] = {}
        self.intervals: dict[int, str] = {}
        self.reads: dict[str, Mapping[str, np.ndarray]] = {}
        self.namespace: dict[str, Any] = {
            **PLAIN_HELPERS,
            **{name: self._helper(spec) for name, spec in INDICATORS.items()},
        }

    def reset(self, frames: Mapping[str, FilterCandles]) -> None:
        self.memo.clear()
        self.intervals = {id(candles): interval for interval, candles in frames.items()}

    def readings(self) -> dict[str, Any]:
        """What the current filter read, as its signal records it: the latest value of each
        output (made only for a match, not at every evaluation)."""
        return {label: _last_values(outputs) for label, outputs in self.reads.items()}

    def _label(self, key: tuple[Any, ...]) -> str:
        """`1h.rsi(14)`: an indicator reading's name, made once per spelling."""
        label = self.labels.get(key)
        if label is None:
            if len(self.labels) >= MAX_BINDS * len(INDICATORS):
                self.labels.clear()
            interval, name, *values = key
            label = self.labels[key] = f"{interval}.{name}({','.join(str(v) for v in values)})"
        return label

    def _helper(self, spec: IndicatorSpec) -> Callable[..., Any]:
        names = [param.name for param in spec.params]
        binds: dict[Any, tuple[dict[str, int | float], tuple[Any, ...]]] = {}

        def bind(
            args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> tuple[dict[str, Any], tuple[Any, ...]]:
            """The parameters, and their values in order, checked once per spelling
            (`rsi(candles, 14)` is asked at every symbol and close), not at every call; a
            spelling that fails is not kept."""
            try:
                key = (args, tuple(kwargs.items()))
                found = binds.get(key)
            except TypeError:  # an unhashable argument: check it every time
                key, found = None, None
            if found is None:
                if len(args) > len(names):
                    raise TypeError(f"{spec.name} takes at most {len(names)} parameters")
                bound = spec.bind({**dict(zip(names, args, strict=False)), **kwargs})
                found = bound, (spec.name, *bound.values())
                if key is not None and len(binds) < MAX_BINDS:
                    binds[key] = found
            return found

        def indicator(candles: Any, *args: Any, **kwargs: Any) -> Any:
            bound, values = bind(args, kwargs)
            interval = self.intervals.get(id(candles))
            if interval is None:
                raise TypeError(f"{spec.name} takes candles, e.g. {spec.name}(candles)")
            key = (interval, *values)
            hit = self.memo.get(key)
            if hit is None:
                outputs = spec.compute(candles, **bound)
                hit = self.memo[key] = (_readonly_result(outputs), self._label(key), outputs)
            if len(self.reads) < MAX_READS or hit[1] in self.reads:
                self.reads[hit[1]] = hit[2]
            return hit[0]

        indicator.__name__ = indicator.__qualname__ = spec.name
        return indicator


def compile_filter(code: str, helpers: Mapping[str, Any]) -> Callable[..., Any]:
    """The validated filter as a function of (timeframes, candles, ticker, params, symbol)."""
    parse_filter(code)
    namespace: dict[str, Any] = {"__builtins__": SAFE_BUILTINS, **helpers}
    exec(compile(filter_module(code), "<filter>", "exec"), namespace)
    function: Callable[..., Any] = namespace[FUNCTION_NAME]
    return function


def interpret(result: Any) -> tuple[bool, Side, float | None]:
    """A filter returns a truth value, or `(matched, side)`, or `(matched, side, score)`."""
    if isinstance(result, tuple | list):
        if not 1 <= len(result) <= 3:
            raise ValueError("return a truth value, (matched, side) or (matched, side, score)")
        matched = bool(result[0])
        side = Side(str(result[1])) if len(result) > 1 else Side.LONG
        score = json_float(result[2]) if len(result) > 2 and result[2] is not None else None
        return matched, side, score
    return bool(result), Side.LONG, None


USER_NAMES: dict[str, str] = {
    FilterCandles.__name__: "candles",
    IndicatorOutputs.__name__: "indicator outputs",
    TickerValues.__name__: "ticker",
    MappingProxyType.__name__: "mapping",
}
_OBJECT = re.compile(r"<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>")
_MODULE_PATH = re.compile(r"\bapp(?:\.\w+)+\.(?=\w)")
_INTERNAL = re.compile(r"\b(" + "|".join(map(re.escape, USER_NAMES)) + r")\b")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+|0x[0-9a-fA-F]{6,}")


def sanitize(reason: str) -> str:
    """A failure reason without memory addresses, module paths or sandbox class names."""
    reason = _OBJECT.sub(lambda found: f"<{USER_NAMES.get(found[1], found[1])}>", reason)
    reason = _MODULE_PATH.sub("", reason)
    reason = _INTERNAL.sub(lambda found: USER_NAMES[found[1]], reason)
    return _ADDRESS.sub("", reason)[:MAX_FAILURE]


def _location(exc: BaseException) -> str:
    """`line 3, column 9: ` of the innermost frame of the filter's own code, or nothing (no
    source file is read: a worker has none to read)."""
    tb, found = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<filter>":
            found = tb
        tb = tb.tb_next
    if found is None:
        return ""
    positions = found.tb_frame.f_code.co_positions()
    _, _, column, _ = next(itertools.islice(positions, found.tb_lasti // 2, None), (0, 0, None, 0))
    return (
        f"line {found.tb_lineno}" + (f", column {column + 1}" if column is not None else "") + ": "
    )


def describe(exc: BaseException) -> str:
    """Why an evaluation failed, located in the filter's own code when it raised there."""
    if isinstance(exc, FilterTimeout):
        return TIME_EXCEEDED
    if isinstance(exc, MemoryError):
        return MEMORY_EXCEEDED
    return sanitize(f"{_location(exc)}{type(exc).__name__}: {exc}")


def warm_up() -> None:
    """Call every allowed array method and the array printers once, with the real builtins,
    so numpy's lazily imported helpers are cached before a filter needs them."""
    samples: list[Any] = [
        np.linspace(1.0, 2.0, 2000),
        np.arange(3, dtype=np.int64),
        np.arange(3.0) > 1,
        np.empty(0),
        np.ones((2, 2)),
        np.float64(1.5),
        np.int64(2),
        np.bool_(True),
    ]
    for sample in samples:
        for name in sorted(ALLOWED_ATTRIBUTES):
            method = getattr(sample, name, None)
            if callable(method):
                with contextlib.suppress(Exception):
                    method()
        str(sample)
        repr(sample)
        format(sample)
        str([sample])
