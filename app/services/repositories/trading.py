"""Orders, trades, fills, ledgers and performance in the database: the live `TradeStore`.

Each write is one transaction that also appends its audit entries, so the audit log never
disagrees with what happened. The bookkeeping itself is `app.domain.trade.book_report`,
the same function the in-memory store of a backtest runs: a fill changes the order, the
trade, the ledger and the performance aggregate together or not at all, and a fill id
already stored is never booked again. On PostgreSQL the rows a write depends on are locked
(`SELECT ... FOR UPDATE`) so concurrent writers queue; SQLite serialises transactions.

Compare-and-set rules keep engine processes and the API from racing: an entry is recorded
only while its trader is enabled (the trader row is locked, so an emergency stop that
disabled it first wins) and under a client order id never used; an exit only for an open
trade with the expected number of exit attempts and none in flight.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from app.db import models
from app.domain.enums import (
    OrderPurpose,
    OrderStatus,
    TraderStatus,
    TradeStatus,
    TradingMode,
)
from app.domain.ledger import DEFAULT_BALANCE, LEDGER_CURRENCY, Ledger, Position
from app.domain.metrics import Performance
from app.domain.orders import Fill, Order, OrderReport
from app.domain.risk import PastExit
from app.domain.trade import Trade, book_report
from app.engine.audit import AuditEntry, intent_entry, report_entries
from app.engine.clock import to_datetime, to_ms
from app.engine.ports import Booked, ExitLevels, OpenPosition, PositionView
from app.services.repositories.locks import locked, postgres
from app.services.repositories.rows import as_uuid, insert_each, update_each

ModelT = TypeVar("ModelT", bound=models.Model)
K = TypeVar("K")
V = TypeVar("V")

ACTIVE = (TradeStatus.PENDING, TradeStatus.OPEN)
KEPT_FRESH_S = 30.0
NOT_FINAL = (OrderStatus.INTENT, OrderStatus.OPEN)
PERFORMANCE_FIELDS = tuple(f.name for f in dataclasses.fields(Performance))
TRADE_COLUMNS = (
    "id",
    "trader_id",
    "signal_id",
    "mode",
    "symbol",
    "side",
    "status",
    "amount",
    "entry_price",
    "entry_cost",
    "entry_fee",
    "exit_amount",
    "exit_price",
    "exit_proceeds",
    "exit_fee",
    "stop_loss",
    "take_profit",
    "trailing_stop",
    "highest_price",
    "pnl",
    "pnl_percent",
    "exit_reason",
    "exit_attempts",
)
ORDER_COLUMNS = (
    "id",
    "client_order_id",
    "trader_id",
    "trade_id",
    "mode",
    "purpose",
    "symbol",
    "side",
    "type",
    "amount",
    "price",
    "stop_price",
    "expected_price",
    "status",
    "filled",
    "average",
    "fee",
    "exit_reason",
    "exchange_order_id",
    "reason",
)


TRADE_READ = (*TRADE_COLUMNS, "opened_at", "closed_at")
ORDER_BOOKED = ["status", "filled", "average", "fee", "exchange_order_id", "reason", "updated_at"]
TRADE_IDENTITY = ("id", "trader_id", "signal_id", "mode", "symbol", "side")
TRADE_BOOKED = [name for name in TRADE_READ if name not in TRADE_IDENTITY]
LEDGER_BOOKED = ["cash", "fees_paid", "realised_pnl", "positions"]
ORDER_READ = (*ORDER_COLUMNS, "created_at", "updated_at", "expires_at")


def _columns(row: Any, names: tuple[str, ...], owner_id: int) -> dict[str, Any]:
    """A locked row as the mapping `trade_of` and `order_of` read (its owner given)."""
    return {name: getattr(row, name) for name in names} | {"owner_id": owner_id}


def _ms(value: Any) -> int | None:
    return None if value is None else to_ms(value)


def trade_of(row: Mapping[str, Any]) -> Trade:
    values = {name: row[name] for name in TRADE_COLUMNS}
    values["id"], values["trader_id"] = as_uuid(row["id"]), as_uuid(row["trader_id"])
    values["signal_id"] = None if row["signal_id"] is None else as_uuid(row["signal_id"])
    return Trade(
        **values,
        owner_id=row["owner_id"],
        opened_at=to_ms(row["opened_at"]),
        closed_at=_ms(row["closed_at"]),
    )


def order_of(row: Mapping[str, Any]) -> Order:
    values = {name: row[name] for name in ORDER_COLUMNS}
    for key in ("id", "trader_id", "trade_id"):
        values[key] = as_uuid(row[key])
    return Order(
        **values,
        owner_id=row["owner_id"],
        created_at=to_ms(row["created_at"]),
        updated_at=to_ms(row["updated_at"]),
        expires_at=_ms(row["expires_at"]),
    )


def fill_of(row: models.Fill) -> Fill:
    return Fill(
        id=row.id,
        order_id=row.order_id,
        amount=row.amount,
        price=row.price,
        fee=row.fee,
        liquidity=row.liquidity,
        time=to_ms(row.time),
        expected_price=row.expected_price,
    )


def ledger_of(row: models.Ledger) -> Ledger:
    positions = {
        symbol: Position(Decimal(p["amount"]), Decimal(p["cost"]), Decimal(p["fees"]))
        for symbol, p in row.positions.items()
    }
    return dataclasses.replace(
        Ledger.opened(row.initial),
        cash=row.cash,
        fees_paid=row.fees_paid,
        realised_pnl=row.realised_pnl,
        positions=positions,
    )


def _performance_columns(performance: Performance) -> dict[str, Any]:
    """Its fields as columns: `dataclasses.asdict` deep-copies each value (19 us against
    1.3, at every booking)."""
    return {name: getattr(performance, name) for name in PERFORMANCE_FIELDS}


def _ledger_columns(ledger: Ledger) -> dict[str, Any]:
    return {
        "cash": ledger.cash,
        "fees_paid": ledger.fees_paid,
        "realised_pnl": ledger.realised_pnl,
        "positions": {
            symbol: {"amount": str(p.amount), "cost": str(p.cost), "fees": str(p.fees)}
            for symbol, p in ledger.positions.items()
        },
    }


def performance_of(row: models.Performance | None) -> Performance:
    if row is None:
        return Performance()
    return Performance(**{name: getattr(row, name) for name in PERFORMANCE_FIELDS})


def _trade_columns(trade: Trade) -> dict[str, Any]:
    columns = {name: getattr(trade, name) for name in TRADE_COLUMNS if name != "id"}
    columns["opened_at"] = to_datetime(trade.opened_at)
    columns["closed_at"] = None if trade.closed_at is None else to_datetime(trade.closed_at)
    return columns


def _order_columns(order: Order) -> dict[str, Any]:
    columns = {name: getattr(order, name) for name in ORDER_COLUMNS if name != "id"}
    columns["created_at"] = to_datetime(order.created_at)
    columns["updated_at"] = to_datetime(order.updated_at or order.created_at)
    columns["expires_at"] = None if order.expires_at is None else to_datetime(order.expires_at)
    columns["fee_currency"] = LEDGER_CURRENCY
    return columns


async def _append(entries: Collection[AuditEntry]) -> None:
    if entries:
        await insert_each(
            models.TradeAuditLog,
            [
                {
                    "owner_id": e.owner_id,
                    "trader_id": e.trader_id,
                    "action": e.action,
                    "client_order_id": e.client_order_id,
                    "details": dict(e.details),
                    "created_at": to_datetime(e.time),
                }
                for e in entries
            ],
        )


async def _each_alone_on_conflict(
    intents: Sequence[tuple[Trade, Order]],
    record: Callable[[Sequence[tuple[Trade, Order]]], Awaitable[set[uuid.UUID]]],
) -> set[uuid.UUID]:
    """`record` the intents in one transaction; when another process recorded one of them
    meanwhile (a client order id refused), each alone, so the others still go."""
    if not intents:
        return set()
    try:
        return await record(intents)
    except IntegrityError:
        if len(intents) == 1:
            return set()
    recorded: set[uuid.UUID] = set()
    for intent in intents:
        recorded |= await _each_alone_on_conflict([intent], record)
    return recorded


class _Kept(Generic[K, V]):
    """Rows of one table as last read whole, for the reads at every candle close (the
    position monitor's round over every active trade, the risk check of the entries'
    ledgers): reading them takes 10-40 ms at a close, on the connection that the close's
    entries need. The store applies its own writes as they commit (`put`, `drop`), and
    forgets everything when a write fails; a read that began before a write began or
    ended, or while one is under way, is not kept. What another process writes shows at
    the next read, at most `KEPT_FRESH_S` later: a trade it closed still counts against
    the trader's positions, cash it freed is not yet spent (the risk check errs on the
    side of caution), and the bookings themselves always read and lock the rows."""

    def __init__(self) -> None:
        self.generation = 0
        self._values: dict[K, V] | None = None
        self._read_at = 0.0
        self._writes = 0

    def get(self) -> dict[K, V] | None:
        if self._values is None or time.monotonic() - self._read_at >= KEPT_FRESH_S:
            return None
        return self._values

    def keep(self, values: dict[K, V], generation: int, read_at: float) -> None:
        """Keep a read begun at `generation` and `read_at`, unless a write began or ended
        since or is under way."""
        if generation == self.generation and not self._writes:
            self._values, self._read_at = values, read_at

    def kept(self, key: K) -> V | None:
        return None if self._values is None else self._values.get(key)

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write, which `put`s and `drop`s what it committed; if it raises, what
        is kept is forgotten."""
        self._writes += 1
        try:
            yield
        except BaseException:
            self._values = None
            raise
        finally:
            self._writes -= 1
            self.generation += 1

    def put(self, key: K, value: V) -> None:
        if self._values is not None:
            self._values[key] = value

    def drop(self, key: K) -> None:
        if self._values is not None:
            self._values.pop(key, None)


