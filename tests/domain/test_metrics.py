from datetime import UTC, datetime
from decimal import Decimal

from app.domain.enums import TradeStatus
from app.domain.metrics import TradeFigures, compute_metrics


def test_no_trades_gives_zeros() -> None:
    metrics = compute_metrics([], 0, None)
    assert (metrics.total_pnl, metrics.win_rate, metrics.closed_positions) == (0, 0, 0)


def test_wins_losses_and_open_positions() -> None:
    last = datetime(2026, 1, 1, tzinfo=UTC)
    trades = [
        TradeFigures(TradeStatus.CLOSED, Decimal("15"), Decimal("100")),
        TradeFigures(TradeStatus.CLOSED, Decimal("5"), Decimal("100")),
        TradeFigures(TradeStatus.CLOSED, Decimal("-8"), Decimal("100")),
        TradeFigures(TradeStatus.OPEN, None, Decimal("100")),
    ]
    metrics = compute_metrics(trades, 7, last)
    assert metrics.total_signals == 7
    assert metrics.active_positions == 1
    assert metrics.closed_positions == 3
    assert metrics.total_pnl == Decimal("12")
    assert metrics.total_pnl_percent == Decimal("4")
    assert metrics.win_rate == Decimal("66.66666667")
    assert metrics.avg_win == Decimal("10")
    assert metrics.avg_loss == Decimal("-8")
    assert metrics.last_signal_at == last


def test_break_even_counts_as_not_a_win() -> None:
    metrics = compute_metrics([TradeFigures(TradeStatus.CLOSED, Decimal(0), Decimal(10))])
    assert metrics.win_rate == 0
