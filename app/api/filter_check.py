"""`validateFilter`: the filter check as GraphQL, a root query field through `Query`.

Errors are data here, not GraphQL errors: an invalid filter is the expected answer of a
check, with every problem located by line and column. A check refused because the caller
already has one running is a GraphQL error with the code TOO_MANY_REQUESTS.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.api.types import Info
from app.domain.filter_validation import FilterError as FilterErrorValue
from app.services.filter_check import FilterCheck, validate_filter


@strawberry.type
class FilterError:
    line: int = strawberry.field(description="1-based line of the filter code")
    column: int = strawberry.field(description="1-based column of the filter code")
    message: str

    @classmethod
    def from_value(cls, error: FilterErrorValue) -> FilterError:
        return cls(line=error.line, column=error.column, message=error.message)


@strawberry.type
class FilterValidation:
    valid: bool
    errors: list[FilterError]
    matches: list[str] = strawberry.field(description="Symbols the filter matches now")
    evaluated: int = strawberry.field(description="Symbols the dry run evaluated")
    elapsed_ms: float = strawberry.field(description="Time the check took, in milliseconds")
    dry_run: bool = strawberry.field(
        description="Whether the filter ran on current candles (it needs the engine)"
    )
    missing_symbols: list[str] = strawberry.field(
        description="Requested symbols without candles at the interval"
    )
    dry_run_skipped: str | None = strawberry.field(
        description="Why the filter did not run on current candles, when it did not"
    )

    @classmethod
    def from_check(cls, check: FilterCheck) -> FilterValidation:
        return cls(
            valid=check.valid,
            errors=[FilterError.from_value(error) for error in check.errors],
            matches=list(check.matches),
            evaluated=check.evaluated,
            elapsed_ms=check.elapsed_ms,
            dry_run=check.ran,
            missing_symbols=list(check.missing),
            dry_run_skipped=check.skipped,
        )


@strawberry.type
class FilterQuery:
    @strawberry.field(
        description="Check filter code: located errors, or the symbols it matches now"
    )
    async def validate_filter(
        self,
        info: Info,
        code: str,
        symbols: list[str] | None = None,
        interval: Annotated[
            str, strawberry.argument(description="interval the filter runs at")
        ] = "1h",
    ) -> FilterValidation:
        user = info.context.require_user()
        check = await validate_filter(
            code,
            symbols,
            interval=interval,
            checker=info.context.runtime.filter_checker,
            user_id=user.id,
        )
        return FilterValidation.from_check(check)
