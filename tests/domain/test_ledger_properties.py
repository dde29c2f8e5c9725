"""Property tests of the ledger and of the bookkeeping of fills (hypothesis).

Whatever the sequence of fills, at every step: cash plus the value of the positions is the
equity, and equals the starting balance plus realised and unrealised P&L, to the last digit;
no balance is ever negative (a fill the cash cannot pay is refused and changes nothing);
every amount held is on the market's amount step.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.enums import (
    ExitReason,
    Liquidity,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeStatus,
    TradingMode,
)
from app.domain.fill_model import FillModel, Quote
from app.domain.instrument import derived_instrument
from app.domain.ledger import Ledger, LedgerError
from app.domain.metrics import Performance
from app.domain.orders import Fill, Order, OrderReport
from app.domain.trade import Trade, book_report

SYMBOLS = ("BTC/USDT", "ETH/USDT", "DOGE/USDT")
BASE = {"BTC/USDT": Decimal(60_000), "ETH/USDT": Decimal(3_000), "DOGE/USDT": Decimal("0.15")}
INSTRUMENTS = {s: derived_instrument(s, p) for s, p in BASE.items()}
MODEL = FillModel()

moves = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("2"), places=4)
shares = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1.2"), places=3)
steps = st.lists(
    st.tuples(st.sampled_from(("buy", "sell")), st.sampled_from(SYMBOLS), shares, moves),
    min_size=1,
    max_size=60,
)


def _check(ledger: Ledger, marks: dict[str, Decimal]) -> None:
    value = ledger.position_value(marks)
    assert ledger.cash >= 0
    assert ledger.equity(marks) == ledger.cash + value
    assert ledger.cash + value == ledger.initial + ledger.realised_pnl + ledger.unrealised_pnl(
        marks
    )
    for symbol, position in ledger.positions.items():
        assert position.amount > 0 and position.cost >= 0 and position.fees >= 0
        assert INSTRUMENTS[symbol].on_amount_step(position.amount)


@settings(max_examples=300, deadline=None)
@given(balance=st.decimals(min_value=100, max_value=1_000_000, places=2), script=steps)
def test_cash_plus_positions_is_equity_and_nothing_goes_negative(
    balance: Decimal, script: list[tuple[str, str, Decimal, Decimal]]
) -> None:
    ledger = Ledger.opened(balance)
    marks = dict(BASE)
    for action, symbol, share, move in script:
        instrument = INSTRUMENTS[symbol]
        marks[symbol] = instrument.round_price(BASE[symbol] * move, up=False)
        quote = Quote(0, marks[symbol], volume=Decimal(1_000_000))
        if action == "buy":
            amount = instrument.floor_amount(ledger.cash * share / marks[symbol])
            side = OrderSide.BUY
        else:
            held = ledger.positions.get(symbol)
            amount = instrument.floor_amount(held.amount * share) if held else Decimal(0)
            side = OrderSide.SELL
        if amount <= 0:
            continue
        fill = MODEL.market(side, amount, quote, instrument)
        before = ledger
        try:
            if side == OrderSide.BUY:
                ledger = ledger.buy(symbol, amount, fill.price, fill.fee)
            else:
                ledger, _ = ledger.sell(symbol, amount, fill.price, fill.fee)
        except LedgerError:
            assert ledger is before
            assert side == OrderSide.SELL or amount * fill.price + fill.fee > ledger.cash
        _check(ledger, marks)


def _order(trade: Trade, purpose: OrderPurpose, amount: Decimal) -> Order:
    return Order(
        uuid.uuid4(),
        f"{purpose.value}-{uuid.uuid4().hex}",
        trade.trader_id,
        1,
        trade.id,
        TradingMode.DEMO,
        purpose,
        trade.symbol,
        OrderSide.BUY if purpose == OrderPurpose.ENTRY else OrderSide.SELL,
        OrderType.MARKET,
        amount,
        0,
        exit_reason=None if purpose == OrderPurpose.ENTRY else ExitReason.MANUAL,
    )


@settings(max_examples=150, deadline=None)
@given(
    trips=st.lists(
        st.tuples(st.sampled_from(SYMBOLS), shares, moves, moves, st.integers(1, 3)),
        min_size=1,
        max_size=25,
    )
)
def test_trades_ledger_and_aggregate_agree_after_every_fill(
    trips: list[tuple[str, Decimal, Decimal, Decimal, int]],
) -> None:
    ledger, performance = Ledger.opened(Decimal(10_000)), Performance()
    trader, closed = uuid.uuid4(), []
    for time, (symbol, share, entry_move, exit_move, parts) in enumerate(trips):
        instrument = INSTRUMENTS[symbol]
        if symbol in ledger.positions:
            continue
        trade = Trade(uuid.uuid4(), trader, 1, TradingMode.DEMO, symbol, time)
        for purpose, move in ((OrderPurpose.ENTRY, entry_move), (OrderPurpose.EXIT, exit_move)):
            price = instrument.round_price(BASE[symbol] * move, up=False)
            quote = Quote(time, price, volume=Decimal(10_000_000))
            amount = (
                instrument.floor_amount(min(ledger.cash, Decimal(2_000)) * share / (price * 2))
                if purpose == OrderPurpose.ENTRY
                else trade.held
            )
            if amount <= 0:
                break
            order = _order(trade, purpose, amount)
            side = order.side
            pieces = [instrument.floor_amount(amount / parts)] * (parts - 1)
            pieces.append(amount - sum(pieces, Decimal(0)))
            fills = []
            for n, piece in enumerate(p for p in pieces if p > 0):
                got = MODEL.market(side, piece, quote, instrument)
                fills.append(
                    Fill(
                        f"{order.id}-{n}", order.id, piece, got.price, got.fee, got.liquidity, time
                    )
                )
            done = book_report(
                order,
                trade,
                ledger,
                performance,
                OrderReport(OrderStatus.CLOSED, tuple(fills)),
                frozenset(),
                time,
            )
            assert done.order.filled == amount and done.order.status == OrderStatus.CLOSED
            trade, ledger, performance = done.trade, done.ledger, done.performance
            _check(ledger, {symbol: price})
        if trade.status == TradeStatus.CLOSED:
            closed.append(trade)
    realised = sum((t.pnl for t in closed if t.pnl is not None), Decimal(0))
    assert ledger.realised_pnl == realised == performance.total_pnl
    assert performance.closed == len(closed)
    assert performance.fees_paid == ledger.fees_paid
    assert performance.open_positions == len(ledger.positions) == 0
    assert ledger.cash == ledger.initial + realised


def test_a_fill_the_ledger_cannot_take_rejects_the_order_and_books_none_of_it() -> None:
    ledger, performance = Ledger.opened(Decimal(100)), Performance()
    trade = Trade(uuid.uuid4(), uuid.uuid4(), 1, TradingMode.DEMO, "BTC/USDT", 0)
    order = _order(trade, OrderPurpose.ENTRY, Decimal(1))
    fills = (
        Fill("a", order.id, Decimal("0.5"), Decimal(50), Decimal("0.05"), Liquidity.TAKER, 1),
        Fill("b", order.id, Decimal("0.5"), Decimal(500), Decimal("0.5"), Liquidity.TAKER, 1),
    )
    done = book_report(
        order, trade, ledger, performance, OrderReport(OrderStatus.CLOSED, fills, "x-1"),
        frozenset(), 2,
    )  # fmt: skip
    assert done.fills == () and done.ledger == ledger and done.performance == performance
    assert done.order.status == OrderStatus.REJECTED and done.order.filled == 0
    assert (done.order.reason or "").startswith("the ledger refused it: ")
    assert done.trade.status == TradeStatus.CANCELLED and done.ended
