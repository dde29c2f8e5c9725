"""`DemoTradeExecutor`: paper trading on the market the engine sees, with honest fills.

It fills through `app.domain.fill_model` (spread, impact, fees, volume-capped limit fills,
stops that trigger on touch) at the quotes of the engine's `Quotes` port: the live feed's
ticks and candles, or a backtest's replayed candles. A market order fills from the price
it was sent at (its expected price: the last price for an entry, the level the position
monitor saw touched for a stop or target, which in a backtest lies inside a candle that has
closed since), else from the last price. It keeps no state of its own: a
market order fills when placed; a resting order's fills are worked out from the closed
candles since it was placed, each named by the order and the candle, so fetching it again
reports the same fills and the store books each once. Hence its reconciliation after a
crash: an order the store still holds as an intent never reached this venue (`fetch` says
None), because a paper fill exists only once its report is booked.

Like an exchange (Binance's "order would immediately trigger"), it rejects a stop order
whose stop the price is already past. Fees are in the quote currency. `balances` are the
trader's own ledger: the paper venue has no account of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

from app.domain.enums import OrderSide, OrderStatus, OrderType
from app.domain.fill_model import Bar, Execution, FillModel, Quote, stop_trigger
from app.domain.ledger import LEDGER_CURRENCY, Ledger
from app.domain.orders import Fill, Order, OrderReport
from app.engine.clock import Clock
from app.engine.executors.base import Balance
from app.engine.instruments import Instruments
from app.engine.ports import Quotes

ZERO = Decimal(0)


class DemoTradeExecutor:
    def __init__(
        self,
        quotes: Quotes,
        instruments: Instruments,
        clock: Clock,
        ledger: Callable[[], Awaitable[Ledger]],
        model: FillModel | None = None,
    ) -> None:
        self.quotes = quotes
        self.instruments = instruments
        self.clock = clock
        self.model = model or FillModel()
        self._ledger = ledger

    @staticmethod
    def _fill(order: Order, execution: Execution, time: int, name: str) -> Fill:
        return Fill(
            id=f"{order.client_order_id}-{name}",
            order_id=order.id,
            amount=execution.amount,
            price=execution.price,
            fee=execution.fee,
            liquidity=execution.liquidity,
            time=time,
            expected_price=order.expected_price or execution.expected_price,
        )

    @staticmethod
    def _venue_id(order: Order) -> str:
        return f"demo-{order.client_order_id}"

    async def place(self, order: Order) -> OrderReport:
        quote = self.quotes.quote(order.symbol)
        if quote is None:
            return OrderReport(OrderStatus.REJECTED, reason=f"no price for {order.symbol}")
        instrument = self.instruments.instrument(order.symbol, quote.last)
        venue_id = self._venue_id(order)
        if order.type == OrderType.MARKET:
            execution = self.model.market(
                order.side, order.amount, quote, instrument, reference=order.expected_price
            )
            fill = self._fill(order, execution, self.clock.now(), "0")
            return OrderReport(OrderStatus.CLOSED, (fill,), venue_id)
        if order.stop_price is not None:
            if stop_trigger(order.side, order.stop_price, Bar.tick(quote.time, quote.last)):
                return OrderReport(
                    OrderStatus.REJECTED, reason="the stop would trigger immediately"
                )
            return OrderReport(OrderStatus.OPEN, (), venue_id)
        assert order.price is not None
        execution = self.model.market(order.side, order.amount, quote, instrument)
        marketable = (
            execution.price <= order.price
            if order.side == OrderSide.BUY
            else execution.price >= order.price
        )
        if marketable:
            fill = self._fill(order, execution, self.clock.now(), "0")
            return OrderReport(OrderStatus.CLOSED, (fill,), venue_id)
        return OrderReport(OrderStatus.OPEN, (), venue_id)

    async def fetch(self, order: Order) -> OrderReport | None:
        if order.status == OrderStatus.INTENT:
            return None
        if order.final or order.type == OrderType.MARKET:
            return OrderReport(order.status, (), order.exchange_order_id)
        fills = self._resting_fills(order)
        filled = sum((fill.amount for fill in fills), ZERO)
        status = OrderStatus.CLOSED if filled >= order.amount else OrderStatus.OPEN
        return OrderReport(status, fills, order.exchange_order_id)

    async def cancel(self, order: Order) -> OrderReport:
        report = await self.fetch(order)
        if report is None:
            return OrderReport(OrderStatus.CANCELED, reason="cancelled before it was sent")
        if report.status == OrderStatus.OPEN:
            return OrderReport(OrderStatus.CANCELED, report.fills, report.exchange_order_id)
        return report

    def _resting_fills(self, order: Order) -> tuple[Fill, ...]:
        """The fills a resting order got from the closed candles since it was placed."""
        fills: list[Fill] = []
        remaining = order.amount
        triggered = order.stop_price is None
        for bar in self.quotes.bars_since(order.symbol, order.created_at):
            if remaining <= 0:
                break
            instrument = self.instruments.instrument(order.symbol, bar.close)
            if not triggered:
                assert order.stop_price is not None
                trigger = stop_trigger(order.side, order.stop_price, bar)
                if trigger is None:
                    continue
                triggered = True
                if order.type == OrderType.STOP_MARKET:
                    quote = Quote(bar.time, trigger, volume=bar.volume)
                    execution = self.model.market(
                        order.side, remaining, quote, instrument, reference=order.stop_price
                    )
                    fills.append(self._fill(order, execution, bar.time, str(bar.time)))
                    break
                continue
            assert order.price is not None
            part = self.model.limit(order.side, remaining, order.price, bar, instrument)
            if part is not None:
                fills.append(self._fill(order, part, bar.time, str(bar.time)))
                remaining -= part.amount
        return tuple(fills)

    async def balances(self) -> dict[str, Balance]:
        ledger = await self._ledger()
        cash = ledger.cash
        found = {LEDGER_CURRENCY: Balance(LEDGER_CURRENCY, cash, ZERO, cash)}
        for symbol, position in ledger.positions.items():
            base = symbol.split("/")[0]
            found[base] = Balance(base, position.amount, ZERO, position.amount)
        return found
