"""PositionMonitor, the Monitor stage for open positions: stops, targets, trailing stops.

On every price update it scans each open position (`app.domain.exits.scan`) and closes the
ones whose stop loss, trailing stop or take profit the price reached, through the
`OrderManager` at market from the level: all the exits of a round at once, so a close
that stops many positions out records their intents in one transaction, not one each.
Price updates come from a `PriceUpdates` port: live, every tick of the feed (the live
engine wakes this stage on each); in a backtest, the candles as the replay reveals them,
scanned along their worst-case path. A price update older than a position's opening is
not its own and is skipped.

It also books what resting orders got since they were last asked (`OrderManager.poll`),
at each candle close (a paper limit order fills on closed candles), and carries out closes
asked for by a process that cannot trade itself (an API process running without the
engine), looking for them at most every `REQUESTS_MS`. Each round takes every active trade
from the store (which keeps them in memory between its writes) and scans the open ones in
a symbol that moved.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from app.domain.enums import ExitReason, TradeStatus
from app.domain.exits import scan
from app.domain.fill_model import Bar
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.clock import Clock
from app.engine.orders import Exit, OrderManager
from app.engine.ports import PriceUpdates, TradeStore
from app.engine.screening import CandleClose, MarketView

log = logging.getLogger(__name__)

REQUESTS_MS = 1000


class PositionMonitor:
    name = "positions"

    def __init__(
        self, store: TradeStore, orders: OrderManager, updates: PriceUpdates, clock: Clock
    ) -> None:
        self.store = store
        self.orders = orders
        self.updates = updates
        self.clock = clock
        self._poll_due = True
        self._requests_at = clock.now()

    async def on_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> None:
        """A close is a price update like the others, and makes resting orders due."""
        self._poll_due = True

    async def prompted(self) -> None:
        await self.updates.wait()

    async def run(self, view: MarketView) -> int:
        handled = 0
        if self._poll_due:
            self._poll_due = False
            handled += await self.orders.poll()
        if self.clock.now() >= self._requests_at:
            self._requests_at = self.clock.now() + REQUESTS_MS
            for trade, reason in await self.store.close_requests():
                note = "asked for"
                if await self.orders.close(trade, ExitReason(reason), note=note) is not None:
                    handled += 1
        bars = self.updates.take()
        if not bars:
            return handled
        exits: list[Exit] = []
        for trade in await self.store.active_trades():
            if trade.status == TradeStatus.OPEN and trade.symbol in bars:
                try:
                    exit_ = await self._watch(trade, bars[trade.symbol])
                except Exception:
                    log.exception("watching trade %s failed", trade.id)
                    continue
                if exit_ is not None:
                    exits.append(exit_)
        return handled + len(await self.orders.close_many(exits))

    async def _watch(self, trade: Trade, bars: list[Bar]) -> Exit | None:
        """The exit the bars trigger, if any; otherwise a trailing stop's new high is
        written."""
        highest = trade.highest_price
        for bar in bars:
            if bar.time < trade.opened_at:
                continue
            unchanged = highest == trade.highest_price  # a copy per bar only when it moved
            result = scan(trade if unchanged else replace(trade, highest_price=highest), bar)
            if result.trigger is not None:
                return Exit(trade, result.trigger.reason, result.trigger.price)
            highest = result.highest
        if (
            trade.trailing_stop is not None
            and highest is not None
            and highest != trade.highest_price
        ):
            await self.store.set_highest(trade.id, highest)
        return None
