"""The position review's verdict: which answers of the analysis close a position."""

from __future__ import annotations

import uuid

import pytest

from app.domain.decision import AnalysisEngineKind, Decision, DecisionAction
from app.domain.enums import Side, TradingMode
from app.domain.trade import Trade
from app.engine.analysis.review import AnalysisReviewer

TRADE = Trade(uuid.uuid4(), uuid.uuid4(), 1, TradingMode.DEMO, "BTC/USDT", 0, side=Side.LONG)


def answer(action: DecisionAction, direction: Side = Side.LONG, **fields: object) -> Decision:
    return Decision(
        id=uuid.uuid4(),
        signal_id=uuid.uuid4(),
        trader_id=TRADE.trader_id,
        action=action,
        direction=direction,
        confidence=0.5,
        reasoning="because",
        created_at=0,
        engine=AnalysisEngineKind.GEMINI,
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("decision", "closes"),
    [
        (answer(DecisionAction.GOOD_SETUP), False),
        (answer(DecisionAction.ENTER_TRADE), False),
        (answer(DecisionAction.BAD_SETUP), True),
        (answer(DecisionAction.GOOD_SETUP, Side.SHORT), True),
        (answer(DecisionAction.BAD_SETUP, invalid_reason="unparsable answer"), False),
    ],
    ids=["still good", "enter again", "bad now", "other direction", "no usable answer"],
)
def test_what_closes_a_position(decision: Decision, closes: bool) -> None:
    review = AnalysisReviewer._verdict(TRADE, decision)
    assert review.close is closes
    assert review.reason.startswith("gemini review, confidence 0.50")
