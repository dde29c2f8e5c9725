"""What a backtest asks and what it answers, as plain values: the checks of its window and
data, and its result as one JSON document.

The checks run before anything is replayed, so bad input is a clear error naming the field
(an empty or inverted window, a symbol without candles, a window the data does not cover),
never a run that crashes or silently replays nothing. The result document is what a run
stores, what `backtest(id)` reads and what `traders backtest --json` writes: the metrics,
the equity curve, every trade and decision with its judged outcome, and the decision
quality summary. Decimals travel as strings (no digit lost), times as epoch milliseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from app.domain.decision import Decision
from app.domain.decision_quality import JudgedDecision, Label, QualityReport, summarize
from app.domain.metrics import Metrics
from app.domain.trade import Trade


class BacktestInputError(ValueError):
    """A backtest that cannot run as asked: `field` names the input, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class DataSpan:
    """The candles there are of one symbol at one interval: open times of the first and last."""

    first: int
    last: int


def check_window(start: int, end: int) -> None:
    """A window is [start, end] in epoch ms, and must hold at least one moment."""
    if end <= start:
        raise BacktestInputError(
            "to", f"the window is {'empty' if end == start else 'inverted'}: to must be after from"
        )


def check_data(
    symbols: Sequence[str],
    interval: str,
    spans: Mapping[tuple[str, str], DataSpan],
    start: int,
    end: int,
) -> None:
    """Every asked symbol has candles at `interval`, and some of them lie in the window."""
    unknown = [symbol for symbol in symbols if (symbol, interval) not in spans]
    if unknown:
        raise BacktestInputError(
            "symbols", f"no {interval} candles for {', '.join(unknown)} in the data"
        )
    inside = [
        symbol
        for symbol in symbols
        if spans[(symbol, interval)].first <= end and spans[(symbol, interval)].last >= start
    ]
    if not inside:
        raise BacktestInputError("from", f"the data holds no {interval} candles in the window")


def _plain(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


TRADE_FIELDS = (
    "id",
    "signal_id",
    "symbol",
    "side",
    "status",
    "amount",
    "entry_price",
    "entry_fee",
    "exit_price",
    "exit_fee",
    "stop_loss",
    "take_profit",
    "pnl",
    "pnl_percent",
    "exit_reason",
    "opened_at",
    "closed_at",
)


def _trade(trade: Trade) -> dict[str, Any]:
    return {name: _plain(getattr(trade, name)) for name in TRADE_FIELDS}


def _decision(decision: Decision, symbol: str, label: Label | None) -> dict[str, Any]:
    return {
        "id": str(decision.id),
        "signal_id": str(decision.signal_id),
        "symbol": symbol,
        "action": str(decision.action),
        "direction": str(decision.direction),
        "confidence": decision.confidence,
        "reasoning": decision.reasoning,
        "engine": str(decision.engine),
        "created_at": decision.created_at,
        "levels": _plain(asdict(decision.levels)),
        "outcome": None if label is None else str(label.outcome),
        "outcome_at": None if label is None else label.at,
    }


def quality_of(decisions: Sequence[Decision], labels: Mapping[Any, Label]) -> QualityReport:
    return summarize(
        JudgedDecision(
            str(d.engine),
            d.action,
            d.confidence,
            labels[d.id].outcome if d.id in labels else None,
        )
        for d in decisions
    )


def _quality(report: QualityReport) -> dict[str, Any]:
    return {
        "counts": [
            {**_plain(asdict(c)), "action": str(c.action), "hit_rate": c.hit_rate}  # type: ignore[dict-item]
            for c in report.counts
        ],
        "calibration": [{**asdict(b), "hit_rate": b.hit_rate} for b in report.calibration],
    }


def result_document(
    *,
    metrics: Metrics,
    equity_curve: Sequence[tuple[int, Decimal]],
    trades: Sequence[Trade],
    decisions: Sequence[Decision],
    labels: Mapping[Any, Label],
    symbols_of: Mapping[Any, str],
    signals: int,
    closes: int,
    errors: Mapping[str, str],
) -> dict[str, Any]:
    """The whole result of a run as JSON-able data. `symbols_of` maps signal ids to symbols,
    `labels` decision ids to their judged outcomes. Trades and decisions are in market order
    (time, then symbol), never by their ids, which are fresh in every run."""
    return {
        "metrics": {f.name: _plain(getattr(metrics, f.name)) for f in fields(metrics)},
        "equity_curve": [[time, format(equity, "f")] for time, equity in equity_curve],
        "trades": [_trade(t) for t in sorted(trades, key=lambda t: (t.opened_at, t.symbol))],
        "decisions": [
            _decision(d, symbols_of.get(d.signal_id, ""), labels.get(d.id))
            for d in sorted(
                decisions, key=lambda d: (d.created_at, symbols_of.get(d.signal_id, ""))
            )
        ],
        "decision_quality": _quality(quality_of(decisions, labels)),
        "signals": signals,
        "closes": closes,
        "errors": dict(errors),
    }


SUMMARY_FIELDS = (
    ("closed trades", "closed_positions"),
    ("open trades", "active_positions"),
    ("total P&L", "total_pnl"),
    ("P&L %", "total_pnl_percent"),
    ("win rate %", "win_rate"),
    ("profit factor", "profit_factor"),
    ("max drawdown %", "max_drawdown"),
    ("Sharpe", "sharpe_ratio"),
    ("fees paid", "fees_paid"),
    ("final equity", "equity"),
)


def summary_rows(document: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The summary a person reads first: (label, value) rows of a result document."""
    metrics = document["metrics"]
    rows = [
        (label, "-" if metrics[key] is None else str(metrics[key])) for label, key in SUMMARY_FIELDS
    ]
    rows += [
        ("signals", str(document["signals"])),
        ("decisions", str(len(document["decisions"]))),
        ("closes replayed", str(document["closes"])),
    ]
    return rows


def symbols_in(spans: Collection[tuple[str, str]], interval: str) -> list[str]:
    """Every symbol the data has at `interval`, sorted."""
    return sorted(symbol for symbol, each in spans if each == interval)
