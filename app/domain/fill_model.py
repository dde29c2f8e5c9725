"""How paper orders fill: honest enough that a demo result says something about live trading.

The complaint about paper trading everywhere (freqtrade #3685, #3902, hummingbot's paper
fills) is that it fills every order at the last price, for free, whatever its size. Here:

- A **market** order fills at the next price (the quote the order meets) moved against it by
  half the spread plus a market impact that grows with the order's size against the
  candle's volume (`impact` x amount / volume: an order of 1% of the candle's volume pays
  0.1% with the default), and pays the taker fee. The expected price is the last price; a
  fill records both.
- A **limit** order fills only when the price trades *through* its limit (a touch is not
  enough: the queue ahead of it may take the touch), at the limit, as a maker, and at most
  `volume_share` (10%) of a candle's volume per candle: a large order fills over several.
- A **stop** triggers when the price touches it and then fills as a market order from the
  stop price, or from the open when the candle opened beyond it (a gap fills worse). A
  stop-limit becomes a limit order at its limit price when triggered.

With candles only, the path inside a candle is assumed to be open, low, high, close
(`Bar.path`): the worst case for a long position, whose adverse extreme comes first, so a
candle holding both a position's stop and its target takes the stop. A tick is a bar whose
four prices are equal.

Fill prices are rounded to the market's tick against the order (a buyer pays the tick up),
fees in the quote currency to 8 places, rounded up. Pure arithmetic on Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from app.domain.enums import Liquidity, OrderSide
from app.domain.instrument import Instrument

ZERO = Decimal(0)
ONE = Decimal(1)
FEE_QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class Bar:
    """What the price did over a stretch of time: a candle, or a single tick."""

    time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal = ZERO

    @classmethod
    def tick(cls, time: int, price: Decimal) -> Bar:
        return cls(time, price, price, price, price)

    def path(self) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """The assumed order of prices inside the bar: the worst case for a long."""
        return (self.open, self.low, self.high, self.close)

    def merged(self, later: Bar) -> Bar:
        """This bar followed by `later`, as one bar."""
        return Bar(
            self.time,
            self.open,
            max(self.high, later.high),
            min(self.low, later.low),
            later.close,
            self.volume + later.volume,
        )


@dataclass(frozen=True, slots=True)
class Quote:
    """The market one order meets: the last price, the book's best prices when known, and
    the base volume of the latest candle (what market impact is measured against)."""

    time: int
    last: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None
    volume: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill the model grants: `amount` at `price`, its fee, and what was expected."""

    amount: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    expected_price: Decimal


@dataclass(frozen=True, slots=True)
class FillModel:
    """Fees and rates are fractions (0.001 is 0.1%). `spread` is used when a quote has no
    bid and ask of its own."""

    taker_fee: Decimal = Decimal("0.001")
    maker_fee: Decimal = Decimal("0.001")
    volume_share: Decimal = Decimal("0.1")
    impact: Decimal = Decimal("0.1")
    spread: Decimal = Decimal("0.0005")

    def fee(self, notional: Decimal, liquidity: Liquidity) -> Decimal:
        rate = self.maker_fee if liquidity == Liquidity.MAKER else self.taker_fee
        return (notional * rate).quantize(FEE_QUANTUM, rounding=ROUND_CEILING)

    def half_spread(self, quote: Quote) -> Decimal:
        if quote.bid is not None and quote.ask is not None and quote.ask >= quote.bid > 0:
            return (quote.ask - quote.bid) / (quote.ask + quote.bid)
        return self.spread / 2

    def slippage(self, amount: Decimal, quote: Quote) -> Decimal:
        """The fraction of the price a market order of `amount` loses to spread and impact.

        Impact grows with the order's share of the candle's volume up to the whole candle:
        an order larger than a candle (an exit of a position the risk manager sized on a
        busier candle) pays the impact of one candle's volume, not a multiple of the price
        (entries are capped at `volume_share` of the volume by the risk manager)."""
        participation = min(amount / quote.volume, ONE) if quote.volume else ZERO
        return self.half_spread(quote) + self.impact * participation

    def market(
        self,
        side: OrderSide,
        amount: Decimal,
        quote: Quote,
        instrument: Instrument,
        reference: Decimal | None = None,
    ) -> Execution:
        """A market order of `amount` meeting `quote`, from `reference` (default: the last
        price; a triggered stop passes its trigger price)."""
        expected = quote.last if reference is None else reference
        buying = side == OrderSide.BUY
        move = self.slippage(amount, quote)
        raw = expected * (ONE + move if buying else ONE - move)
        price = instrument.round_price(raw, up=buying)
        if price <= 0:
            price = instrument.price_step
        return Execution(
            amount, price, self.fee(amount * price, Liquidity.TAKER), Liquidity.TAKER, expected
        )

    def estimated_cost(self, amount: Decimal, quote: Quote, instrument: Instrument) -> Decimal:
        """What buying `amount` at market would take from the cash, fee included."""
        fill = self.market(OrderSide.BUY, amount, quote, instrument)
        return fill.amount * fill.price + fill.fee

    def limit(
        self,
        side: OrderSide,
        remaining: Decimal,
        limit_price: Decimal,
        bar: Bar,
        instrument: Instrument,
    ) -> Execution | None:
        """The part of a resting limit order that `bar` fills, if the price traded through."""
        crossed = bar.low < limit_price if side == OrderSide.BUY else bar.high > limit_price
        if not crossed:
            return None
        amount = instrument.floor_amount(min(remaining, self.volume_share * bar.volume))
        if amount <= 0:
            return None
        fee = self.fee(amount * limit_price, Liquidity.MAKER)
        return Execution(amount, limit_price, fee, Liquidity.MAKER, limit_price)


def stop_trigger(side: OrderSide, stop_price: Decimal, bar: Bar) -> Decimal | None:
    """The price at which a stop order triggers inside `bar`, or None: the stop itself when
    touched, the open when the bar opened beyond it. A sell stop protects a long (it
    triggers on the way down), a buy stop triggers on the way up."""
    if side == OrderSide.SELL:
        if bar.open <= stop_price:
            return bar.open
        return stop_price if bar.low <= stop_price else None
    if bar.open >= stop_price:
        return bar.open
    return stop_price if bar.high >= stop_price else None
