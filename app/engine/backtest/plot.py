"""The equity curve of a backtest as a PNG, with its trades marked where they opened and
closed (green entries, red exits at a loss, blue exits at a profit).

It draws from the result document alone, so a stored run can be drawn again without being
replayed. matplotlib's Agg canvas writes the file: no display is needed.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any


def _at(ms: int) -> float:
    """Epoch ms as matplotlib's date number (the axis is a date axis)."""
    from matplotlib.dates import date2num

    return float(date2num(datetime.fromtimestamp(ms / 1000, UTC)))


def _equity_at(curve: list[tuple[int, float]], times: list[int], ms: int) -> float:
    """The equity of the last snapshot at or before `ms` (the first one before it)."""
    return curve[max(0, bisect.bisect_right(times, ms) - 1)][1]


def plot_equity(document: Mapping[str, Any], path: str | Path, title: str = "") -> Path:
    from matplotlib.figure import Figure

    curve = [(int(t), float(Decimal(e))) for t, e in document["equity_curve"]]
    times = [t for t, _ in curve]
    figure = Figure(figsize=(11, 5), dpi=100)
    axes = figure.add_subplot()
    if curve:
        axes.plot([_at(t) for t, _ in curve], [e for _, e in curve], color="black", lw=1)
        axes.xaxis_date()
        marks: dict[str, tuple[list[float], list[float]]] = {
            "entry": ([], []),
            "exit at a profit": ([], []),
            "exit at a loss": ([], []),
        }
        for trade in document["trades"]:
            opened = int(trade["opened_at"])
            marks["entry"][0].append(_at(opened))
            marks["entry"][1].append(_equity_at(curve, times, opened))
            if trade["closed_at"] is not None:
                closed = int(trade["closed_at"])
                won = trade["pnl"] is not None and Decimal(trade["pnl"]) > 0
                kind = "exit at a profit" if won else "exit at a loss"
                marks[kind][0].append(_at(closed))
                marks[kind][1].append(_equity_at(curve, times, closed))
        styles = {"entry": ("^", "green"), "exit at a profit": ("v", "blue")}
        for label, (at, values) in marks.items():
            marker, color = styles.get(label, ("v", "red"))
            if at:
                axes.scatter(at, values, marker=marker, color=color, s=24, label=label)
        if document["trades"]:
            axes.legend(loc="best")
    axes.set_title(title or "equity")
    axes.set_ylabel("equity")
    axes.grid(alpha=0.3)
    figure.autofmt_xdate()
    target = Path(path)
    figure.savefig(target, format="png")
    return target
