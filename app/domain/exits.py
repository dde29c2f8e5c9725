"""Where a position's protective exits lie, and whether a price update reaches one.

`exit_levels` places the stop loss and take profit of a new position: the analysis's key
levels when it gave usable ones (a stop below the entry, a target above it), else the
trader's risk settings as percentages of the entry price. `scan` walks one price update
(a tick, or a candle along its assumed path open, low, high, close; see
`app.domain.fill_model`) and says whether the stop, the trailing stop or the target is
reached, and at what price:

1. at the open: a position that opens beyond its stop (or target) exits at the open;
2. on the way to the low: the stop, or the trailing stop as it stood, exits at its level;
3. on the way to the high: the target exits at its level;
4. from the high to the close: the trailing stop, raised by the new high, exits at its level.

Because the low comes before the high, a candle that holds both the stop and the target
takes the stop: the worst case. The same code scans live ticks and backtest candles.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.domain.decision import KeyLevels
from app.domain.enums import ExitReason
from app.domain.fill_model import Bar
from app.domain.instrument import Instrument
from app.domain.trade import Trade
from app.domain.trader_spec import RiskSettings

ONE = Decimal(1)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class ExitTrigger:
    reason: ExitReason
    price: Decimal


@dataclass(frozen=True, slots=True)
class Review:
    """The analysis's answer on an open position: hold it, or close it, and why."""

    close: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Scan:
    """What one price update did to a position: its new high-water mark, and an exit."""

    highest: Decimal | None
    trigger: ExitTrigger | None = None


def exit_levels(
    entry: Decimal, risk: RiskSettings, levels: KeyLevels | None, instrument: Instrument
) -> tuple[Decimal | None, Decimal | None]:
    """(stop loss, take profit) of a long entered at `entry`, on the market's tick."""
    stop = levels.stop_loss if levels is not None else None
    if stop is None or not 0 < stop < entry:
        stop = None if risk.stop_loss is None else entry * (ONE - risk.stop_loss / HUNDRED)
    targets = [t for t in (levels.take_profits if levels else ()) if t > entry]
    target = targets[0] if targets else None
    if target is None and risk.take_profit is not None:
        target = entry * (ONE + risk.take_profit / HUNDRED)
    return (
        None if stop is None else instrument.round_price(stop, up=True),
        None if target is None else instrument.round_price(target, up=False),
    )


def trailing_level(trade: Trade, highest: Decimal | None) -> Decimal | None:
    if trade.trailing_stop is None or highest is None:
        return None
    return highest * (ONE - trade.trailing_stop / HUNDRED)


def _protective(trade: Trade, highest: Decimal | None) -> tuple[Decimal, ExitReason] | None:
    """The higher of the stop loss and the trailing stop, with its reason."""
    candidates = []
    if trade.stop_loss is not None:
        candidates.append((trade.stop_loss, 1, ExitReason.STOP_LOSS))
    trail = trailing_level(trade, highest)
    if trail is not None:
        candidates.append((trail, 0, ExitReason.TRAILING_STOP))
    if not candidates:
        return None
    level, _, reason = max(candidates)
    return level, reason


def scan(trade: Trade, bar: Bar) -> Scan:
    """Whether `bar` takes the position out; see the module docstring for the path."""
    highest = trade.highest_price
    protective = _protective(trade, highest)
    target = trade.take_profit
    if protective is not None and bar.open <= protective[0]:
        return Scan(highest, ExitTrigger(protective[1], bar.open))
    if target is not None and bar.open >= target:
        return Scan(highest, ExitTrigger(ExitReason.TAKE_PROFIT, bar.open))
    if protective is not None and bar.low <= protective[0]:
        return Scan(highest, ExitTrigger(protective[1], protective[0]))
    if target is not None and bar.high >= target:
        return Scan(highest, ExitTrigger(ExitReason.TAKE_PROFIT, target))
    highest = bar.high if highest is None else max(highest, bar.high)
    trail = trailing_level(trade, highest)
    if trail is not None and bar.close <= trail:
        return Scan(highest, ExitTrigger(ExitReason.TRAILING_STOP, trail))
    return Scan(highest)
