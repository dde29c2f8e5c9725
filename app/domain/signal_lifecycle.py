"""Which status a signal may move to from the one it has, and what a decision moves it to.

A signal's status is the queue between the stages, so a move that skips a stage (a rejected
signal traded, an expired one re-opened) would be a bug that loses or doubles work. Every
repository checks its transitions here before it writes one, whoever asks: the analyzer
(new -> ready | watching | rejected), the signal monitor (watching -> ready | rejected |
cancelled | expired) and the trade stage (ready -> entered, or cancelled / rejected when
risk refuses it). The statuses that are not listed as a source are final.
"""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.decision import Decision, DecisionAction
from app.domain.enums import SignalStatus

TRANSITIONS: dict[SignalStatus, frozenset[SignalStatus]] = {
    SignalStatus.NEW: frozenset({SignalStatus.READY, SignalStatus.WATCHING, SignalStatus.REJECTED}),
    SignalStatus.WATCHING: frozenset(
        {
            SignalStatus.READY,
            SignalStatus.REJECTED,
            SignalStatus.CANCELLED,
            SignalStatus.EXPIRED,
        }
    ),
    SignalStatus.READY: frozenset(
        {SignalStatus.ENTERED, SignalStatus.CANCELLED, SignalStatus.REJECTED}
    ),
}

STATUS_OF_ACTION: dict[DecisionAction, SignalStatus] = {
    DecisionAction.ENTER_TRADE: SignalStatus.READY,
    DecisionAction.GOOD_SETUP: SignalStatus.WATCHING,
    DecisionAction.BAD_SETUP: SignalStatus.REJECTED,
}

REASON_LENGTH = 300


class InvalidTransitionError(ValueError):
    def __init__(self, source: SignalStatus, target: SignalStatus) -> None:
        super().__init__(f"a signal cannot move from {source} to {target}")
        self.source = source
        self.target = target


def can_transition(source: SignalStatus, target: SignalStatus) -> bool:
    return target in TRANSITIONS.get(source, frozenset())


def check_transition(source: SignalStatus, target: SignalStatus) -> None:
    """Raise `InvalidTransitionError` unless `source -> target` is a move of the lifecycle."""
    if not can_transition(source, target):
        raise InvalidTransitionError(source, target)


def changes_made_by(status: SignalStatus, sources: Sequence[SignalStatus]) -> int:
    """How many of a signal's status changes (their source statuses, oldest first) it had
    made when it had `status`.

    No move of the lifecycle returns to a status it left, so the changes made later are
    exactly those from `status` on. A reader that got the signal in one query and its
    changes in a later one (as a GraphQL field of the signal does) keeps the first ones
    only, and never shows a status together with a change out of it.
    """
    for index, source in enumerate(sources):
        if source == status:
            return index
    return len(sources)


def status_after(decision: Decision) -> tuple[SignalStatus, str]:
    """The status a decision puts its signal in, and the reason recorded with the move."""
    engine = decision.engine.value + (f" ({decision.model})" if decision.model else "")
    why = decision.invalid_reason or decision.reasoning
    reason = f"{decision.action} by {engine}, confidence {decision.confidence:.2f}: {why}"
    if len(reason) > REASON_LENGTH:
        reason = reason[: REASON_LENGTH - 1] + "…"
    return STATUS_OF_ACTION[decision.action], reason
