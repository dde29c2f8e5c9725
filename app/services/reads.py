"""Batched reads for the API's DataLoaders: one query per kind, however many traders.

A page of traders asking for their metrics and latest signals costs the same handful of
queries for 5 traders as for 500, instead of one query per trader and field.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from tortoise.connection import get_connection
from tortoise.functions import Count, Max
from tortoise.models import Model

from app.db.models import Signal, Trade, Trader
from app.domain.enums import TradeStatus, TradingMode
from app.domain.metrics import Metrics, TradeFigures, compute_metrics

M = TypeVar("M", bound=Model)


@dataclass(frozen=True, slots=True)
class TraderMetrics:
    overall: Metrics
    by_mode: dict[TradingMode, Metrics] = field(default_factory=dict)


async def traders_by_id(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Trader]:
    return {trader.id: trader for trader in await Trader.filter(id__in=list(ids))}


async def metrics_by_trader(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TraderMetrics]:
    signal_rows = (
        await Signal.filter(trader_id__in=list(ids))
        .annotate(total=Count("id"), last=Max("created_at"))
        .group_by("trader_id")
        .values("trader_id", "total", "last")
    )
    signals: dict[uuid.UUID, tuple[int, datetime | None]] = {
        _uuid(row["trader_id"]): (int(row["total"]), row["last"]) for row in signal_rows
    }
    trades: dict[uuid.UUID, list[tuple[TradingMode, TradeFigures]]] = defaultdict(list)
    trade_rows = await Trade.filter(trader_id__in=list(ids)).values_list(
        "trader_id", "mode", "status", "pnl", "amount", "entry_price"
    )
    for trader_id, mode, status, pnl, amount, entry_price in trade_rows:
        trades[_uuid(trader_id)].append(
            (TradingMode(mode), TradeFigures(TradeStatus(status), pnl, amount * entry_price))
        )
    result = {}
    for trader_id in ids:
        total, last = signals.get(trader_id, (0, None))
        figures = trades.get(trader_id, [])
        result[trader_id] = TraderMetrics(
            overall=compute_metrics((f for _, f in figures), total, last),
            by_mode={
                mode: compute_metrics((f for m, f in figures if m == mode), total, last)
                for mode in TradingMode
            },
        )
    return result


async def latest_per_trader(
    model: type[M], ids: Sequence[uuid.UUID], first: int, time_column: str
) -> dict[uuid.UUID, list[M]]:
    """The `first` newest rows of each trader, in one query (a window function)."""
    if not ids:
        return {}
    connection = get_connection("default")
    postgres = connection.capabilities.dialect == "postgres"

    def placeholder(position: int) -> str:
        return f"${position}" if postgres else "?"

    in_list = ", ".join(placeholder(i + 1) for i in range(len(ids)))
    table = model._meta.db_table
    sql = (
        f"SELECT * FROM (SELECT t.*, ROW_NUMBER() OVER ("
        f"PARTITION BY t.trader_id ORDER BY t.{time_column} DESC, t.id DESC) AS row_rank "
        f"FROM {table} t WHERE t.trader_id IN ({in_list})) ranked "
        f"WHERE row_rank <= {placeholder(len(ids) + 1)} ORDER BY {time_column} DESC, id DESC"
    )
    values: list[object] = [trader_id if postgres else str(trader_id) for trader_id in ids]
    rows = await connection.execute_query_dict(sql, [*values, first])
    grouped: dict[uuid.UUID, list[M]] = {trader_id: [] for trader_id in ids}
    for row in rows:
        row.pop("row_rank")
        instance = model._init_from_db(**row)
        grouped[_uuid(row["trader_id"])].append(instance)
    return grouped


def _uuid(value: object) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
