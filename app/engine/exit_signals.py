"""ExitSignals, the Monitor stage's second half: exits a trader's own rules call for.

At each candle close of a trader's interval, for its open positions:

- its **exit filter** (freqtrade's exit signal: "RSI over 70"), written in the same filter
  language as its entry filter, runs in the same sandbox on the symbols it holds; a match
  closes that position (`exit_signal`);
- every `review_candles` candles a position has been held, the `PositionReviewer` (the
  analysis engine, `app.engine.analysis.review`) is asked to hold or close it (`analysis`).

Closes are only noted by `on_close`; the exit filters (through the screener, which a
backtest answers from the closes it screened ahead) and the reviewer run in `run`, so a slow
model call never holds up a screen, and the price-driven position monitor (another stage)
keeps guarding stops meanwhile.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence

from app.domain.enums import ExitReason, TradeStatus
from app.domain.filter_validation import FilterValidationError
from app.domain.intervals import interval_ms
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.due import CloseDriven
from app.engine.orders import OrderManager
from app.engine.ports import PositionReviewer, TradeStore
from app.engine.sandbox import FilterJob
from app.engine.screening import CandleClose, MarketView, ScreenerEngine

log = logging.getLogger(__name__)


def exit_job(spec: TraderSpec, symbols: Sequence[str]) -> FilterJob | None:
    """The sandbox job of the trader's exit filter over `symbols`, None when it has none;
    `FilterValidationError` when its exit filter is invalid."""
    program = spec.exit_filter
    if program is None:
        return None
    return FilterJob(
        str(spec.id),
        program.code,
        spec.interval,
        tuple(symbols),
        program.timeframes,
        spec.filter_params(),
    )


class ExitSignals(CloseDriven):
    name = "exits"

    def __init__(
        self,
        store: TradeStore,
        orders: OrderManager,
        screener: ScreenerEngine,
        reviewer: PositionReviewer,
    ) -> None:
        self.store = store
        self.orders = orders
        self.screener = screener
        self.reviewer = reviewer
        super().__init__()

    async def at_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> int:
        specs = {
            spec.id: spec
            for spec in traders
            if spec.exit_filter_code.strip() or spec.risk.review_candles
        }
        if not specs:
            return 0
        held: dict[TraderSpec, list[Trade]] = defaultdict(list)
        for trade in await self.store.active_trades(specs):
            if trade.status == TradeStatus.OPEN:
                held[specs[trade.trader_id]].append(trade)
        handled = await self._exit_filters(held, view)
        for spec, trades in held.items():
            if spec.risk.review_candles:
                handled += await self._reviews(spec, trades, close, view)
        return handled

    async def _exit_filters(self, held: dict[TraderSpec, list[Trade]], view: MarketView) -> int:
        jobs = []
        for spec, trades in held.items():
            try:
                job = exit_job(spec, sorted({trade.symbol for trade in trades}))
            except FilterValidationError as exc:
                log.warning("trader %s: its exit filter is invalid: %s", spec.id, exc)
                continue
            if job is not None:
                jobs.append(job)
        if not jobs:
            return 0
        outcomes = await self.screener.screen_exits(jobs, view)
        handled = 0
        for spec, trades in held.items():
            outcome = outcomes.get(str(spec.id))
            if outcome is None:
                continue
            if outcome.failure is not None:
                log.warning("trader %s: its exit filter failed: %s", spec.id, outcome.failure)
                continue
            matched = {match.symbol for match in outcome.matches}
            for trade in trades:
                if trade.symbol not in matched:
                    continue
                note = "the exit filter matched"
                if await self.orders.close(trade, ExitReason.EXIT_SIGNAL, note=note) is not None:
                    handled += 1
        return handled

    async def _reviews(
        self, spec: TraderSpec, trades: list[Trade], close: CandleClose, view: MarketView
    ) -> int:
        assert spec.risk.review_candles is not None
        step = interval_ms(spec.interval)
        handled = 0
        for trade in trades:
            held = (close.at - trade.opened_at) // step
            if held <= 0 or held % spec.risk.review_candles:
                continue
            review = await self.reviewer.review(spec, trade, view)
            if review.close:
                closed = await self.orders.close(trade, ExitReason.ANALYSIS, note=review.reason)
                handled += closed is not None
        return handled
