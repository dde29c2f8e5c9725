"""RiskManager: whether a trader may enter now, and with how much; when it must stop.

Consulted before every entry, it answers with a sized `EntryPlan` or a `Refusal` that names
the rule and says why in words the user reads on the signal. The rules, in order:

- spot only: a short entry is refused (it needs margin, which spot accounts do not have);
- one position per symbol, and at most `max_positions` at once (pending entries count);
- protections (freqtrade's): a `cooldown_candles` pause on a symbol after any exit there,
  and a stop-loss guard: `stop_loss_guard` stop-outs within `stop_loss_guard_candles`
  candles lock every new entry for that many candles after the last of them;
- size: `position_size_percent` of the equity (10% when unset), as an amount on the
  market's step, at least its minimum amount and minimum notional, and at most the fill
  model's `volume_share` of the last candle's volume (an entry the market cannot absorb is
  made smaller, and refused for liquidity when that is below the minimums);
- balance: when the cash cannot pay for that size (fees and slippage included) the size
  shrinks to what it can pay for, and is refused below the market's minimums.

`drawdown_reached` is the other half: a trader whose equity fell `max_drawdown` percent
below its peak must close its positions and pause. Pure: every input is passed in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from app.domain.enums import ExitReason, Side
from app.domain.fill_model import FillModel, Quote
from app.domain.instrument import Instrument
from app.domain.trader_spec import RiskSettings

HUNDRED = Decimal(100)
DEFAULT_POSITION_SIZE_PERCENT = Decimal(10)
STOP_REASONS = frozenset({ExitReason.STOP_LOSS, ExitReason.TRAILING_STOP})


@dataclass(frozen=True, slots=True)
class PastExit:
    """A position of the trader that closed: where, when (epoch ms), why, and its P&L."""

    symbol: str
    time: int
    reason: ExitReason | None
    pnl: Decimal

    @property
    def stopped_out(self) -> bool:
        return self.reason in STOP_REASONS and self.pnl < 0


@dataclass(frozen=True, slots=True)
class Account:
    """What the risk manager needs of a trader's account at the moment of an entry."""

    equity: Decimal
    cash: Decimal
    active_symbols: Collection[str]
    exits: Sequence[PastExit] = ()


@dataclass(frozen=True, slots=True)
class EntryPlan:
    amount: Decimal
    expected_price: Decimal
    estimated_cost: Decimal


@dataclass(frozen=True, slots=True)
class Refusal:
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"refused by risk ({self.rule}): {self.reason}"


