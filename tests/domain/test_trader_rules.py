from decimal import Decimal

from app.domain.trader_rules import RISK, normalize_trader_fields, validate_trader_fields


def test_valid_changes_have_no_errors() -> None:
    changes = {
        "name": "x",
        "interval": "4h",
        "symbols": ["BTC/USDT", "ETH/BTC", "XRP/USDT:USDT"],
        RISK + "stopLoss": Decimal("99.9"),
        RISK + "positionSizePercent": Decimal("100"),
        RISK + "maxPositions": 1,
        RISK + "maxDrawdown": None,
    }
    assert validate_trader_fields(changes) == []


def test_each_rule_names_its_field() -> None:
    errors = validate_trader_fields(
        {"name": "", "mode": "paper", "symbols": ["BTC/USDT", "BTC/USDT"], RISK + "takeProfit": 0}
    )
    assert [e.field for e in errors] == ["name", "mode", "symbols", RISK + "takeProfit"]


def test_normalize_quantizes_percentages() -> None:
    normalized = normalize_trader_fields({"name": " a ", RISK + "stopLoss": 2.5})
    assert normalized == {"name": "a", RISK + "stopLoss": Decimal("2.5000")}


def test_a_percentage_that_is_not_a_number_is_a_field_error() -> None:
    for value in (Decimal("NaN"), Decimal("sNaN"), float("nan"), "abc", True):
        errors = validate_trader_fields({RISK + "stopLoss": value})
        assert [e.field for e in errors] == [RISK + "stopLoss"], value
        assert "must be a number" in errors[0].message


def test_a_percentage_must_stay_in_range_once_rounded_to_its_stored_places() -> None:
    refused = {
        RISK + "stopLoss": [Decimal("0.00001"), Decimal("0.00005"), Decimal("99.99999")],
        RISK + "takeProfit": [Decimal("0.00004")],
        RISK + "positionSizePercent": [Decimal("0.00001")],
        RISK + "maxDrawdown": [Decimal("0.000049")],
    }
    for field, values in refused.items():
        for value in values:
            errors = validate_trader_fields({field: value})
            assert [e.field for e in errors] == [field], (field, value)
            assert "once rounded to 4 decimal places" in errors[0].message

    accepted = {
        RISK + "stopLoss": Decimal("99.99994"),
        RISK + "takeProfit": Decimal("9999.99996"),
        RISK + "positionSizePercent": Decimal("99.99996"),
        RISK + "maxDrawdown": Decimal("0.00006"),
    }
    assert validate_trader_fields(accepted) == []
    assert normalize_trader_fields(accepted) == {
        RISK + "stopLoss": Decimal("99.9999"),
        RISK + "takeProfit": Decimal("10000"),
        RISK + "positionSizePercent": Decimal("100"),
        RISK + "maxDrawdown": Decimal("0.0001"),
    }


def test_a_percentage_out_of_range_as_sent_is_refused_even_if_it_would_round_into_it() -> None:
    errors = validate_trader_fields({RISK + "positionSizePercent": Decimal("100.00004")})
    assert [e.message for e in errors] == ["must be in (0, 100], got 100.00004"]


def test_every_text_input_is_bounded_and_storable() -> None:
    surrogate = "\ud800"
    changes = {
        "name": surrogate,
        "description": "x" * 2001,
        "strategy.instructions": surrogate,
        "filter.code": "return True" + surrogate,
        "filter.description": ["ok", 3],
        "filter.indicators": {"a": float("nan")},
    }
    errors = {e.field: e.message for e in validate_trader_fields(changes)}
    assert errors == {
        "name": "holds a lone surrogate U+D800, which is not Unicode text",
        "description": "must be at most 2,000 characters, got 2,001",
        "strategy.instructions": "holds a lone surrogate U+D800, which is not Unicode text",
        "filter.code": "holds a lone surrogate U+D800, which is not Unicode text",
        "filter.description": "line 2 must be a string",
        "filter.indicators": "must hold finite numbers only, not nan",
    }
