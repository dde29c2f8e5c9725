"""The GraphQL schema: root types merged from their modules, with request limits."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation

import strawberry
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig

from app.api.cost import QueryCostLimiter
from app.api.errors import ApiErrors
from app.api.executor import SubscriptionExecutor
from app.api.loaders import Loaders
from app.api.mutations import Mutation
from app.api.queries import Query
from app.api.subscriptions import Subscription
from app.core.settings import Settings


def plain_decimal(value: Decimal) -> str:
    """Money as exchanges and people write it: "0.00000001", "101.25", never "1E-8"."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def parse_decimal(value: object) -> Decimal:
    """Strings or numbers; NaN and infinities are not amounts."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite decimal number")
    return number


DECIMAL = strawberry.scalar(
    name="Decimal",
    description="Exact decimal number, as a string in plain notation",
    serialize=plain_decimal,
    parse_value=parse_decimal,
)


class FreshLoaders(SchemaExtension):
    """Loaders of its own for every operation. A websocket connection keeps one context for
    all the operations it runs, so without this a query repeated over it would answer from
    the first run's cached rows, and the cache would grow for as long as the connection."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        desk = context.runtime.desk
        context.loaders = Loaders(None if desk is None else desk.quotes.marks)
        yield


def build_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        execution_context_class=SubscriptionExecutor,
        config=StrawberryConfig(scalar_map={Decimal: DECIMAL}),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
            lambda: QueryCostLimiter(max_cost=settings.max_query_cost),
            ApiErrors,
            FreshLoaders,
        ],
    )