@dataclass(frozen=True, slots=True)
class RiskManager:
    fill_model: FillModel = field(default_factory=FillModel)

    def lookback_ms(self, risk: RiskSettings, interval_ms: int) -> int:
        """How far back the protections look at past exits."""
        guard = 2 * (risk.stop_loss_guard_candles or 0)
        return max(risk.cooldown_candles or 0, guard) * interval_ms

    def assess_entry(
        self,
        *,
        symbol: str,
        side: Side,
        risk: RiskSettings,
        account: Account,
        quote: Quote | None,
        instrument: Instrument,
        now: int,
        interval_ms: int,
    ) -> EntryPlan | Refusal:
        if side != Side.LONG:
            return Refusal("spot_only", "a short entry needs margin; this trader trades spot")
        refusal = self._positions(symbol, risk, account) or self._protections(
            symbol, risk, account, now, interval_ms
        )
        if refusal is not None:
            return refusal
        if quote is None or quote.last <= 0:
            return Refusal("no_price", f"no price for {symbol} yet")
        return self._size(symbol, risk, account, quote, instrument)

    @staticmethod
    def _positions(symbol: str, risk: RiskSettings, account: Account) -> Refusal | None:
        if symbol in account.active_symbols:
            return Refusal("position_open", f"a position on {symbol} is already open")
        held = len(account.active_symbols)
        if risk.max_positions is not None and held >= risk.max_positions:
            return Refusal(
                "max_positions", f"{held} positions open, maxPositions is {risk.max_positions}"
            )
        return None

    @staticmethod
    def _protections(
        symbol: str, risk: RiskSettings, account: Account, now: int, interval_ms: int
    ) -> Refusal | None:
        if risk.cooldown_candles:
            until = max((e.time for e in account.exits if e.symbol == symbol), default=None)
            if until is not None and now < until + risk.cooldown_candles * interval_ms:
                return Refusal(
                    "cooldown",
                    f"{symbol} was exited {(now - until) // interval_ms} candles ago; "
                    f"cooldownCandles is {risk.cooldown_candles}",
                )
        if risk.stop_loss_guard and risk.stop_loss_guard_candles:
            window = risk.stop_loss_guard_candles * interval_ms
            stops = sorted(e.time for e in account.exits if e.stopped_out)
            locked_until = max(
                (
                    time + window
                    for index, time in enumerate(stops)
                    if sum(time - window <= t <= time for t in stops[: index + 1])
                    >= risk.stop_loss_guard
                ),
                default=None,
            )
            if locked_until is not None and now < locked_until:
                return Refusal(
                    "stop_loss_guard",
                    f"{risk.stop_loss_guard} stop-outs within {risk.stop_loss_guard_candles} "
                    f"candles lock new entries for {risk.stop_loss_guard_candles} candles",
                )
        return None

    def _size(
        self,
        symbol: str,
        risk: RiskSettings,
        account: Account,
        quote: Quote,
        instrument: Instrument,
    ) -> EntryPlan | Refusal:
        percent = risk.position_size_percent or DEFAULT_POSITION_SIZE_PERCENT
        wanted = account.equity * percent / HUNDRED
        amount = instrument.floor_amount(wanted / quote.last)
        minimums = self._below_minimums(symbol, amount, quote, instrument)
        if minimums is not None:
            return Refusal(
                minimums[0],
                f"{percent}% of the equity is {wanted:.2f} {instrument.quote}; {minimums[1]}",
            )
        if quote.volume is not None:
            share = self.fill_model.volume_share
            amount = min(amount, instrument.floor_amount(share * quote.volume))
            if self._below_minimums(symbol, amount, quote, instrument) is not None:
                return Refusal(
                    "liquidity",
                    f"{symbol}'s last candle traded {quote.volume}; an entry takes at most "
                    f"{share * HUNDRED:g}% of it, less than the market's minimum order",
                )
        cost = self.fill_model.estimated_cost(amount, quote, instrument)
        while cost > account.cash and amount > 0:
            amount = instrument.floor_amount(
                min(amount * account.cash / cost, amount - instrument.amount_step)
            )
            cost = self.fill_model.estimated_cost(amount, quote, instrument) if amount > 0 else cost
        if amount <= 0 or self._below_minimums(symbol, amount, quote, instrument) is not None:
            return Refusal(
                "balance",
                f"{account.cash:.2f} {instrument.quote} available buys less than {symbol}'s "
                f"minimum of {instrument.min_notional} {instrument.quote}",
            )
        return EntryPlan(amount, quote.last, cost)

    @staticmethod
    def _below_minimums(
        symbol: str, amount: Decimal, quote: Quote, instrument: Instrument
    ) -> tuple[str, str] | None:
        if amount < instrument.min_amount:
            return "min_amount", f"{symbol} trades at least {instrument.min_amount}"
        if amount * quote.last < instrument.min_notional:
            return (
                "min_notional",
                f"{symbol} needs an order worth at least {instrument.min_notional} "
                f"{instrument.quote}",
            )
        return None

    @staticmethod
    def drawdown(peak: Decimal, equity: Decimal) -> Decimal:
        """How far `equity` is below `peak`, in percent (0 at or above the peak)."""
        return max((peak - equity) / peak * HUNDRED, Decimal(0)) if peak > 0 else Decimal(0)

    def drawdown_reached(self, risk: RiskSettings, peak: Decimal, equity: Decimal) -> bool:
        return risk.max_drawdown is not None and self.drawdown(peak, equity) >= risk.max_drawdown
