"""Signals in the database: the queue between the stages.

`add_many` relies on the partial unique index `signals_one_active` (at most one active
signal per trader and symbol): a second engine process inserting the same signal is refused
by the database and told so, instead of both reading "none active" and both inserting. `claim`
leases signals to one stage instance: on PostgreSQL the candidates are locked with
`FOR UPDATE SKIP LOCKED`, so concurrent claimers take different rows without waiting for
each other; on every back end the lease is a compare-and-set on the rows (one statement for
the whole batch), so a claim never takes a signal someone else holds. `transition_many` is a
compare-and-set too, per move, checked against the lifecycle first and recorded in
`signal_transitions` in the same transaction; a batch of moves (a claim's decisions) is
one read and three writes, whatever its size, and a batch of deferrals one read and one
write.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app.db import models
from app.domain.enums import ACTIVE_SIGNAL_STATUSES, SignalStatus
from app.domain.signal import Signal
from app.domain.signal_lifecycle import check_transition
from app.engine.clock import to_datetime, to_ms
from app.engine.ports import Move
from app.services.repositories.locks import locked, postgres
from app.services.repositories.rows import as_uuid, insert_each, update_each


def signal_of(row: models.Signal, owner_id: int) -> Signal:
    return Signal(
        id=row.id,
        trader_id=row.trader_id,
        owner_id=owner_id,
        symbol=row.symbol,
        interval=row.interval,
        side=row.side,
        price=row.price,
        candle_time=to_ms(row.candle_time),
        created_at=to_ms(row.created_at),
        score=row.score,
        indicators=row.indicators,
        status=row.status,
        status_reason=row.status_reason,
    )


def _free_at(now: int) -> Q:
    return Q(lease_until=None) | Q(lease_until__lte=to_datetime(now))


async def _lease(
    ids: Sequence[uuid.UUID], status: SignalStatus, owner: str, now: int, until: int
) -> set[uuid.UUID]:
    """One compare-and-set for all: the rows still in `status` and free are leased to
    `owner`; when not all of them were, reading back this owner's lease says which. The
    read needs no transaction around the two: a row leased here stays this owner's until
    `until`, unless a move without a lease (a user's) takes it, which leaves it unclaimed
    either way."""
    wanted = set(ids)
    updated = await models.Signal.filter(_free_at(now), id__in=list(wanted), status=status).update(
        lease_owner=owner, lease_until=to_datetime(until)
    )
    if updated == len(wanted):
        return wanted
    claimed = await models.Signal.filter(
        id__in=list(wanted), lease_owner=owner, lease_until=to_datetime(until)
    ).values_list("id", flat=True)
    return {as_uuid(value) for value in claimed}


class DbSignalRepository:
    async def active_symbols(
        self, wanted: Mapping[uuid.UUID, Collection[str]]
    ) -> dict[uuid.UUID, set[str]]:
        if not wanted:
            return {}
        rows = await models.Signal.filter(
            trader_id__in=list(wanted),
            symbol__in=list({symbol for symbols in wanted.values() for symbol in symbols}),
            status__in=list(ACTIVE_SIGNAL_STATUSES),
        ).values_list("trader_id", "symbol")
        found: dict[uuid.UUID, set[str]] = {}
        for trader, symbol in rows:
            trader_id = as_uuid(trader)
            if symbol in wanted[trader_id]:
                found.setdefault(trader_id, set()).add(str(symbol))
        return found

    async def add(self, signal: Signal) -> bool:
        return signal.id in await self.add_many([signal])

    async def add_many(
        self, signals: Sequence[Signal], lease: tuple[str, int] | None = None
    ) -> set[uuid.UUID]:
        if not signals:
            return set()
        owner, until = lease if lease is not None else (None, None)
        # A row the partial unique index refuses is skipped (INSERT OR IGNORE, ON CONFLICT
        # DO NOTHING); counting the rows says whether all went in (they have new ids), and
        # only when some did not, reading the ids back says which.
        await insert_each(
            models.Signal,
            [
                {
                    "id": signal.id,
                    "trader_id": signal.trader_id,
                    "symbol": signal.symbol,
                    "interval": signal.interval,
                    "side": signal.side,
                    "price": signal.price,
                    "score": signal.score,
                    "indicators": dict(signal.indicators),
                    "status": signal.status,
                    "status_reason": signal.status_reason,
                    "candle_time": to_datetime(signal.candle_time),
                    "created_at": to_datetime(signal.created_at),
                    "lease_owner": owner,
                    "lease_until": None if until is None else to_datetime(until),
                }
                for signal in signals
            ],
            ignore_conflicts=True,
        )
        ids = {signal.id for signal in signals}
        stored = models.Signal.filter(id__in=list(ids))
        if await stored.count() == len(ids):
            return ids
        return {as_uuid(value) for value in await stored.values_list("id", flat=True)}

    async def claim(
        self, status: SignalStatus, owner: str, now: int, until: int, limit: int
    ) -> list[Signal]:
        async with in_transaction():
            candidates = models.Signal.filter(_free_at(now), status=status).order_by(
                "created_at", "id"
            )
            if postgres():
                candidates = candidates.select_for_update(skip_locked=True)
            # Model rows, not values_list: Tortoise drops FOR UPDATE from a values query.
            ids = [row.id for row in await candidates.limit(limit).only("id")]
            if not ids:
                return []
            claimed = await _lease(ids, status, owner, now, until)
        return await self._load([signal_id for signal_id in ids if signal_id in claimed])

    async def claim_known(
        self, signals: Sequence[Signal], status: SignalStatus, owner: str, now: int, until: int
    ) -> list[Signal]:
        if not signals:
            return []
        claimed = await _lease([signal.id for signal in signals], status, owner, now, until)
        return [signal for signal in signals if signal.id in claimed]

    async def transition(
        self,
        signal: Signal,
        status: SignalStatus,
        reason: str | None,
        owner: str | None,
        *,
        at: int,
        not_before: int | None = None,
    ) -> Signal | None:
        moved = await self.transition_many([Move(signal, status, reason, owner, not_before)], at=at)
        return moved[0]

    async def transition_many(self, moves: Sequence[Move], *, at: int) -> list[Signal | None]:
        for move in moves:
            check_transition(move.signal.status, move.status)
        if not moves:
            return []
        async with in_transaction():
            # The rows as they are now (locked on PostgreSQL until the commit), then each
            # move checked against them in order: a compare-and-set per move, written in two
            # statements for the whole batch.
            query = models.Signal.filter(id__in=[move.signal.id for move in moves]).only(
                "id", "status", "status_reason", "lease_owner", "lease_until"
            )
            rows = {row.id: row for row in await locked(query)}
            results: list[Signal | None] = []
            changed: dict[uuid.UUID, models.Signal] = {}
            transitions: list[dict[str, Any]] = []
            for move in moves:
                row = rows.get(move.signal.id)
                if (
                    row is None
                    or row.status != move.signal.status
                    or (move.owner is not None and row.lease_owner != move.owner)
                ):
                    results.append(None)
                    continue
                parked = None if move.not_before is None else to_datetime(move.not_before)
                row.status, row.status_reason = move.status, move.reason
                row.lease_owner, row.lease_until = move.next_owner, parked
                changed[row.id] = row
                transitions.append(
                    {
                        "signal_id": row.id,
                        "from_status": move.signal.status,
                        "to_status": move.status,
                        "reason": move.reason,
                        "at": to_datetime(at),
                    }
                )
                results.append(move.signal.with_status(move.status, move.reason))
            if changed:
                await update_each(
                    list(changed.values()),
                    ["status", "status_reason", "lease_owner", "lease_until"],
                )
                await insert_each(models.SignalTransition, transitions)
        return results

    async def defer_many(self, deferrals: Sequence[tuple[Signal, str, int]]) -> set[uuid.UUID]:
        if not deferrals:
            return set()
        async with in_transaction():
            # A compare-and-set per signal (still where it was, still this owner's), checked
            # against the rows as they are now (locked on PostgreSQL until the commit) and
            # written in one statement for all, as the moves are.
            query = models.Signal.filter(id__in=[signal.id for signal, _, _ in deferrals]).only(
                "id", "status", "lease_owner", "lease_until"
            )
            rows = {row.id: row for row in await locked(query)}
            parked: dict[uuid.UUID, models.Signal] = {}
            for signal, owner, until in deferrals:
                row = rows.get(signal.id)
                if row is None or row.status != signal.status or row.lease_owner != owner:
                    continue
                row.lease_owner, row.lease_until = None, to_datetime(until)
                parked[row.id] = row
            await update_each(list(parked.values()), ["lease_owner", "lease_until"])
        return set(parked)

    async def _load(self, ids: Sequence[uuid.UUID]) -> list[Signal]:
        if not ids:
            return []
        rows = await models.Signal.filter(id__in=list(ids)).order_by("created_at", "id")
        owners: dict[uuid.UUID, int] = dict(
            await models.Trader.filter(id__in={row.trader_id for row in rows}).values_list(
                "id", "owner_id"
            )
        )
        return [signal_of(row, owners[row.trader_id]) for row in rows]
