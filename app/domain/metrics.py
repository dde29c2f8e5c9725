"""A trader's performance: the running aggregate kept per trader and mode, and the figures
users judge a trader by, derived from it.

The aggregate (`Performance`) is updated by the same bookkeeping that records each fill,
trade close and equity snapshot, so the API reads one row per trader and mode instead of
every trade at every request. It holds only sums and counts (and the equity peak), kept
exactly in Decimal; every figure is derived from it at read time, so a test can recompute
each one from the recorded fills and snapshots and get the same digits.

Definitions (P&L is net of both sides' fees; percentages are 0-100):
- win rate: closed trades with P&L > 0 over closed trades; avg win / avg loss: the mean P&L
  of the winners / of the others; expectancy: the mean P&L per closed trade; profit factor:
  the winners' P&L over the losers' (None without a loss); total P&L percent: relative to
  the closed trades' entry cost.
- from the equity snapshots (one per candle close of the trader's interval): the return of
  each step is `equity / previous - 1`, cut to 12 places; Sharpe is their mean over their
  sample standard deviation, Sortino their mean over the downside deviation
  `sqrt(sum(min(r, 0)^2) / n)`, both annualised by the square root of the steps per year
  (n steps over the time from the first snapshot to the last; None while undefined); max
  drawdown is the largest fall from a running peak.
- time in market: the share of the time since the first record during which at least one
  position was held.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, localcontext

from app.domain.ledger import Ledger

ZERO = Decimal(0)
HUNDRED = Decimal(100)
QUANTUM = Decimal("0.00000001")
RETURN_QUANTUM = Decimal("0.000000000001")
YEAR_MS = 365 * 86_400_000
PRECISION = 60


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
    expectancy: Decimal = ZERO
    profit_factor: Decimal | None = None
    fees_paid: Decimal = ZERO
    unrealised_pnl: Decimal = ZERO
    equity: Decimal | None = None
    max_drawdown: Decimal | None = None
    sharpe_ratio: Decimal | None = None
    sortino_ratio: Decimal | None = None
    time_in_market: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Performance:
    """Running sums of one trader's trading in one mode; times are epoch ms."""

    started_at: int | None = None
    open_positions: int = 0
    closed: int = 0
    wins: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO
    closed_cost: Decimal = ZERO
    fees_paid: Decimal = ZERO
    exposure_ms: int = 0
    exposed_since: int | None = None
    snapshots: int = 0
    first_snapshot_at: int | None = None
    last_equity: Decimal | None = None
    last_snapshot_at: int | None = None
    peak_equity: Decimal | None = None
    max_drawdown: Decimal = ZERO
    returns: int = 0
    return_sum: Decimal = ZERO
    return_squares: Decimal = ZERO
    downside_squares: Decimal = ZERO

    def _started(self, time: int) -> Performance:
        return self if self.started_at is not None else replace(self, started_at=time)

    def after_fee(self, fee: Decimal, time: int) -> Performance:
        return replace(self._started(time), fees_paid=self.fees_paid + fee)

    def after_open(self, time: int) -> Performance:
        started = self._started(time)
        since = time if self.open_positions == 0 else self.exposed_since
        return replace(started, open_positions=self.open_positions + 1, exposed_since=since)

    def after_close(self, pnl: Decimal, cost: Decimal, time: int) -> Performance:
        open_positions = self.open_positions - 1
        exposure, since = self.exposure_ms, self.exposed_since
        if open_positions == 0 and since is not None:
            exposure, since = exposure + time - since, None
        won = pnl > 0
        return replace(
            self,
            open_positions=open_positions,
            exposure_ms=exposure,
            exposed_since=since,
            closed=self.closed + 1,
            wins=self.wins + won,
            gross_profit=self.gross_profit + (pnl if won else ZERO),
            gross_loss=self.gross_loss + (ZERO if won else pnl),
            closed_cost=self.closed_cost + cost,
        )

    def after_snapshot(self, time: int, equity: Decimal) -> Performance:
        started = self._started(time)
        peak = equity if self.peak_equity is None else max(self.peak_equity, equity)
        drawdown = ((peak - equity) / peak * HUNDRED).quantize(QUANTUM) if peak > 0 else ZERO
        changes: dict[str, object] = {}
        if self.last_equity is not None and self.last_equity > 0:
            step = step_return(self.last_equity, equity)
            changes = {
                "returns": self.returns + 1,
                "return_sum": self.return_sum + step,
                "return_squares": self.return_squares + step * step,
                "downside_squares": self.downside_squares + min(step, ZERO) ** 2,
            }
        return replace(
            started,
            snapshots=self.snapshots + 1,
            first_snapshot_at=time if self.first_snapshot_at is None else self.first_snapshot_at,
            last_equity=equity,
            last_snapshot_at=time,
            peak_equity=peak,
            max_drawdown=max(self.max_drawdown, drawdown),
            **changes,  # type: ignore[arg-type]
        )

    @property
    def total_pnl(self) -> Decimal:
        return self.gross_profit + self.gross_loss


