"""When a screening result becomes a signal, and when a failing filter stops its trader.

A condition that stays true must not raise a signal at every candle: a signal is due when a
symbol matches now and did not match at the trader's previous run, and no signal of that
trader on that symbol is still active. A failed run tells nothing about which symbols match,
so it leaves the previous matches as they were; `failure_limit` failed runs in a row put the
trader in error.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RunHistory:
    """What a trader's earlier runs left behind: the symbols that matched, the failure streak."""

    matched: frozenset[str] = field(default_factory=frozenset)
    failures: int = 0


def newly_matched(history: RunHistory, matched: Iterable[str]) -> list[str]:
    """Symbols matching now that did not match at the previous run, in the order given."""
    return [symbol for symbol in dict.fromkeys(matched) if symbol not in history.matched]


def signals_due(history: RunHistory, matched: Iterable[str], active: Collection[str]) -> list[str]:
    """Symbols that get a new signal: newly matched and without an active signal already."""
    return [symbol for symbol in newly_matched(history, matched) if symbol not in active]


def after_success(matched: Iterable[str]) -> RunHistory:
    return RunHistory(frozenset(matched), 0)


def after_failure(history: RunHistory) -> RunHistory:
    return RunHistory(history.matched, history.failures + 1)


def should_stop(history: RunHistory, failure_limit: int) -> bool:
    """Whether the failure streak has reached the limit that puts the trader in error."""
    return history.failures >= failure_limit
