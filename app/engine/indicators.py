"""Indicators computed once per symbol, interval and candle, however many traders ask.

Hundreds of traders screen the same symbols on the same candle close; most ask for the same
RSI(14) or EMA(50). The cache keys each result on (symbol, interval, last candle time, name,
parameters after defaults are applied), so `rsi()` and `rsi(period=14)` share one entry.
When a series gets a new candle, its older entries are dropped on the next lookup: memory
stays one candle's worth of indicators per series. Parameters come from API requests, so
one candle can see any number of distinct ones: past `max_entries` in all, the cache starts
over. Results are read-only arrays shared by every caller.

The cache itself belongs to the event loop (it is not thread-safe). Work too slow for the
loop is split: `cached` on the loop, `compute` on a snapshot of the series in a thread, then
`insert` back on the loop, which keeps the result only if the series has not moved on.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from app.domain.indicators import INDICATORS, IndicatorSpec, Outputs
from app.engine.klines import Candles, KlineStore

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


def _key(name: str, bound: Mapping[str, int | float]) -> _Key:
    return (name, tuple(sorted(bound.items())))


def compute(spec: IndicatorSpec, candles: Candles, bound: Mapping[str, int | float]) -> Outputs:
    """The indicator on one snapshot of a series, as read-only arrays. It reads nothing but
    its arguments, so it may run in a worker thread while the event loop appends candles."""
    result = spec.compute(candles, **bound)
    for array in result.values():
        array.flags.writeable = False
    return result


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
        result = self.cached(symbol, interval, name, bound)
        if result is None:
            candles = self.store.candles(symbol, interval)
            result = compute(spec, candles, bound)
            self.insert(symbol, interval, candles.last_time, name, bound, result)
        return result

    def cached(
        self, symbol: str, interval: str, name: str, bound: Mapping[str, int | float]
    ) -> Outputs | None:
        """The result for the series as it is now, if one was kept; `bound` is the indicator's
        parameters after `IndicatorSpec.bind`."""
        entry = self._entries.get((symbol, interval))
        if entry is None or entry[0] != self.store.last_time(symbol, interval):
            return None
        return entry[1].get(_key(name, bound))

    def insert(
        self,
        symbol: str,
        interval: str,
        last_time: int | None,
        name: str,
        bound: Mapping[str, int | float],
        result: Outputs,
    ) -> None:
        """Keep a result computed on the series up to the candle at `last_time`. A result
        computed elsewhere (in a thread) on a candle the series has moved past is not kept."""
        self.computations += 1
        if last_time != self.store.last_time(symbol, interval):
            return
        cached = self._entries.get((symbol, interval))
        if cached is None or cached[0] != last_time:
            if cached is not None:
                self._size -= len(cached[1])
            cached = self._entries[(symbol, interval)] = (last_time, {})
        key = _key(name, bound)
        if key in cached[1]:
            return
        if self._size >= self.max_entries:
            self.clear()
            cached = self._entries[(symbol, interval)] = (last_time, {})
        cached[1][key] = result
        self._size += 1

    def get(self, symbol: str, interval: str, name: str, **params: object) -> IndicatorValue:
        """The single output array, or the mapping of outputs of a multi-output indicator."""
        result = self.outputs(symbol, interval, name, **params)
        if len(result) == 1:
            return next(iter(result.values()))
        return result

    def clear(self) -> None:
        self._entries.clear()
        self._size = 0
