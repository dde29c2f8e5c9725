"""ContextBuilder: what the analysis of one signal sees, taken from the market view.

The view is the market as the stage sees it now (live: the kline store; a backtest: the
replayed candles closed so far), so an analysis never reads a candle from its future. The
candles are the last `candles` of the signal's interval and of every other timeframe the
trader's filter reads (a filter that looked at the 4h trend is analyzed with the 4h trend).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from app.domain.decision import Decision
from app.domain.filter_validation import FilterValidationError
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisContext
from app.engine.clock import Clock
from app.engine.klines import Candles
from app.engine.ports import DecisionRepository, PositionReader
from app.engine.screening import MarketView

DEFAULT_CANDLES = 100


class ContextBuilder:
    def __init__(
        self,
        decisions: DecisionRepository,
        positions: PositionReader,
        clock: Clock,
        candles: int = DEFAULT_CANDLES,
    ) -> None:
        self.decisions = decisions
        self.positions = positions
        self.clock = clock
        self.candles = candles

    def timeframes(self, signal: Signal, spec: TraderSpec) -> list[str]:
        """The signal's interval first, then the other timeframes the filter reads."""
        try:
            read = spec.filter.timeframes
        except FilterValidationError:
            read = frozenset()
        return [signal.interval, *sorted(read - {signal.interval})]

    def window(self, view: MarketView, symbol: str, interval: str) -> Candles:
        series = view.candles(symbol, interval)
        last = slice(-self.candles, None)
        return Candles(
            symbol,
            interval,
            series.time[last],
            series.open[last],
            series.high[last],
            series.low[last],
            series.close[last],
            series.volume[last],
        )

    async def build(self, signal: Signal, spec: TraderSpec, view: MarketView) -> AnalysisContext:
        return (await self.build_many([(signal, spec)], view))[0]

    async def build_many(
        self,
        work: Sequence[tuple[Signal, TraderSpec]],
        view: MarketView,
        known: Mapping[uuid.UUID, tuple[Decision, ...]] | None = None,
    ) -> list[AnalysisContext]:
        """The contexts of several signals: one read of the traders' open positions and one
        of the earlier decisions of the signals whose decisions are not `known` (by signal
        id: all of them, as the stage that handed the signal over had them). Signals on one
        symbol share its windows (one object each), so an engine that keeps what it read
        off a window knows it again at a glance."""
        if not work:
            return []
        known = known or {}
        positions = await self.positions.open_positions({spec.id for _, spec in work})
        unknown = [signal.id for signal, _ in work if signal.id not in known]
        earlier: dict[uuid.UUID, Sequence[Decision]] = dict(known)
        if unknown:
            earlier |= await self.decisions.for_signals(unknown)
        tickers = view.tickers()
        now = self.clock.now()
        windows: dict[tuple[str, str], Candles] = {}

        def window(symbol: str, interval: str) -> Candles:
            found = windows.get((symbol, interval))
            if found is None:
                found = windows[symbol, interval] = self.window(view, symbol, interval)
            return found

        return [
            AnalysisContext(
                signal=signal,
                trader=spec,
                candles={
                    interval: window(signal.symbol, interval)
                    for interval in self.timeframes(signal, spec)
                },
                ticker=tickers.get(signal.symbol),
                positions=tuple(positions[spec.id]),
                earlier=tuple(earlier[signal.id]),
                now=now,
            )
            for signal, spec in work
        ]
