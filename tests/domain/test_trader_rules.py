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