class _ActiveTrades(_Kept[uuid.UUID, Trade]):
    """Every active trade."""

    def sorted(self) -> list[Trade] | None:
        kept = self.get()
        return (
            None if kept is None else sorted(kept.values(), key=lambda t: (t.opened_at, str(t.id)))
        )

    def apply(self, changed: Iterable[Trade]) -> None:
        """Trades as a write left them: active ones kept, the others gone."""
        for trade in changed:
            if trade.active:
                self.put(trade.id, trade)
            else:
                self.drop(trade.id)


class DbTradeStore:
    def __init__(self, balance: Decimal = DEFAULT_BALANCE) -> None:
        self.balance = balance
        self._opened: set[tuple[uuid.UUID, TradingMode]] = set()
        self._active = _ActiveTrades()
        self._ledgers: _Kept[tuple[uuid.UUID, TradingMode], Ledger] = _Kept()

    @staticmethod
    def _trades(query: QuerySet[models.Trade]) -> Any:
        return query.values(*TRADE_READ, owner_id="trader__owner_id")

    @staticmethod
    def _orders(query: QuerySet[models.Order]) -> Any:
        return query.values(*ORDER_READ, owner_id="trader__owner_id")

    async def _open_accounts(self, accounts: Collection[tuple[uuid.UUID, TradingMode]]) -> None:
        """Make sure the traders' ledger and performance rows exist, outside any
        transaction: each insert yields to whoever created a row first and commits at once,
        so writers that open an account together neither fail nor deadlock (the rows go in
        one order, the same for every writer). Two statements for all the accounts this
        store has not opened yet."""
        new = sorted({account for account in accounts if account not in self._opened})
        if not new:
            return
        await models.Ledger.bulk_create(
            [
                models.Ledger(trader_id=trader, mode=mode, initial=self.balance, cash=self.balance)
                for trader, mode in new
            ],
            ignore_conflicts=True,
        )
        await models.Performance.bulk_create(
            [models.Performance(trader_id=trader, mode=mode) for trader, mode in new],
            ignore_conflicts=True,
        )
        self._opened.update(new)

    @staticmethod
    async def _account(
        trader_id: uuid.UUID, mode: TradingMode
    ) -> tuple[models.Ledger, models.Performance]:
        """The trader's ledger and performance rows (locked in a transaction on PostgreSQL)."""
        ledger = await locked(models.Ledger.filter(trader_id=trader_id, mode=mode)).get()
        performance = await locked(models.Performance.filter(trader_id=trader_id, mode=mode)).get()
        return ledger, performance

    async def ledger(self, trader_id: uuid.UUID, mode: TradingMode) -> Ledger:
        return (await self.ledgers([(trader_id, mode)]))[trader_id, mode]

    async def ledgers(
        self, accounts: Collection[tuple[uuid.UUID, TradingMode]]
    ) -> dict[tuple[uuid.UUID, TradingMode], Ledger]:
        """From the ledgers kept in memory when they are fresh and hold every account asked
        for (the risk check of a close's entries); else every ledger, read and kept."""
        kept = self._ledgers.get()
        if kept is None or not all(account in kept for account in accounts):
            await self._open_accounts(accounts)
            generation, read_at = self._ledgers.generation, time.monotonic()
            kept = {(as_uuid(r.trader_id), r.mode): ledger_of(r) for r in await models.Ledger.all()}
            self._ledgers.keep(kept, generation, read_at)
        return {account: kept[account] for account in accounts}

    async def active_trades(self, trader_ids: Collection[uuid.UUID] | None = None) -> list[Trade]:
        """All of them from memory (read in the last `KEPT_FRESH_S`, and as this store's
        writes left them since); those of some traders always from the database."""
        if trader_ids is None and (kept := self._active.sorted()) is not None:
            return kept
        generation, read_at = self._active.generation, time.monotonic()
        query = models.Trade.filter(status__in=ACTIVE)
        if trader_ids is not None:
            query = query.filter(trader_id__in=list(trader_ids))
        rows = await self._trades(query.order_by("opened_at", "id"))
        trades = [trade_of(row) for row in rows]
        if trader_ids is None:
            self._active.keep({trade.id: trade for trade in trades}, generation, read_at)
        return trades

    async def open_positions(
        self, trader_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[PositionView]]:
        """From the active trades kept in memory when they are fresh, as the position
        monitor sees them."""
        found: dict[uuid.UUID, list[PositionView]] = {trader: [] for trader in trader_ids}
        if found and (kept := self._active.sorted()) is not None:
            for trade in kept:
                if trade.status == TradeStatus.OPEN and trade.trader_id in found:
                    found[trade.trader_id].append(
                        OpenPosition(trade.symbol, trade.side, trade.entry_price, trade.amount)
                    )
        elif found:
            rows = (
                await models.Trade.filter(trader_id__in=list(found), status=TradeStatus.OPEN)
                .order_by("opened_at", "id")
                .values_list("trader_id", "symbol", "side", "entry_price", "amount")
            )
            for trader, symbol, side, entry_price, amount in rows:
                found[as_uuid(trader)].append(OpenPosition(symbol, side, entry_price, amount))
        return found

    async def active_symbols(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        """From the active trades kept in memory when they are fresh."""
        found: dict[uuid.UUID, set[str]] = {trader: set() for trader in trader_ids}
        if found and (kept := self._active.get()) is not None:
            for trade in kept.values():
                if trade.trader_id in found:
                    found[trade.trader_id].add(trade.symbol)
        elif found:
            rows = await models.Trade.filter(
                trader_id__in=list(found), status__in=ACTIVE
            ).values_list("trader_id", "symbol")
            for trader, symbol in rows:
                found[as_uuid(trader)].add(symbol)
        return found

    async def trade(self, trade_id: uuid.UUID) -> Trade | None:
        rows = await self._trades(models.Trade.filter(id=trade_id))
        return trade_of(rows[0]) if rows else None

    async def order(self, order_id: uuid.UUID) -> Order | None:
        rows = await self._orders(models.Order.filter(id=order_id))
        return order_of(rows[0]) if rows else None

    async def orders(
        self,
        statuses: Collection[OrderStatus],
        trader_ids: Collection[uuid.UUID] | None = None,
        trade_id: uuid.UUID | None = None,
    ) -> list[Order]:
        query = models.Order.filter(status__in=list(statuses))
        if trader_ids is not None:
            query = query.filter(trader_id__in=list(trader_ids))
        if trade_id is not None:
            query = query.filter(trade_id=trade_id)
        rows = await self._orders(query.order_by("created_at", "id"))
        return [order_of(row) for row in rows]

    async def past_exits(
        self, trader_ids: Collection[uuid.UUID], since: int
    ) -> dict[tuple[uuid.UUID, TradingMode], list[PastExit]]:
        if not trader_ids:
            return {}
        rows = await models.Trade.filter(
            trader_id__in=list(trader_ids),
            status=TradeStatus.CLOSED,
            closed_at__gte=to_datetime(since),
        ).values_list("trader_id", "mode", "symbol", "closed_at", "exit_reason", "pnl")
        found: dict[tuple[uuid.UUID, TradingMode], list[PastExit]] = {}
        for trader_id, mode, symbol, closed, reason, pnl in rows:
            exit_ = PastExit(symbol, to_ms(closed), reason, pnl or Decimal(0))
            found.setdefault((as_uuid(trader_id), TradingMode(mode)), []).append(exit_)
        return found

    async def performance(self, trader_id: uuid.UUID, mode: TradingMode) -> Performance:
        return performance_of(await models.Performance.get_or_none(trader_id=trader_id, mode=mode))

    async def begin_entries(self, entries: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        return await _each_alone_on_conflict(entries, self._begin_entries)

    async def _begin_entries(self, entries: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        with self._active.writing():
            async with in_transaction():
                # FOR NO KEY UPDATE: queues behind a change of the traders (an emergency stop
                # disabling one), not behind the fills their other trades insert.
                query = models.Trader.filter(
                    id__in=list({trade.trader_id for trade, _ in entries}),
                    enabled=True,
                    status=TraderStatus.RUNNING,
                ).only("id")
                if postgres():
                    query = query.select_for_update(no_key=True)
                running = {row.id for row in await query}
                taken = set(
                    await models.Order.filter(
                        client_order_id__in=[order.client_order_id for _, order in entries]
                    ).values_list("client_order_id", flat=True)
                )
                chosen = [
                    (trade, order)
                    for trade, order in entries
                    if trade.trader_id in running and order.client_order_id not in taken
                ]
                await insert_each(
                    models.Trade, [{"id": t.id, **_trade_columns(t)} for t, _ in chosen]
                )
                await insert_each(
                    models.Order, [{"id": o.id, **_order_columns(o)} for _, o in chosen]
                )
                await _append([intent_entry(order) for _, order in chosen])
            self._active.apply(trade for trade, _ in chosen)
        return {trade.id for trade, _ in chosen}

    async def begin_exits(self, exits: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        return await _each_alone_on_conflict(exits, self._begin_exits)

    async def _begin_exits(self, exits: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        with self._active.writing():
            async with in_transaction():
                in_flight = {
                    as_uuid(trade_id)
                    for trade_id in await models.Order.filter(
                        trade_id__in=[trade.id for trade, _ in exits],
                        purpose=OrderPurpose.EXIT,
                        status__in=NOT_FINAL,
                    ).values_list("trade_id", flat=True)
                }
                # A compare-and-set per trade, checked against the rows as they are now
                # (locked on PostgreSQL until the commit): still open, as many attempts and
                # as much held as the caller read; written in one statement for all.
                query = models.Trade.filter(
                    id__in=[trade.id for trade, _ in exits if trade.id not in in_flight]
                ).only("id", "status", "exit_attempts", "amount", "close_requested")
                rows = {row.id: row for row in await locked(query)}
                begun = []
                for trade, order in exits:
                    row = rows.get(trade.id)
                    if (
                        row is None
                        or row.status != TradeStatus.OPEN
                        or row.exit_attempts != trade.exit_attempts
                        or row.amount != trade.amount
                    ):
                        continue
                    row.exit_attempts, row.close_requested = row.exit_attempts + 1, None
                    begun.append((trade, order))
                await update_each(
                    [rows[trade.id] for trade, _ in begun], ["exit_attempts", "close_requested"]
                )
                await insert_each(
                    models.Order, [{"id": o.id, **_order_columns(o)} for _, o in begun]
                )
                await _append([intent_entry(order) for _, order in begun])
            for trade, _ in begun:
                if (kept := self._active.kept(trade.id)) is not None:
                    attempts = trade.exit_attempts + 1
                    self._active.apply([dataclasses.replace(kept, exit_attempts=attempts)])
        return {trade.id for trade, _ in begun}

    async def record(self, order: Order, report: OrderReport, now: int) -> Booked | None:
        return (await self.record_many([(order, report)], now))[0]

    async def record_many(
        self, reports: Sequence[tuple[Order, OrderReport]], now: int
    ) -> list[Booked | None]:
        if not reports:
            return []
        await self._open_accounts([(order.trader_id, order.mode) for order, _ in reports])
        with self._active.writing(), self._ledgers.writing():
            async with in_transaction():
                books = await _Books.read(reports)
                booked = [books.book(order, report, now) for order, report in reports]
                await books.write(now)
            self._active.apply(books.trades[i] for i in books.changed_trades)
            for account in books.accounts:
                self._ledgers.put(account, books.ledgers[account])
        return booked

    async def request_close(self, trade_id: uuid.UUID, reason: str) -> bool:
        moved = await models.Trade.filter(id=trade_id, status=TradeStatus.OPEN).update(
            close_requested=reason
        )
        return bool(moved)

    async def close_requests(self) -> list[tuple[Trade, str]]:
        """The reasons first, without the trades: there are none at almost every look."""
        reasons = dict(
            await models.Trade.filter(
                status=TradeStatus.OPEN, close_requested__not_isnull=True
            ).values_list("id", "close_requested")
        )
        if not reasons:
            return []
        rows = await self._trades(models.Trade.filter(id__in=list(reasons)))
        return [(trade_of(row), str(reasons[row["id"]])) for row in rows]

    async def set_exit_levels(self, levels: Sequence[ExitLevels]) -> set[uuid.UUID]:
        by_trade = {level.trade_id: level for level in levels}
        if not by_trade:
            return set()
        with self._active.writing():
            updated = await self._set_exit_levels(by_trade)
            for trade_id in updated:
                if (kept := self._active.kept(trade_id)) is not None:
                    level = by_trade[trade_id]
                    self._active.apply(
                        [
                            dataclasses.replace(
                                kept, stop_loss=level.stop_loss, take_profit=level.take_profit
                            )
                        ]
                    )
            return updated

    async def _set_exit_levels(self, by_trade: dict[uuid.UUID, ExitLevels]) -> set[uuid.UUID]:
        async with in_transaction():
            rows = await locked(
                models.Trade.filter(id__in=list(by_trade), status=TradeStatus.OPEN).only(
                    "id", "stop_loss", "take_profit"
                )
            )
            for row in rows:
                row.stop_loss = by_trade[row.id].stop_loss
                row.take_profit = by_trade[row.id].take_profit
            if rows:
                await update_each(rows, ["stop_loss", "take_profit"])
        return {row.id for row in rows}

    async def set_highest(self, trade_id: uuid.UUID, highest: Decimal) -> None:
        with self._active.writing():
            raised = await (
                models.Trade.filter(id=trade_id, status=TradeStatus.OPEN)
                .filter(highest_price__lt=highest)
                .update(highest_price=highest)
            )
            if raised and (kept := self._active.kept(trade_id)) is not None:
                self._active.apply([dataclasses.replace(kept, highest_price=highest)])

    async def snapshot(
        self,
        trader_id: uuid.UUID,
        mode: TradingMode,
        time: int,
        equity: Decimal,
        marks: Mapping[str, Decimal],
    ) -> Performance | None:
        await self._open_accounts([(trader_id, mode)])
        try:
            async with in_transaction():
                ledger, row = await self._account(trader_id, mode)
                await models.EquitySnapshot.create(
                    trader_id=trader_id, mode=mode, time=to_datetime(time), equity=equity
                )
                await models.Ledger.filter(id=ledger.id).update(
                    marks={symbol: str(price) for symbol, price in marks.items()},
                    marked_at=to_datetime(time),
                )
                performance = performance_of(row).after_snapshot(time, equity)
                await models.Performance.filter(id=row.id).update(
                    **_performance_columns(performance)
                )
        except IntegrityError:
            return None
        return performance

    async def audit(self, entry: AuditEntry) -> None:
        await _append([entry])


class _Books:
    """The rows a batch of reports books into, read (and locked) once, booked in memory in
    the batch's order (two fills of one trader see each other), written back together."""

    def __init__(
        self,
        orders: dict[uuid.UUID, models.Order],
        trades: dict[uuid.UUID, models.Trade],
        ledgers: dict[tuple[uuid.UUID, TradingMode], models.Ledger],
        performances: dict[tuple[uuid.UUID, TradingMode], models.Performance],
        fill_ids: dict[uuid.UUID, set[str]],
        owners: dict[uuid.UUID, int],
    ) -> None:
        self.order_rows, self.trade_rows = orders, trades
        self.ledger_rows, self.performance_rows = ledgers, performances
        self.fill_ids = fill_ids
        self.orders = {i: order_of(_columns(r, ORDER_READ, owners[i])) for i, r in orders.items()}
        self.trades = {
            i: trade_of(_columns(r, TRADE_READ, owners[r.trader_id])) for i, r in trades.items()
        }
        self.ledgers = {key: ledger_of(row) for key, row in ledgers.items()}
        self.performances = {key: performance_of(row) for key, row in performances.items()}
        self.fills: list[dict[str, Any]] = []
        self.audit: list[AuditEntry] = []
        self.changed_orders: set[uuid.UUID] = set()
        self.changed_trades: set[uuid.UUID] = set()
        self.accounts: set[tuple[uuid.UUID, TradingMode]] = set()

    @classmethod
    async def read(cls, reports: Sequence[tuple[Order, OrderReport]]) -> _Books:
        # Rows, not values: Tortoise drops FOR UPDATE from values() queries.
        order_ids = list({order.id for order, _ in reports})
        orders = {r.id: r for r in await locked(models.Order.filter(id__in=order_ids))}
        trade_ids = list({row.trade_id for row in orders.values()})
        trades = {r.id: r for r in await locked(models.Trade.filter(id__in=trade_ids))}
        trader_ids = list({row.trader_id for row in trades.values()})
        ledgers = {
            (r.trader_id, r.mode): r
            for r in await locked(models.Ledger.filter(trader_id__in=trader_ids))
        }
        performances = {
            (r.trader_id, r.mode): r
            for r in await locked(models.Performance.filter(trader_id__in=trader_ids))
        }
        filled = [order.id for order, report in reports if report.fills]
        fill_ids: dict[uuid.UUID, set[str]] = {order_id: set() for order_id in order_ids}
        if filled:
            for order_id, fill_id in await models.Fill.filter(order_id__in=filled).values_list(
                "order_id", "id"
            ):
                fill_ids[as_uuid(order_id)].add(str(fill_id))
        owners = {order.id: order.owner_id for order, _ in reports} | {
            order.trader_id: order.owner_id for order, _ in reports
        }
        return cls(orders, trades, ledgers, performances, fill_ids, owners)

    def book(self, order: Order, report: OrderReport, now: int) -> Booked | None:
        current = self.orders.get(order.id)
        if current is None:
            return None
        trade = self.trades[current.trade_id]
        account = (trade.trader_id, trade.mode)
        done = book_report(
            current,
            trade,
            self.ledgers[account],
            self.performances[account],
            report,
            frozenset(self.fill_ids[current.id]),
            now,
        )
        self.orders[current.id], self.trades[trade.id] = done.order, done.trade
        self.changed_orders.add(current.id)
        if done.trade != trade:
            self.changed_trades.add(trade.id)
        if done.fills:
            self.ledgers[account], self.performances[account] = done.ledger, done.performance
            self.accounts.add(account)
        for fill in done.fills:
            self.fill_ids[current.id].add(fill.id)
            self.fills.append(
                {
                    "id": fill.id,
                    "order_id": current.id,
                    "trade_id": trade.id,
                    "trader_id": trade.trader_id,
                    "amount": fill.amount,
                    "price": fill.price,
                    "expected_price": fill.expected_price,
                    "fee": fill.fee,
                    "fee_currency": LEDGER_CURRENCY,
                    "liquidity": fill.liquidity,
                    "time": to_datetime(fill.time),
                }
            )
        self.audit.extend(report_entries(current, done))
        return Booked(done.order, done.trade, done.fills, done.opened, done.closed, done.ended)

    async def write(self, now: int) -> None:
        """Every changed row, by one prepared statement per table (`update_each`) of the
        columns that changed."""
        await _update(
            [
                (self.order_rows[i], _booked_order_columns(self.orders[i], now))
                for i in self.changed_orders
            ],
            ORDER_BOOKED,
        )
        await _update(
            [(self.trade_rows[i], _trade_columns(self.trades[i])) for i in self.changed_trades],
            TRADE_BOOKED,
        )
        await _update(
            [(self.ledger_rows[a], _ledger_columns(self.ledgers[a])) for a in self.accounts],
            LEDGER_BOOKED,
        )
        await _update(
            [
                (self.performance_rows[a], _performance_columns(self.performances[a]))
                for a in self.accounts
            ],
            PERFORMANCE_FIELDS,
        )
        await insert_each(models.Fill, self.fills)
        await _append(self.audit)


async def _update(changes: list[tuple[ModelT, Mapping[str, Any]]], fields: Sequence[str]) -> None:
    """Set each row's `fields` to its new values and write the rows that changed, only the
    columns that changed in any of them."""
    changed: set[str] = set()
    rows = []
    for row, columns in changes:
        differs = False
        for name in fields:
            value = columns[name]
            if getattr(row, name) != value:
                setattr(row, name, value)
                changed.add(name)
                differs = True
        if differs:
            rows.append(row)
    await update_each(rows, sorted(changed))


def _booked_order_columns(order: Order, now: int) -> dict[str, Any]:
    columns = {name: getattr(order, name) for name in ORDER_BOOKED if name != "updated_at"}
    return columns | {"updated_at": to_datetime(order.updated_at or now)}
