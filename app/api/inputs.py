"""GraphQL input types, flattened into `{api field path: value}` changes for the services."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.utils.str_converters import to_camel_case

from app.api.types import TradingMode
from app.domain.trader_rules import FieldError
from app.services.errors import InvalidInputError


@strawberry.input
class RiskManagementInput:
    stop_loss: Decimal | None = strawberry.UNSET
    take_profit: Decimal | None = strawberry.UNSET
    max_positions: int | None = strawberry.UNSET
    position_size_percent: Decimal | None = strawberry.UNSET
    max_drawdown: Decimal | None = strawberry.UNSET


@strawberry.input
class StrategyInput:
    instructions: str | None = strawberry.UNSET
    risk_management: RiskManagementInput | None = strawberry.UNSET


@strawberry.input
class FilterInput:
    code: str | None = strawberry.UNSET
    description: list[str] | None = strawberry.UNSET
    indicators: JSON | None = strawberry.UNSET


@strawberry.input
class TraderFields:
    description: str | None = strawberry.UNSET
    interval: str | None = strawberry.UNSET
    symbols: list[str] | None = strawberry.UNSET
    mode: TradingMode | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    filter: FilterInput | None = strawberry.UNSET
    strategy: StrategyInput | None = strawberry.UNSET


@strawberry.input
class CreateTraderInput(TraderFields):
    name: str


@strawberry.input
class UpdateTraderInput(TraderFields):
    name: str | None = strawberry.UNSET


NULLABLE_FIELDS = frozenset(
    {
        "strategy.riskManagement.stopLoss",
        "strategy.riskManagement.takeProfit",
        "strategy.riskManagement.maxPositions",
        "strategy.riskManagement.positionSizePercent",
        "strategy.riskManagement.maxDrawdown",
    }
)


def to_changes(value: object) -> dict[str, Any]:
    """Only the fields the client sent; null is accepted only where a field may be cleared."""
    changes = _flatten(value, "")
    errors = [
        FieldError(path, "must not be null")
        for path, item in changes.items()
        if item is None and path not in NULLABLE_FIELDS
    ]
    if errors:
        raise InvalidInputError(errors)
    return changes


def _flatten(value: object, prefix: str) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(value):  # type: ignore[arg-type]
        item = getattr(value, field.name)
        path = prefix + to_camel_case(field.name)
        if item is strawberry.UNSET:
            continue
        if dataclasses.is_dataclass(item):
            changes.update(_flatten(item, path + "."))
        else:
            changes[path] = item
    return changes
