"""RuleAnalysisEngine: the offline engine, `app.domain.rule_analysis` as a Decision.

It needs no key, no network and no budget, and it is deterministic, so it serves offline
use, tests and backtests, and stands in whenever no model may answer.

What the rules read off the candles (`Readings`: six indicators) depends on the window
alone, and at a candle close every trader that judges a symbol judges the same window:
fifty traders over a hundred symbols judged four hundred signals at a close, a hundred
windows. The engine keeps the readings of the latest windows (by symbol, interval and the
window's first and last candle, and its prices' sum), so each is computed once."""

from __future__ import annotations

from collections import OrderedDict

from app.domain.decision import AnalysisEngineKind, Decision
from app.domain.indicators import CandleArrays
from app.domain.rule_analysis import Readings, judge_setup, read_setup
from app.engine.analysis.base import AnalysisContext, offline_decision

READINGS_KEPT = 4096

_Window = tuple[str, str, int, int, int, float]


class RuleAnalysisEngine:
    kind = AnalysisEngineKind.RULES

    def __init__(self) -> None:
        self._readings: OrderedDict[_Window, Readings | None] = OrderedDict()

    async def analyze(self, context: AnalysisContext) -> Decision:
        signal = context.signal
        series = context.series
        verdict = judge_setup(
            signal.side,
            series,
            context.trader.risk,
            signal.symbol,
            self._read(signal.symbol, signal.interval, series),
        )
        invalid = None if verdict.judged else verdict.reasoning
        return offline_decision(
            context, self.kind, verdict, verdict.direction, verdict.confidence, invalid
        )

    def _read(self, symbol: str, interval: str, series: CandleArrays) -> Readings | None:
        times = series.time
        if not len(times):
            return None
        # Each column's sum too: a candle the feed revised gives another key.
        sums = float(series.high.sum()) + float(series.low.sum()) + float(series.close.sum())
        key = (symbol, interval, len(times), int(times[0]), int(times[-1]), sums)
        if key in self._readings:
            self._readings.move_to_end(key)
            return self._readings[key]
        readings = self._readings[key] = read_setup(series)
        if len(self._readings) > READINGS_KEPT:
            self._readings.popitem(last=False)
        return readings
