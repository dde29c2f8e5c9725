"""Indicators computed once per symbol, interval and candle, however many traders ask.

Hundreds of traders screen the same symbols on the same candle close; most ask for the same
RSI(14) or EMA(50). The cache keys each result on (symbol, interval, last candle time, name,
parameters after defaults are applied), so `rsi()` and `rsi(period=14)` share one entry.
When a series gets a new candle, its older entries are dropped on the next lookup: memory
stays one candle's worth of indicators per series. Parameters come from API requests, so
one candle can see any number of distinct ones: past `max_entries` in all, the cache starts
over. Results are read-only arrays shared by every caller.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from app.domain.indicators import INDICATORS, IndicatorSpec, Outputs
from app.engine.klines import KlineStore

MAX_ENTRIES = 4096
IndicatorValue = np.ndarray | Mapping[str, np.ndarray]
_Key = tuple[str, tuple[tuple[str, int | float], ...]]


class UnknownIndicator(ValueError):
    """No indicator of that name is registered."""


def lookup(name: str, registry: Mapping[str, IndicatorSpec] = INDICATORS) -> IndicatorSpec:
    try:
        return registry[name]
    except KeyError:
        raise UnknownIndicator(f"unknown indicator {name!r}") from None


class IndicatorCache:
    def __init__(
        self,
        store: KlineStore,
        registry: Mapping[str, IndicatorSpec] = INDICATORS,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.store = store
        self.registry = registry
        self.max_entries = max_entries
        self.computations = 0
        self._entries: dict[tuple[str, str], tuple[int | None, dict[_Key, Outputs]]] = {}
        self._size = 0

    def outputs(self, symbol: str, interval: str, name: str, **params: object) -> Outputs:
        """Every named output of the indicator on the stored series."""
        spec = lookup(name, self.registry)
        bound = spec.bind(params)
        key = (name, tuple(sorted(bound.items())))
        last_time = self.store.last_time(symbol, interval)
        cached = self._entries.get((symbol, interval))
        if cached is None or cached[0] != last_time:
            if cached is not None:
                self._size -= len(cached[1])
            cached = self._entries[(symbol, interval)] = (last_time, {})
        entries = cached[1]
        result = entries.get(key)
        if result is None:
            if self._size >= self.max_entries:
                self.clear()
                self._entries[(symbol, interval)] = (last_time, entries := {})
            result = spec.compute(self.store.candles(symbol, interval), **bound)
            for array in result.values():
                array.flags.writeable = False
            entries[key] = result
            self._size += 1
            self.computations += 1
        return result

    def get(self, symbol: str, interval: str, name: str, **params: object) -> IndicatorValue:
        """The single output array, or the mapping of outputs of a multi-output indicator."""
        result = self.outputs(symbol, interval, name, **params)
        if len(result) == 1:
            return next(iter(result.values()))
        return result

    def clear(self) -> None:
        self._entries.clear()
        self._size = 0
