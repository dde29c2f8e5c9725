"""GraphQL input types, and the one mapping between their paths and the trader's field names.

Below the API a trader's fields have the names of `TraderSpec` and the database
(`stop_loss`); a client writes GraphQL paths (`strategy.riskManagement.stopLoss`). The map
between the two is derived from the input types themselves, once: each nested input says
which prefix its fields carry in the trader's vocabulary, so adding a field to an input is
all it takes to make it reach the services and to have its errors name the GraphQL path.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator, Mapping
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
    min_risk_reward: Decimal | None = strawberry.UNSET
    trailing_stop: Decimal | None = strawberry.UNSET
    cooldown_candles: int | None = strawberry.UNSET
    stop_loss_guard: int | None = strawberry.UNSET
    stop_loss_guard_candles: int | None = strawberry.UNSET
    review_candles: int | None = strawberry.UNSET


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
class ExitFilterInput:
    code: str | None = strawberry.UNSET


@strawberry.input
class TraderFields:
    description: str | None = strawberry.UNSET
    interval: str | None = strawberry.UNSET
    symbols: list[str] | None = strawberry.UNSET
    mode: TradingMode | None = strawberry.UNSET
    enabled: bool | None = strawberry.UNSET
    filter: FilterInput | None = strawberry.UNSET
    exit_filter: ExitFilterInput | None = strawberry.UNSET
    strategy: StrategyInput | None = strawberry.UNSET


@strawberry.input
class CreateTraderInput(TraderFields):
    name: str


@strawberry.input
class UpdateTraderInput(TraderFields):
    name: str | None = strawberry.UNSET


# The prefix a nested input's fields carry in the trader's vocabulary: `filter.code` is
# `filter_code`, `exitFilter.code` is `exit_filter_code`, `strategy.instructions` is
# `strategy_instructions`, and the risk settings keep their own names
# (`strategy.riskManagement.stopLoss` is `stop_loss`).
FIELD_PREFIX: dict[type, str] = {
    FilterInput: "filter_",
    ExitFilterInput: "exit_filter_",
    StrategyInput: "strategy_",
    RiskManagementInput: "",
}


def _nested_input(annotation: object) -> type | None:
    """The input type behind `X | None`, when X is one of the nested inputs."""
    for candidate in typing.get_args(annotation) or (annotation,):
        if candidate in FIELD_PREFIX:
            return candidate
    return None


def _walk(kind: type, path: str = "", prefix: str = "") -> Iterator[tuple[str, str, type]]:
    """(name in `_flatten`'s output, GraphQL path, owning input type) of every field of
    `kind`, nested inputs included (a null nested input is reported under its own path)."""
    hints = typing.get_type_hints(kind)
    for item in dataclasses.fields(kind):
        graphql = path + to_camel_case(item.name)
        yield prefix + item.name, graphql, kind
        nested = _nested_input(hints[item.name])
        if nested is not None:
            yield from _walk(nested, graphql + ".", FIELD_PREFIX[nested])


GRAPHQL_PATHS: dict[str, str] = {field: path for field, path, _ in _walk(CreateTraderInput)}
CLEARABLE = frozenset(
    field for field, _, kind in _walk(CreateTraderInput) if kind is RiskManagementInput
)


def api_errors(exc: InvalidInputError) -> InvalidInputError:
    """The same errors, naming GraphQL paths instead of the trader's field names."""
    return InvalidInputError(
        [FieldError(GRAPHQL_PATHS.get(e.field, e.field), e.message) for e in exc.errors]
    )


def _flatten(value: object, prefix: str = "") -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for item in dataclasses.fields(value):  # type: ignore[arg-type]
        given = getattr(value, item.name)
        if given is strawberry.UNSET:
            continue
        if type(given) in FIELD_PREFIX:
            changes.update(_flatten(given, FIELD_PREFIX[type(given)]))
        else:
            changes[prefix + item.name] = given
    return changes


def to_changes(value: object) -> Mapping[str, Any]:
    """The fields the client sent, by trader field name; null only where it clears a value."""
    changes = _flatten(value)
    errors = [
        FieldError(GRAPHQL_PATHS[field], "must not be null")
        for field, given in changes.items()
        if given is None and field not in CLEARABLE
    ]
    if errors:
        raise InvalidInputError(errors)
    return changes
