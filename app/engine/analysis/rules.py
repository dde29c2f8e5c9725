"""RuleAnalysisEngine: the offline engine, `app.domain.rule_analysis` as a Decision.

It needs no key, no network and no budget, and it is deterministic, so it serves offline
use, tests and backtests, and stands in whenever no model may answer.

At a candle close every trader that judges a symbol judges the same window: fifty traders
over a hundred symbols judged 160 signals at a close, on 50 windows, and most of them with
the same risk settings. So the engine keeps, for the latest windows (by symbol, interval,
the window's first and last candle and its prices' sum), what the rules read off them
(`Readings`: six indicators) and the verdict of each side and risk settings judged on them
(a verdict depends on nothing else): each is computed once. The key costs three sums over
the window; a window object seen just before (the context builder hands the signals of one
symbol one window object, and a `Candles` snapshot is never written) keeps its key."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from app.domain.decision import AnalysisEngineKind, Decision
from app.domain.enums import Side
from app.domain.indicators import CandleArrays
from app.domain.rule_analysis import Readings, RuleVerdict, judge_setup, read_setup
from app.domain.trader_spec import RiskSettings
from app.engine.analysis.base import AnalysisContext, offline_decision

KEPT = 4096

_Window = tuple[str, str, int, int, int, float]
K = TypeVar("K")
V = TypeVar("V")


def _cached(cache: OrderedDict[K, V], key: K, compute: Callable[[], V]) -> V:
    """The value kept for `key`, else `compute()`'s, kept; beyond `KEPT` values the least
    recently used goes."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = compute()
    if len(cache) > KEPT:
        cache.popitem(last=False)
    return value


class RuleAnalysisEngine:
    kind = AnalysisEngineKind.RULES

    def __init__(self) -> None:
        self._readings: OrderedDict[_Window, Readings | None] = OrderedDict()
        self._verdicts: OrderedDict[tuple[_Window, Side, RiskSettings], RuleVerdict] = OrderedDict()
        self._seen: dict[tuple[str, str], tuple[CandleArrays, _Window]] = {}

    async def analyze(self, context: AnalysisContext) -> Decision:
        verdict = self._verdict(context)
        invalid = None if verdict.judged else verdict.reasoning
        return offline_decision(
            context, self.kind, verdict, verdict.direction, verdict.confidence, invalid
        )

    def _verdict(self, context: AnalysisContext) -> RuleVerdict:
        signal, series, risk = context.signal, context.series, context.trader.risk
        side, symbol = signal.side, signal.symbol
        window = self._window(symbol, signal.interval, series)
        if window is None:
            return judge_setup(side, series, risk, symbol)
        return _cached(
            self._verdicts,
            (window, side, risk),
            lambda: judge_setup(
                side,
                series,
                risk,
                symbol,
                _cached(self._readings, window, lambda: read_setup(series)),
            ),
        )

    def _window(self, symbol: str, interval: str, series: CandleArrays) -> _Window | None:
        """The key of `series`; None for a window without candles."""
        seen = self._seen.get((symbol, interval))
        if seen is not None and seen[0] is series:
            return seen[1]
        times = series.time
        if not len(times):
            return None
        # Each column's sum too: a candle the feed revised gives another key.
        sums = float(series.high.sum()) + float(series.low.sum()) + float(series.close.sum())
        window = (symbol, interval, len(times), int(times[0]), int(times[-1]), sums)
        self._seen[symbol, interval] = (series, window)
        return window
