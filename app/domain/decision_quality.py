"""Was the analysis right? Each decision judged on the candles that followed it.

Nobody else measures this, and without it a model's confidence is only a number. From a
decision's entry, the candles opening after the decision (`as_of`) are read one by one for
up to `horizon` candles: the first take profit reached first is a hit (`target`), the stop
reached first a miss (`stop`), neither within the horizon is `neither`. A candle that
touches both counts as the stop: the order within one candle is unknown, and the cautious
reading is the honest one. Rejected setups are judged the same way (the engines give their
levels too), which is what shows whether the setups a model turns down fail more often than
the ones it takes. A decision without usable levels is `unlabelled`.

`summarize` turns judged decisions into counts and hit rates per engine and action, and a
calibration table per engine: confidence buckets against the hit rate they realised (a
calibrated engine's 0.6-0.8 bucket hits about 70% of the time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from app.domain.decision import DecisionAction, KeyLevels
from app.domain.decision_rules import levels_ordered
from app.domain.enums import Side

DEFAULT_HORIZON = 24
DEFAULT_BUCKETS = 5


class Outcome(StrEnum):
    TARGET = "target"
    STOP = "stop"
    NEITHER = "neither"
    UNLABELLED = "unlabelled"


@dataclass(frozen=True, slots=True)
class Label:
    """A decision's outcome, the candles it took to know it, and the open time of the
    candle that settled it (None for an unlabelled decision)."""

    outcome: Outcome
    candles: int
    at: int | None


def label_outcome(
    direction: Side,
    levels: KeyLevels,
    as_of: int,
    times: Sequence[float],
    highs: Sequence[float],
    lows: Sequence[float],
    horizon: int = DEFAULT_HORIZON,
) -> Label | None:
    """The outcome of a decision made at `as_of`, or None while it is not known yet (fewer
    than `horizon` candles since, and neither level reached)."""
    if not levels_ordered(direction, levels):
        return Label(Outcome.UNLABELLED, 0, None)
    assert levels.stop_loss is not None and levels.first_target is not None
    stop, target = float(levels.stop_loss), float(levels.first_target)
    long = direction == Side.LONG
    seen = 0
    for time, high, low in zip(times, highs, lows, strict=True):
        if time < as_of:
            continue
        seen += 1
        if (low <= stop) if long else (high >= stop):
            return Label(Outcome.STOP, seen, int(time))
        if (high >= target) if long else (low <= target):
            return Label(Outcome.TARGET, seen, int(time))
        if seen >= horizon:
            return Label(Outcome.NEITHER, seen, int(time))
    return None


@dataclass(frozen=True, slots=True)
class JudgedDecision:
    """What the summary needs of one decision; `outcome` None while it is pending."""

    engine: str
    action: DecisionAction
    confidence: float
    outcome: Outcome | None


@dataclass(frozen=True, slots=True)
class OutcomeCounts:
    engine: str
    action: DecisionAction
    decisions: int
    pending: int
    unlabelled: int
    target: int
    stop: int
    neither: int

    @property
    def judged(self) -> int:
        return self.target + self.stop + self.neither

    @property
    def hit_rate(self) -> float | None:
        """Share of the judged decisions whose first take profit came first."""
        return self.target / self.judged if self.judged else None


@dataclass(frozen=True, slots=True)
class CalibrationBucket:
    """Judged decisions of one engine whose confidence lies in [low, high) (the last bucket
    includes 1.0), their mean confidence and realised hit rate."""

    engine: str
    low: float
    high: float
    decisions: int
    hits: int
    mean_confidence: float | None

    @property
    def hit_rate(self) -> float | None:
        return self.hits / self.decisions if self.decisions else None


@dataclass(frozen=True, slots=True)
class QualityReport:
    counts: tuple[OutcomeCounts, ...]
    calibration: tuple[CalibrationBucket, ...]


def _bucket(confidence: float, buckets: int) -> int:
    return min(int(confidence * buckets), buckets - 1)


def summarize(decisions: Iterable[JudgedDecision], buckets: int = DEFAULT_BUCKETS) -> QualityReport:
    """Counts per (engine, action) and calibration per engine, in a stable order."""
    grouped: dict[tuple[str, DecisionAction], list[JudgedDecision]] = defaultdict(list)
    for decision in decisions:
        grouped[(decision.engine, decision.action)].append(decision)
    action_order = list(DecisionAction)
    keys = sorted(grouped, key=lambda key: (key[0], action_order.index(key[1])))
    counts = tuple(_counts(engine, action, grouped[(engine, action)]) for engine, action in keys)
    calibration = []
    for engine in sorted({engine for engine, _ in keys}):
        judged = [
            d
            for (e, _), group in grouped.items()
            if e == engine
            for d in group
            if d.outcome in (Outcome.TARGET, Outcome.STOP, Outcome.NEITHER)
        ]
        calibration += _calibration(engine, judged, buckets)
    return QualityReport(counts, tuple(calibration))


def _counts(engine: str, action: DecisionAction, group: list[JudgedDecision]) -> OutcomeCounts:
    outcomes = [d.outcome for d in group]
    return OutcomeCounts(
        engine=engine,
        action=action,
        decisions=len(group),
        pending=outcomes.count(None),
        unlabelled=outcomes.count(Outcome.UNLABELLED),
        target=outcomes.count(Outcome.TARGET),
        stop=outcomes.count(Outcome.STOP),
        neither=outcomes.count(Outcome.NEITHER),
    )


def _calibration(
    engine: str, judged: list[JudgedDecision], buckets: int
) -> list[CalibrationBucket]:
    members: dict[int, list[JudgedDecision]] = defaultdict(list)
    for decision in judged:
        members[_bucket(decision.confidence, buckets)].append(decision)
    table = []
    for index in range(buckets):
        group = members.get(index, [])
        table.append(
            CalibrationBucket(
                engine=engine,
                low=index / buckets,
                high=(index + 1) / buckets,
                decisions=len(group),
                hits=sum(d.outcome == Outcome.TARGET for d in group),
                mean_confidence=sum(d.confidence for d in group) / len(group) if group else None,
            )
        )
    return table
