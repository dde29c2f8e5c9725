"""Decision quality on scripted candles: outcomes, counts, hit rates and calibration."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.decision import DecisionAction, KeyLevels
from app.domain.decision_quality import (
    JudgedDecision,
    Label,
    Outcome,
    label_outcome,
    summarize,
)
from app.domain.enums import Side

LONG = KeyLevels(Decimal(100), Decimal(95), (Decimal(110), Decimal(120)))
SHORT = KeyLevels(Decimal(100), Decimal(105), (Decimal(90),))
HOUR = 3_600_000


def candles(*bars: tuple[float, float]) -> tuple[list[float], list[float], list[float]]:
    """(high, low) bars, one an hour from time 0."""
    times = [float(i * HOUR) for i in range(len(bars))]
    return times, [high for high, _ in bars], [low for _, low in bars]


@pytest.mark.parametrize(
    ("bars", "expected"),
    [
        ([(101, 99), (111, 100)], Label(Outcome.TARGET, 2, HOUR)),
        ([(101, 99), (100, 94)], Label(Outcome.STOP, 2, HOUR)),
        ([(111, 94)], Label(Outcome.STOP, 1, 0)),
        ([(101, 99), (102, 98), (103, 97)], Label(Outcome.NEITHER, 3, 2 * HOUR)),
        ([(101, 99)], None),
    ],
    ids=[
        "target first",
        "stop first",
        "both in one candle counts as the stop",
        "neither",
        "pending",
    ],
)
def test_a_long_is_judged_by_what_came_first(
    bars: list[tuple[float, float]], expected: Label | None
) -> None:
    assert label_outcome(Side.LONG, LONG, 0, *candles(*bars), horizon=3) == expected


def test_a_short_is_the_mirror() -> None:
    assert label_outcome(Side.SHORT, SHORT, 0, *candles((106, 89))) == Label(Outcome.STOP, 1, 0)
    assert label_outcome(Side.SHORT, SHORT, 0, *candles((101, 95), (100, 89))) == Label(
        Outcome.TARGET, 2, HOUR
    )


def test_candles_before_the_decision_are_not_read() -> None:
    times, highs, lows = candles((130, 80), (101, 99), (111, 100))
    assert label_outcome(Side.LONG, LONG, HOUR, times, highs, lows) == Label(
        Outcome.TARGET, 2, 2 * HOUR
    )


def test_a_decision_without_usable_levels_is_unlabelled() -> None:
    wrong_side = KeyLevels(Decimal(100), Decimal(105), (Decimal(110),))
    for levels in (KeyLevels(), wrong_side):
        assert label_outcome(Side.LONG, levels, 0, *candles((101, 99))) == Label(
            Outcome.UNLABELLED, 0, None
        )


def judged(engine: str, action: DecisionAction, confidence: float, outcome: Outcome | None):
    return JudgedDecision(engine, action, confidence, outcome)


def test_counts_hit_rates_and_calibration_per_engine() -> None:
    E, G, B = DecisionAction.ENTER_TRADE, DecisionAction.GOOD_SETUP, DecisionAction.BAD_SETUP
    T, S, N = Outcome.TARGET, Outcome.STOP, Outcome.NEITHER
    decisions = [
        judged("gemini", E, 0.9, T),
        judged("gemini", E, 0.85, T),
        judged("gemini", E, 0.7, S),
        judged("gemini", E, 0.65, T),
        judged("gemini", B, 0.1, S),
        judged("gemini", B, 0.15, S),
        judged("gemini", B, 0.3, T),
        judged("gemini", B, 0.2, None),
        judged("gemini", B, 0.0, Outcome.UNLABELLED),
        judged("rules", G, 0.55, N),
        judged("rules", G, 0.5, T),
    ]
    report = summarize(decisions)
    counts = {(c.engine, c.action): c for c in report.counts}
    assert list(counts) == [("gemini", E), ("gemini", B), ("rules", G)]
    entered, rejected, watched = counts.values()
    assert (entered.decisions, entered.target, entered.stop, entered.hit_rate) == (4, 3, 1, 0.75)
    assert (rejected.decisions, rejected.pending, rejected.unlabelled) == (5, 1, 1)
    assert (rejected.target, rejected.stop, rejected.hit_rate) == (1, 2, pytest.approx(1 / 3))
    assert entered.hit_rate is not None and rejected.hit_rate is not None
    assert entered.hit_rate > rejected.hit_rate  # rejected setups failed more often
    assert (watched.neither, watched.hit_rate) == (1, 0.5)

    gemini = [b for b in report.calibration if b.engine == "gemini"]
    assert [(b.low, b.high) for b in gemini] == [
        (0.0, 0.2),
        (0.2, 0.4),
        (0.4, 0.6),
        (0.6, 0.8),
        (0.8, 1.0),
    ]
    assert [(b.decisions, b.hits) for b in gemini] == [(2, 0), (1, 1), (0, 0), (2, 1), (2, 2)]
    assert [b.hit_rate for b in gemini] == [0.0, 1.0, None, 0.5, 1.0]
    assert gemini[3].mean_confidence == pytest.approx(0.675)
    rules = [b for b in report.calibration if b.engine == "rules"]
    assert [(b.decisions, b.hits) for b in rules] == [(0, 0), (0, 0), (2, 1), (0, 0), (0, 0)]


def test_a_confidence_of_one_falls_in_the_last_bucket() -> None:
    report = summarize([judged("rules", DecisionAction.ENTER_TRADE, 1.0, Outcome.TARGET)])
    assert report.calibration[-1].decisions == 1
