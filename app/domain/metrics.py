"""A trader's performance figures, computed from its trades and signals.

Pure arithmetic on Decimals, so the API, the engine and reports agree to the last digit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from app.domain.enums import TradeStatus

ZERO = Decimal(0)
HUNDRED = Decimal(100)
QUANTUM = Decimal("0.00000001")


@dataclass(frozen=True, slots=True)
class TradeFigures:
    """What metrics need of one trade: its status, its P&L when closed, its entry cost."""

    status: TradeStatus
    pnl: Decimal | None
    cost: Decimal


@dataclass(frozen=True, slots=True)
class Metrics:
    total_signals: int = 0
    active_positions: int = 0
    closed_positions: int = 0
    total_pnl: Decimal = ZERO
    total_pnl_percent: Decimal = ZERO
    win_rate: Decimal = ZERO
    avg_win: Decimal = ZERO
    avg_loss: Decimal = ZERO
    last_signal_at: datetime | None = None


def _mean(values: list[Decimal]) -> Decimal:
    return (sum(values, ZERO) / len(values)).quantize(QUANTUM) if values else ZERO


def compute_metrics(
    trades: Iterable[TradeFigures], total_signals: int = 0, last_signal_at: datetime | None = None
) -> Metrics:
    """Win rate and P&L percent are percentages; P&L percent is relative to closed cost."""
    active = 0
    wins: list[Decimal] = []
    losses: list[Decimal] = []
    closed_cost = ZERO
    for trade in trades:
        if trade.status == TradeStatus.OPEN:
            active += 1
            continue
        pnl = trade.pnl or ZERO
        closed_cost += trade.cost
        (wins if pnl > 0 else losses).append(pnl)
    closed = len(wins) + len(losses)
    total_pnl = sum(wins, ZERO) + sum(losses, ZERO)
    return Metrics(
        total_signals=total_signals,
        active_positions=active,
        closed_positions=closed,
        total_pnl=total_pnl,
        total_pnl_percent=(total_pnl / closed_cost * HUNDRED).quantize(QUANTUM)
        if closed_cost
        else ZERO,
        win_rate=(Decimal(len(wins)) / closed * HUNDRED).quantize(QUANTUM) if closed else ZERO,
        avg_win=_mean(wins),
        avg_loss=_mean(losses),
        last_signal_at=last_signal_at,
    )
