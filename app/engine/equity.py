"""EquityKeeper: each trader's equity on the clock, and its maximum drawdown rule.

At every candle close of a trader's interval its equity (cash plus positions at the latest
prices) is recorded: the equity curve of `traderPerformance`, and the returns and running
peak of its Sharpe, Sortino and max drawdown (the store folds each snapshot into the
trader's performance aggregate). When the equity has fallen `max_drawdown` percent below
its peak, the trader pauses itself with the reason (no new entries from then on), closes
its positions at market (`drawdown`) and cancels its unfilled entries; each action is in
the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from app.domain.enums import ExitReason, OrderPurpose, OrderStatus, TradeStatus
from app.domain.risk import RiskManager
from app.domain.trader_spec import TraderSpec
from app.engine.audit import trader_entry
from app.engine.clock import Clock
from app.engine.due import CloseDriven
from app.engine.orders import OrderManager
from app.engine.ports import Notifier, Quotes, TraderRepository, TradeStore
from app.engine.screening import CandleClose, MarketView


class EquityKeeper(CloseDriven):
    name = "equity"
    bookkeeping = True

    def __init__(
        self,
        traders: TraderRepository,
        store: TradeStore,
        orders: OrderManager,
        quotes: Quotes,
        notifier: Notifier,
        clock: Clock,
        risk: RiskManager | None = None,
    ) -> None:
        self.traders = traders
        self.store = store
        self.orders = orders
        self.quotes = quotes
        self.notifier = notifier
        self.clock = clock
        self.risk = risk or RiskManager()
        super().__init__()

    async def at_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> int:
        handled = 0
        for spec in traders:
            handled += await self._snapshot(spec, close.at)
        return handled

    async def _snapshot(self, spec: TraderSpec, time: int) -> int:
        ledger = await self.store.ledger(spec.id, spec.mode)
        marks = self.quotes.marks(frozenset(ledger.positions))
        equity = ledger.equity(marks)
        performance = await self.store.snapshot(spec.id, spec.mode, time, equity, marks)
        if performance is None:
            return 0
        await self.notifier.pnl_changed(spec.id, spec.owner_id)
        peak = performance.peak_equity or equity
        if self.risk.drawdown_reached(spec.risk, peak, equity):
            await self.stop(spec, peak, equity)
        return 1

    async def stop(self, spec: TraderSpec, peak: Decimal, equity: Decimal) -> None:
        drawdown = self.risk.drawdown(peak, equity)
        reason = (
            f"maxDrawdown {spec.risk.max_drawdown}% reached: equity {equity:.2f} is "
            f"{drawdown:.2f}% below its peak of {peak:.2f}"
        )
        await self.traders.pause(spec, reason)
        await self.store.audit(
            trader_entry(spec.owner_id, spec.id, "trader_paused", self.clock.now(), reason=reason)
        )
        for order in await self.store.orders([OrderStatus.INTENT, OrderStatus.OPEN], [spec.id]):
            if order.purpose == OrderPurpose.ENTRY:
                await self.orders.cancel(order)
        for trade in await self.store.active_trades([spec.id]):
            if trade.status == TradeStatus.OPEN:
                await self.orders.close(trade, ExitReason.DRAWDOWN, note=reason)
