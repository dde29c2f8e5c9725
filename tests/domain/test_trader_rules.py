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
