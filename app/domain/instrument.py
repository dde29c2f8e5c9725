"""What a market lets one trade: amount and price steps, minimum amount and minimum notional.

An exchange refuses an order of 0.000001234 BTC when its amount step is 0.00001, or one
worth 3 USDT when its minimum notional is 5: the risk manager sizes every entry on these
rules before an order exists, so paper trading never opens a position live trading could
not. Exchanges publish them per market (ccxt's `precision` and `limits`); a market without
published rules (the simulated one) gets Binance-like rules derived from its price
(`derived_instrument`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

DEFAULT_MIN_NOTIONAL = Decimal(5)
# Binance's minimum notional where the quote is not a dollar-like coin.
MIN_NOTIONAL_BY_QUOTE = {"BTC": Decimal("0.0001"), "ETH": Decimal("0.001"), "BNB": Decimal("0.01")}
SIGNIFICANT_PRICE_DIGITS = 7


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    amount_step: Decimal
    price_step: Decimal
    min_amount: Decimal
    min_notional: Decimal

    @property
    def quote(self) -> str:
        return _quote(self.symbol)

    def floor_amount(self, amount: Decimal) -> Decimal:
        """The largest tradable amount not above `amount`."""
        return _to_step(amount, self.amount_step, ROUND_FLOOR)

    def round_price(self, price: Decimal, *, up: bool) -> Decimal:
        """A price on the market's tick: up for what a buyer pays, down for what a seller gets,
        so rounding never flatters a fill."""
        return _to_step(price, self.price_step, ROUND_CEILING if up else ROUND_FLOOR)

    def on_amount_step(self, amount: Decimal) -> bool:
        return amount % self.amount_step == 0


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


def _power_of_ten(exponent: int) -> Decimal:
    return Decimal(1).scaleb(exponent)


def derived_instrument(symbol: str, price: Decimal) -> Instrument:
    """Rules like Binance's spot markets for a market at `price`: a tick of 7 significant
    digits (0.01 at 60,000), an amount step worth under one quote unit (0.00001 BTC at
    60,000; 1 unit below a price of 1), a minimum notional of 5 quote units (0.0001 BTC,
    0.001 ETH or 0.01 BNB where those are the quote)."""
    magnitude = price.adjusted()
    amount_step = _power_of_ten(min(-magnitude - 1, 0))
    return Instrument(
        symbol=symbol,
        amount_step=amount_step,
        price_step=_power_of_ten(magnitude - SIGNIFICANT_PRICE_DIGITS + 1),
        min_amount=amount_step,
        min_notional=MIN_NOTIONAL_BY_QUOTE.get(_quote(symbol), DEFAULT_MIN_NOTIONAL),
    )


def _quote(symbol: str) -> str:
    return symbol.split("/")[1].split(":")[0] if "/" in symbol else ""
