"""Batched reads for the API's DataLoaders: one query per kind, however many traders.

A page of traders asking for their metrics and latest signals costs the same handful of
queries for 5 traders as for 500, instead of one query per trader and field. Metrics come
from the performance aggregates and ledgers the engine maintains (one row per trader and
mode each), never from reading every trade.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypeVar

from tortoise.connection import get_connection
from tortoise.functions import Count, Max
from tortoise.models import Model

from app.db import models
from app.db.models import Signal, Trader
from app.domain.enums import TradingMode
from app.domain.metrics import Metrics, Performance, combined, metrics_of
from app.engine.clock import to_ms
from app.services.repositories.rows import as_uuid
from app.services.repositories.trading import ledger_of, performance_of

M = TypeVar("M", bound=Model)
Prices = Callable[[Collection[str]], Mapping[str, Decimal]]


@dataclass(frozen=True, slots=True)
class TraderMetrics:
    overall: Metrics
    by_mode: dict[TradingMode, Metrics] = field(default_factory=dict)


async def traders_by_id(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Trader]:
    return {trader.id: trader for trader in await Trader.filter(id__in=list(ids))}


async def metrics_by_trader(
    ids: Sequence[uuid.UUID], prices: Prices | None = None
) -> dict[uuid.UUID, TraderMetrics]:
    """Each trader's metrics, overall and per mode; open positions are valued at `prices`
    (the engine's latest, when it runs in this process), else at the marks of the last
    equity snapshot."""
    signal_rows = (
        await Signal.filter(trader_id__in=list(ids))
        .annotate(total=Count("id"), last=Max("created_at"))
        .group_by("trader_id")
        .values("trader_id", "total", "last")
    )
    signals: dict[uuid.UUID, tuple[int, datetime | None]] = {
        as_uuid(row["trader_id"]): (int(row["total"]), row["last"]) for row in signal_rows
    }
    aggregates = {
        (as_uuid(row.trader_id), row.mode): performance_of(row)
        for row in await models.Performance.filter(trader_id__in=list(ids))
    }
    ledgers = {
        (as_uuid(row.trader_id), row.mode): row
        for row in await models.Ledger.filter(trader_id__in=list(ids))
    }
    held = {symbol for row in ledgers.values() for symbol in row.positions}
    live = dict(prices(held)) if prices is not None and held else {}
    now = to_ms(datetime.now(UTC))
    result = {}
    for trader_id in ids:
        total, last = signals.get(trader_id, (0, None))
        by_mode = {}
        for mode in TradingMode:
            row = ledgers.get((trader_id, mode))
            marks = {} if row is None else {s: Decimal(p) for s, p in row.marks.items()}
            by_mode[mode] = metrics_of(
                aggregates.get((trader_id, mode), Performance()),
                now=now,
                total_signals=total,
                last_signal_at=last,
                ledger=None if row is None else ledger_of(row),
                marks=marks | live,
            )
        overall = metrics_of(
            combined([aggregates.get((trader_id, mode), Performance()) for mode in TradingMode]),
            now=now,
            one_account=False,
            total_signals=total,
            last_signal_at=last,
        )
        unrealised = sum((m.unrealised_pnl for m in by_mode.values()), Decimal(0))
        result[trader_id] = TraderMetrics(replace(overall, unrealised_pnl=unrealised), by_mode)
    return result


async def trades_of_signals(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, models.Trade]:
    """The newest trade of each signal."""
    found: dict[uuid.UUID, models.Trade] = {}
    for row in await models.Trade.filter(signal_id__in=list(ids)).order_by("opened_at"):
        found[as_uuid(row.signal_id)] = row
    return found


async def signals_by_id(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, models.Signal]:
    return {row.id: row for row in await models.Signal.filter(id__in=list(ids))}


async def orders_of_trades(ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[models.Order]]:
    grouped: dict[uuid.UUID, list[models.Order]] = {trade_id: [] for trade_id in ids}
    rows = await models.Order.filter(trade_id__in=list(ids)).order_by("created_at", "id")
    for row in rows:
        grouped[as_uuid(row.trade_id)].append(row)
    return grouped


async def fills_by(column: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[models.Fill]]:
    """The fills of each trade or order (`column`: trade_id or order_id), oldest first."""
    grouped: dict[uuid.UUID, list[models.Fill]] = {key: [] for key in ids}
    rows = await models.Fill.filter(**{f"{column}__in": list(ids)}).order_by("time", "id")
    for row in rows:
        grouped[as_uuid(getattr(row, column))].append(row)
    return grouped


async def equity_curve(
    trader_id: uuid.UUID,
    mode: TradingMode,
    since: datetime | None,
    until: datetime | None,
    points: int,
) -> list[tuple[datetime, Decimal]]:
    """The equity snapshots in [since, until], at most `points` of them, evenly thinned
    (always keeping the last), for charts."""
    query = models.EquitySnapshot.filter(trader_id=trader_id, mode=mode)
    if since is not None:
        query = query.filter(time__gte=since)
    if until is not None:
        query = query.filter(time__lte=until)
    rows = await query.order_by("time").values_list("time", "equity")
    if len(rows) > points:
        step = len(rows) / points
        rows = [rows[int(i * step)] for i in range(points - 1)] + [rows[-1]]
    return [(time, equity) for time, equity in rows]


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
        grouped[as_uuid(row["trader_id"])].append(instance)
    return grouped
