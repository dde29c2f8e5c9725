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
