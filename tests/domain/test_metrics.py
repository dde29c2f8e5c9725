"""The performance aggregate and the figures derived from it, on small hand-made cases."""

from datetime import UTC, datetime
from decimal import Decimal

from app.domain.ledger import Ledger
from app.domain.metrics import Performance, combined, metrics_of

HOUR = 3_600_000


def closed(*pnls: str) -> Performance:
    perf = Performance()
    for n, pnl in enumerate(pnls):
        perf = perf.after_open(n * HOUR).after_close(Decimal(pnl), Decimal(100), n * HOUR + 1)
    return perf


def test_no_trades_gives_zeros() -> None:
    metrics = metrics_of(Performance(), now=0)
    assert (metrics.total_pnl, metrics.win_rate, metrics.closed_positions) == (0, 0, 0)
    assert metrics.profit_factor is None and metrics.sharpe_ratio is None


def test_wins_losses_and_open_positions() -> None:
    last = datetime(2026, 1, 1, tzinfo=UTC)
    perf = closed("15", "5", "-8").after_open(10 * HOUR)
    metrics = metrics_of(perf, now=11 * HOUR, total_signals=7, last_signal_at=last)
    assert metrics.total_signals == 7
    assert metrics.active_positions == 1
    assert metrics.closed_positions == 3
    assert metrics.total_pnl == Decimal("12")
    assert metrics.total_pnl_percent == Decimal("4")
    assert metrics.win_rate == Decimal("66.66666667")
    assert metrics.avg_win == Decimal("10")
    assert metrics.avg_loss == Decimal("-8")
    assert metrics.expectancy == Decimal("4")
    assert metrics.profit_factor == Decimal("2.5")
    assert metrics.last_signal_at == last


def test_break_even_counts_as_not_a_win() -> None:
    assert metrics_of(closed("0"), now=1).win_rate == 0


def test_time_in_market_counts_overlapping_positions_once() -> None:
    perf = Performance().after_snapshot(0, Decimal(100))
    perf = perf.after_open(HOUR).after_open(2 * HOUR)
    perf = perf.after_close(Decimal(1), Decimal(10), 3 * HOUR)
    perf = perf.after_close(Decimal(1), Decimal(10), 4 * HOUR)
    assert metrics_of(perf, now=10 * HOUR).time_in_market == Decimal(30)
    assert metrics_of(perf.after_open(8 * HOUR), now=10 * HOUR).time_in_market == Decimal(50)


def test_drawdown_and_ratios_from_snapshots() -> None:
    perf = Performance()
    for n, equity in enumerate(("100", "110", "99", "104.5", "120")):
        perf = perf.after_snapshot(n * HOUR, Decimal(equity))
    metrics = metrics_of(perf, now=4 * HOUR, ledger=Ledger.opened(Decimal(120)))
    assert metrics.max_drawdown == Decimal(10)
    assert metrics.sharpe_ratio is not None and metrics.sharpe_ratio > 0
    assert metrics.sortino_ratio is not None and metrics.sortino_ratio > metrics.sharpe_ratio
    assert metrics.equity == Decimal(120)


def test_modes_combined_keep_trade_figures_and_drop_account_figures() -> None:
    together = combined([closed("10"), closed("-4")])
    metrics = metrics_of(together, now=HOUR, one_account=False)
    assert (metrics.closed_positions, metrics.total_pnl) == (2, Decimal(6))
    assert metrics.max_drawdown is None and metrics.equity is None
