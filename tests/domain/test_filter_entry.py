"""The filter-only verdict, pure: every signal entered at its price, the stop and target at
the trader's own stop loss and take profit, a spot short the one refusal."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from app.domain.decision import DecisionAction
from app.domain.decision_quality import Outcome, label_outcome
from app.domain.decision_rules import levels_ordered
from app.domain.enums import Side
from app.domain.filter_entry import filter_entry
from app.domain.trader_spec import RiskSettings

D = Decimal
RISK = RiskSettings(stop_loss=D(5), take_profit=D(6))


def test_a_long_is_entered_at_its_price_with_the_traders_stop_and_target() -> None:
    verdict = filter_entry(Side.LONG, D("200"), RISK, "BTC/USDT")

    assert verdict.action == DecisionAction.ENTER_TRADE
    assert verdict.levels.entry == D("200")
    assert verdict.levels.stop_loss == D("190")
    assert verdict.levels.take_profits == (D("212"),)
    assert "every signal is entered" in verdict.reasoning


def test_a_short_on_a_derivative_mirrors_the_levels() -> None:
    verdict = filter_entry(Side.SHORT, D("200"), RISK, "BTC/USDT:USDT")

    assert verdict.action == DecisionAction.ENTER_TRADE
    assert (verdict.levels.stop_loss, verdict.levels.take_profits) == (D("210"), (D("188"),))


def test_a_short_on_a_spot_market_is_refused() -> None:
    verdict = filter_entry(Side.SHORT, D("200"), RISK, "BTC/USDT")

    assert verdict.action == DecisionAction.BAD_SETUP
    assert "cannot be sold short" in verdict.reasoning


def test_a_shorts_target_a_hundred_percent_down_is_left_out() -> None:
    risk = RiskSettings(stop_loss=D(5), take_profit=D(100))
    verdict = filter_entry(Side.SHORT, D("200"), risk, "BTC/USDT:USDT")

    assert verdict.levels.stop_loss == D("210") and verdict.levels.take_profits == ()


def test_without_a_stop_loss_or_take_profit_those_levels_are_left_out() -> None:
    verdict = filter_entry(Side.LONG, D("3.5"), RiskSettings(), "ETH/BTC")

    assert verdict.action == DecisionAction.ENTER_TRADE
    assert verdict.levels.entry == D("3.5")
    assert verdict.levels.stop_loss is None and verdict.levels.take_profits == ()
    assert "no stop" in verdict.reasoning and "no target" in verdict.reasoning


@given(
    price=st.decimals(min_value=D("0.00001"), max_value=D("100000"), places=6),
    stop=st.decimals(min_value=D("0.1"), max_value=D("50"), places=2),
    target=st.decimals(min_value=D("0.1"), max_value=D("99.99"), places=2),
    side=st.sampled_from([Side.LONG, Side.SHORT]),
)
def test_the_levels_are_ordered_and_judged_like_any_engines(
    price: Decimal, stop: Decimal, target: Decimal, side: Side
) -> None:
    risk = RiskSettings(stop_loss=stop, take_profit=target)
    levels = filter_entry(side, price, risk, "BTC/USDT:USDT").levels

    assert levels_ordered(side, levels)
    assert levels.stop_loss is not None
    # a candle through the stop alone is a miss, as for any engine's levels
    low, high = (
        (float(levels.stop_loss), float(price))
        if side == Side.LONG
        else (
            float(price),
            float(levels.stop_loss),
        )
    )
    label = label_outcome(side, levels, 0, [0], [high], [low], 24)
    assert label is not None and label.outcome == Outcome.STOP
