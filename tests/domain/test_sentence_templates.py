"""Offline generation: what a sentence states, and the template it adapts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.filter_validation import parse_filter
from app.domain.sentence import read_sentence
from app.domain.trader_rules import validate_trader_fields
from app.domain.trader_templates import DEFAULT_TEMPLATE, TEMPLATES, adapt


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("RSI under 25 on the 4h", "4h"),
        ("on the 15 minute chart", "15m"),
        ("daily candles", "1d"),
        ("a 4-hour setup", "4h"),
        ("weekly", "1w"),
        ("no timeframe at all", None),
        ("a 7 hour chart", None),
        ("20 EMA", None),
    ],
)
def test_intervals(text: str, interval: str | None) -> None:
    assert read_sentence(text).interval == interval


def test_periods_thresholds_multiples_and_risk() -> None:
    facts = read_sentence(
        "Buy BTC and ethereum when RSI(7) drops below 20, 3x volume, EMA 9/21, "
        "2% stop, take profit 6%, max 4 positions, 5% of equity per trade, 15% max drawdown"
    )
    assert facts.periods == {"rsi": (7.0,), "ema": (9.0, 21.0)}
    assert facts.below == 20
    assert facts.multiple == 3
    assert facts.symbols == ("BTC/USDT", "ETH/USDT")
    assert facts.risk == {
        "stop_loss": Decimal(2),
        "take_profit": Decimal(6),
        "position_size_percent": Decimal(5),
        "max_drawdown": Decimal(15),
    }
    assert facts.max_positions == 4


def test_pairs_and_counts() -> None:
    facts = read_sentence("SOL/USDC reclaims VWAP after 5 candles below; 20 and 50 EMA")
    assert facts.symbols == ("SOL/USDC",)
    assert facts.counts == {"candles": 5}
    assert facts.periods["ema"] == (20.0, 50.0)


@pytest.mark.parametrize("key", list(TEMPLATES))
def test_every_template_renders_a_valid_trader(key: str) -> None:
    draft = TEMPLATES[key].render()
    assert validate_trader_fields(draft.trader_fields()) == []
    parse_filter(draft.filter_code, draft.interval)


def test_rsi_under_25_on_the_4h_sets_threshold_and_interval_and_says_so() -> None:
    adapted = adapt("RSI under 25 on the 4h", read_sentence("RSI under 25 on the 4h"))
    assert adapted.template.key == "rsi_mean_reversion"
    assert adapted.draft.interval == "4h"
    assert "r = rsi(candles, 14)" in adapted.draft.filter_code
    assert "r[-1] < 25" in adapted.draft.filter_code
    assert adapted.changes == (
        "template: RSI mean reversion",
        "RSI threshold: 30 -> 25",
        "interval: 1h -> 4h",
    )


def test_a_stated_period_reaches_the_filter() -> None:
    text = "RSI(7) below 20 on 15m for ETH with a 2% stop"
    adapted = adapt(text, read_sentence(text))
    assert "rsi(candles, 7)" in adapted.draft.filter_code
    assert adapted.draft.symbols == ("ETH/USDT",)
    assert adapted.draft.risk.stop_loss == Decimal(2)
    assert "RSI period: 14 -> 7" in adapted.changes
    assert adapted.draft.description == text


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("EMA 9/21 crossover trend", "ema_crossover_trend"),
        ("Bollinger squeeze breakout", "bollinger_squeeze_breakout"),
        ("volume spike momentum 5x", "volume_spike_momentum"),
        ("MACD bullish divergence", "macd_divergence"),
        ("VWAP reclaim after 4 closes below", "vwap_reclaim"),
        ("buy what goes up", DEFAULT_TEMPLATE),
    ],
)
def test_the_closest_template_is_chosen(text: str, key: str) -> None:
    adapted = adapt(text, read_sentence(text))
    assert adapted.template.key == key
    parse_filter(adapted.draft.filter_code, adapted.draft.interval)


def test_a_number_out_of_range_is_not_used_and_the_changes_say_so() -> None:
    adapted = adapt("RSI under 80", read_sentence("RSI under 80"))
    assert "r[-1] < 30" in adapted.draft.filter_code
    assert "RSI threshold: 80 is outside [5, 50]; kept 30" in adapted.changes


def test_risk_numbers_are_passed_on_for_the_rules_to_refuse() -> None:
    adapted = adapt("RSI dip, 150% stop", read_sentence("RSI dip, 150% stop"))
    assert adapted.draft.risk.stop_loss == Decimal(150)
    errors = validate_trader_fields(adapted.draft.trader_fields())
    assert [e.field for e in errors] == ["stop_loss"]
