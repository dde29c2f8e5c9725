"""The signal lifecycle: only the moves of the table, what a decision moves a signal to, and
which of a signal's changes it had made when it had a given status."""

from __future__ import annotations

import uuid

import pytest

from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction
from app.domain.enums import Side, SignalStatus
from app.domain.signal_lifecycle import (
    REASON_LENGTH,
    TRANSITIONS,
    InvalidTransitionError,
    can_transition,
    changes_made_by,
    check_transition,
    status_after,
)

S = SignalStatus
ALLOWED = {
    (S.NEW, S.READY),
    (S.NEW, S.WATCHING),
    (S.NEW, S.REJECTED),
    (S.WATCHING, S.READY),
    (S.WATCHING, S.REJECTED),
    (S.WATCHING, S.CANCELLED),
    (S.WATCHING, S.EXPIRED),
    (S.READY, S.ENTERED),
    (S.READY, S.CANCELLED),
    (S.READY, S.REJECTED),
}


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_lifecycles_moves_are_allowed(source: S, target: S) -> None:
    assert can_transition(source, target) == ((source, target) in ALLOWED)
    if (source, target) not in ALLOWED:
        with pytest.raises(InvalidTransitionError, match=f"from {source} to {target}"):
            check_transition(source, target)


def _decision(action: DecisionAction, reasoning: str = "trend up") -> Decision:
    return Decision(
        id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        trader_id=uuid.uuid4(),
        action=action,
        direction=Side.LONG,
        confidence=0.72,
        reasoning=reasoning,
        created_at=0,
        engine=AnalysisEngineKind.GEMINI,
        model="gemini-2.5-flash",
    )


def test_a_decision_moves_its_signal_and_says_who_decided() -> None:
    assert status_after(_decision(DecisionAction.ENTER_TRADE)) == (
        S.READY,
        "enter_trade by gemini (gemini-2.5-flash), confidence 0.72: trend up",
    )
    assert status_after(_decision(DecisionAction.GOOD_SETUP))[0] == S.WATCHING
    assert status_after(_decision(DecisionAction.BAD_SETUP))[0] == S.REJECTED


def test_the_reason_is_bounded() -> None:
    _, reason = status_after(_decision(DecisionAction.BAD_SETUP, "x" * 1000))
    assert len(reason) == REASON_LENGTH


def _paths(path: tuple[S, ...]) -> list[tuple[S, ...]]:
    """`path` and every longer path of the lifecycle that continues it."""
    return [path] + [
        longer for target in TRANSITIONS.get(path[-1], ()) for longer in _paths((*path, target))
    ]


PATHS = [path for start in S for path in _paths((start,))]


def test_no_move_returns_to_a_status_it_left() -> None:
    assert all(len(set(path)) == len(path) for path in PATHS)


@pytest.mark.parametrize("path", PATHS, ids=lambda path: "-".join(path))
def test_the_changes_made_by_a_status_are_those_before_it(path: tuple[S, ...]) -> None:
    """Whichever status a signal was read at, the changes read after it are cut back to
    the ones it had made by then."""
    sources = list(path[:-1])
    for made, status in enumerate(path):
        assert changes_made_by(status, sources) == made
