"""A trader's own account: cash, the positions it holds, the fees it paid, its realised P&L.

Each trader trades from a ledger of its own, per mode (a demo trader starts with the demo
balance setting, 10,000 USDT by default), so many traders can later share one exchange
account and still each know exactly what they made. The ledger is changed only by fills,
in its quote currency (USDT), and keeps one accounting identity at every step:

    cash + value of the positions  ==  initial + realised P&L + unrealised P&L

where a position's unrealised P&L is its value less what it cost, entry fees included, and
realised P&L moves from unrealised, exactly, as a position is sold. A buy the cash cannot
pay for and a sell of more than is held are refused (`LedgerError`): no balance is ever
negative. Spot only: a position is an amount held, never a short.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from types import MappingProxyType

ZERO = Decimal(0)
DEFAULT_BALANCE = Decimal(10_000)
LEDGER_CURRENCY = "USDT"
# What the database keeps of a money value (18 places): a share of a position's cost is cut
# to it, so the ledger in memory and the ledger as stored are the same to the last digit.
MONEY_QUANTUM = Decimal("1e-18")


class LedgerError(ValueError):
    """A fill the ledger cannot take: more than the cash pays for, or more than is held."""


@dataclass(frozen=True, slots=True)
class Position:
    """An amount held, what it cost, and the entry fees paid for it (not yet realised)."""

    amount: Decimal
    cost: Decimal
    fees: Decimal

    def value(self, mark: Decimal) -> Decimal:
        return self.amount * mark

    def unrealised(self, mark: Decimal) -> Decimal:
        return self.value(mark) - self.cost - self.fees


def _frozen(positions: Mapping[str, Position]) -> Mapping[str, Position]:
    return MappingProxyType(dict(positions))


@dataclass(frozen=True, slots=True)
class Ledger:
    initial: Decimal
    cash: Decimal
    fees_paid: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    positions: Mapping[str, Position] = field(default_factory=lambda: _frozen({}))

    @classmethod
    def opened(cls, balance: Decimal) -> Ledger:
        if balance < 0:
            raise LedgerError(f"a ledger cannot start below zero, got {balance}")
        return cls(initial=balance, cash=balance)

    def buy(self, symbol: str, amount: Decimal, price: Decimal, fee: Decimal) -> Ledger:
        _check_fill(amount, price, fee)
        spent = amount * price + fee
        if spent > self.cash:
            raise LedgerError(f"buying {amount} {symbol} takes {spent}, the cash is {self.cash}")
        held = self.positions.get(symbol, Position(ZERO, ZERO, ZERO))
        positions = dict(self.positions)
        positions[symbol] = Position(
            held.amount + amount, held.cost + amount * price, held.fees + fee
        )
        return replace(
            self,
            cash=self.cash - spent,
            fees_paid=self.fees_paid + fee,
            positions=_frozen(positions),
        )

    def sell(
        self, symbol: str, amount: Decimal, price: Decimal, fee: Decimal
    ) -> tuple[Ledger, Decimal]:
        """The ledger after the sale, and the P&L it realised (net of both sides' fees)."""
        _check_fill(amount, price, fee)
        held = self.positions.get(symbol)
        if held is None or amount > held.amount:
            raise LedgerError(f"selling {amount} {symbol}, held {held.amount if held else 0}")
        proceeds = amount * price
        if fee > proceeds + self.cash:
            raise LedgerError(f"a fee of {fee} exceeds the cash and the proceeds")
        positions = dict(self.positions)
        if amount == held.amount:
            released_cost, released_fees = held.cost, held.fees
            del positions[symbol]
        else:
            share = amount / held.amount
            released_cost = (held.cost * share).quantize(MONEY_QUANTUM)
            released_fees = (held.fees * share).quantize(MONEY_QUANTUM)
            positions[symbol] = Position(
                held.amount - amount, held.cost - released_cost, held.fees - released_fees
            )
        realised = proceeds - released_cost - released_fees - fee
        ledger = replace(
            self,
            cash=self.cash + proceeds - fee,
            fees_paid=self.fees_paid + fee,
            realised_pnl=self.realised_pnl + realised,
            positions=_frozen(positions),
        )
        return ledger, realised

    def position_value(self, marks: Mapping[str, Decimal]) -> Decimal:
        """Positions at their marks; a position without a mark counts at its cost."""
        return sum(
            (p.value(marks[s]) if s in marks else p.cost for s, p in self.positions.items()),
            ZERO,
        )

    def unrealised_pnl(self, marks: Mapping[str, Decimal]) -> Decimal:
        return sum(
            (p.unrealised(marks[s]) if s in marks else -p.fees for s, p in self.positions.items()),
            ZERO,
        )

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        return self.cash + self.position_value(marks)


def _check_fill(amount: Decimal, price: Decimal, fee: Decimal) -> None:
    if amount <= 0 or price <= 0 or fee < 0:
        raise LedgerError(f"a fill needs a positive amount and price, got {amount} at {price}")
