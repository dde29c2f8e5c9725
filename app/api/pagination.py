"""Relay-style cursor pagination over rows ordered newest first by (time, id)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import strawberry
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from app.domain.trader_rules import FieldError
from app.services.errors import InvalidInputError

MAX_PAGE = 200
T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field(description="The nodes of the edges, for clients that need no cursors")
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]


def encode_cursor(time: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{time.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The cursor's time in UTC: one without a zone, or out of range there, is not ours."""
    try:
        text, _, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        time = datetime.fromisoformat(text)
        if time.tzinfo is None:
            raise ValueError("naive time")
        return time.astimezone(UTC), uuid.UUID(row_id)
    except (ValueError, OverflowError):
        raise InvalidInputError([FieldError("after", "is not a cursor from this API")]) from None


def check_first(first: int) -> None:
    if not 1 <= first <= MAX_PAGE:
        raise InvalidInputError([FieldError("first", f"must be between 1 and {MAX_PAGE}")])


async def paginate(
    query: QuerySet,
    time_field: str,
    first: int,
    after: str | None,
    convert: Callable[[object], T],
) -> Connection[T]:
    check_first(first)
    if after is not None:
        time, row_id = decode_cursor(after)
        before: dict[str, Any] = {f"{time_field}__lt": time}
        tied: dict[str, Any] = {time_field: time, "id__lt": row_id}
        query = query.filter(Q(**before) | Q(**tied))
    rows = await query.order_by(f"-{time_field}", "-id").limit(first + 1)
    return page_of(rows, first, time_field, convert)


def page_of(
    rows: Sequence[object], first: int, time_field: str, convert: Callable[[object], T]
) -> Connection[T]:
    edges = [
        Edge(cursor=encode_cursor(getattr(row, time_field), row.id), node=convert(row))  # type: ignore[attr-defined]
        for row in rows[:first]
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > first, end_cursor=edges[-1].cursor if edges else None
        ),
    )
