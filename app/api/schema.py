"""The GraphQL schema: root types merged from their modules, with request limits."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, QueryDepthLimiter

from app.api.errors import ApiErrors
from app.api.mutations import Mutation
from app.api.queries import Query
from app.api.subscriptions import Subscription
from app.core.settings import Settings


def build_schema(settings: Settings) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            lambda: QueryDepthLimiter(max_depth=settings.max_query_depth),
            lambda: MaxAliasesLimiter(max_alias_count=settings.max_aliases),
            ApiErrors,
        ],
    )
