from decimal import Decimal

from app.domain.trader_rules import normalize_trader_fields, validate_trader_fields


def test_valid_changes_have_no_errors() -> None:
    changes = {
        "name": "x",
        "interval": "4h",
        "symbols": ["BTC/USDT", "ETH/BTC", "XRP/USDT:USDT"],
        "stop_loss": Decimal("99.9"),
        "position_size_percent": Decimal("100"),
        "max_positions": 1,
        "max_drawdown": None,
    }
    assert validate_trader_fields(changes) == []


def test_each_rule_names_its_field() -> None:
    errors = validate_trader_fields(
        {"name": "", "mode": "paper", "symbols": ["BTC/USDT", "BTC/USDT"], "take_profit": 0}
    )
    assert [e.field for e in errors] == ["name", "mode", "symbols", "take_profit"]


def test_normalize_quantizes_percentages() -> None:
    normalized = normalize_trader_fields({"name": " a ", "stop_loss": 2.5})
    assert normalized == {"name": "a", "stop_loss": Decimal("2.5000")}


def test_a_percentage_that_is_not_a_number_is_a_field_error() -> None:
    for value in (Decimal("NaN"), Decimal("sNaN"), float("nan"), "abc", True):
        errors = validate_trader_fields({"stop_loss": value})
        assert [e.field for e in errors] == ["stop_loss"], value
        assert "must be a number" in errors[0].message


def test_a_field_that_is_not_a_traders_is_an_error() -> None:
    errors = validate_trader_fields({"status": "running", "owner_id": 2})
    assert [e.field for e in errors] == ["status", "owner_id"]


def test_a_percentage_must_stay_in_range_once_rounded_to_its_stored_places() -> None:
    refused = {
        "stop_loss": [Decimal("0.00001"), Decimal("0.00005"), Decimal("99.99999")],
        "take_profit": [Decimal("0.00004")],
        "position_size_percent": [Decimal("0.00001")],
        "max_drawdown": [Decimal("0.000049")],
    }
    for field, values in refused.items():
        for value in values:
            errors = validate_trader_fields({field: value})
            assert [e.field for e in errors] == [field], (field, value)
            assert "once rounded to 4 decimal places" in errors[0].message

    accepted = {
        "stop_loss": Decimal("99.99994"),
        "take_profit": Decimal("9999.99996"),
        "position_size_percent": Decimal("99.99996"),
        "max_drawdown": Decimal("0.00006"),
    }
    assert validate_trader_fields(accepted) == []
    assert normalize_trader_fields(accepted) == {
        "stop_loss": Decimal("99.9999"),
        "take_profit": Decimal("10000"),
        "position_size_percent": Decimal("100"),
        "max_drawdown": Decimal("0.0001"),
    }


def test_a_percentage_out_of_range_as_sent_is_refused_even_if_it_would_round_into_it() -> None:
    errors = validate_trader_fields({"position_size_percent": Decimal("100.00004")})
    assert [e.message for e in errors] == ["must be in (0, 100], got 100.00004"]


def test_every_text_input_is_bounded_and_storable() -> None:
    surrogate = "\ud800"
    changes = {
        "name": surrogate,
        "description": "x" * 2001,
        "strategy_instructions": surrogate,
        "filter_code": "return True" + surrogate,
        "filter_description": ["ok", 3],
        "filter_indicators": {"a": float("nan")},
    }
    errors = {e.field: e.message for e in validate_trader_fields(changes)}
    assert errors == {
        "name": "holds a lone surrogate U+D800, which is not Unicode text",
        "description": "must be at most 2,000 characters, got 2,001",
        "strategy_instructions": "holds a lone surrogate U+D800, which is not Unicode text",
        "filter_code": "holds a lone surrogate U+D800, which is not Unicode text",
        "filter_description": "line 2 must be a string",
        "filter_indicators": "must hold finite numbers only, not nan",
    }