def step_return(previous: Decimal, equity: Decimal) -> Decimal:
    return (equity / previous - 1).quantize(RETURN_QUANTUM)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal:
    return (numerator / denominator).quantize(QUANTUM)


def _risk_ratios(perf: Performance) -> tuple[Decimal | None, ...]:
    n = perf.returns
    if n < 2 or perf.first_snapshot_at is None or perf.last_snapshot_at is None:
        return None, None
    span = perf.last_snapshot_at - perf.first_snapshot_at
    if span <= 0:
        return None, None
    with localcontext() as context:
        context.prec = PRECISION
        periods_per_year = Decimal(n * YEAR_MS) / Decimal(span)
        mean = perf.return_sum / n
        variance = (n * perf.return_squares - perf.return_sum**2) / (n * (n - 1))
        scale = periods_per_year.sqrt()
        sharpe = _ratio(mean * scale, variance.sqrt()) if variance > 0 else None
        downside = (perf.downside_squares / n).sqrt()
        sortino = _ratio(mean * scale, downside) if downside > 0 else None
    return sharpe, sortino


def metrics_of(
    perf: Performance,
    *,
    now: int,
    one_account: bool = True,
    total_signals: int = 0,
    last_signal_at: datetime | None = None,
    ledger: Ledger | None = None,
    marks: Mapping[str, Decimal] | None = None,
) -> Metrics:
    """The figures of one trader in one mode, its open positions valued at `marks`; without
    `one_account` (an aggregate of several modes) the account figures are left out."""
    losses = perf.closed - perf.wins
    base = Metrics(
        total_signals=total_signals,
        active_positions=perf.open_positions,
        closed_positions=perf.closed,
        total_pnl=perf.total_pnl,
        total_pnl_percent=_ratio(perf.total_pnl * HUNDRED, perf.closed_cost)
        if perf.closed_cost
        else ZERO,
        win_rate=_ratio(perf.wins * HUNDRED, Decimal(perf.closed)) if perf.closed else ZERO,
        avg_win=_ratio(perf.gross_profit, Decimal(perf.wins)) if perf.wins else ZERO,
        avg_loss=_ratio(perf.gross_loss, Decimal(losses)) if losses else ZERO,
        last_signal_at=last_signal_at,
        expectancy=_ratio(perf.total_pnl, Decimal(perf.closed)) if perf.closed else ZERO,
        profit_factor=_ratio(perf.gross_profit, -perf.gross_loss) if perf.gross_loss else None,
        fees_paid=perf.fees_paid,
        unrealised_pnl=ledger.unrealised_pnl(marks or {}) if ledger is not None else ZERO,
    )
    if not one_account:
        return base
    sharpe, sortino = _risk_ratios(perf)
    exposure = perf.exposure_ms + (now - perf.exposed_since if perf.exposed_since else 0)
    elapsed = now - perf.started_at if perf.started_at is not None else 0
    in_market = _ratio(exposure * HUNDRED, Decimal(elapsed)) if elapsed > 0 else None
    return replace(
        base,
        equity=ledger.equity(marks or {}) if ledger is not None else None,
        max_drawdown=perf.max_drawdown,
        sharpe_ratio=sharpe,
        sortino_ratio=sortino,
        time_in_market=in_market,
    )


def combined(parts: list[Performance]) -> Performance:
    """The trade figures of several aggregates together (the modes of one trader); the
    equity figures, which only mean something per account, are left empty."""
    total = Performance()
    for part in parts:
        total = replace(
            total,
            open_positions=total.open_positions + part.open_positions,
            closed=total.closed + part.closed,
            wins=total.wins + part.wins,
            gross_profit=total.gross_profit + part.gross_profit,
            gross_loss=total.gross_loss + part.gross_loss,
            closed_cost=total.closed_cost + part.closed_cost,
            fees_paid=total.fees_paid + part.fees_paid,
        )
    return total
