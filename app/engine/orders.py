"""OrderManager: the one code path by which anything opens, closes or cancels a position.

Every stage (entries, the position monitor, exit signals, the drawdown rule) and every
manual action (`closePosition`, `cancelOrder`, the emergency stop) goes through here, live
or in a backtest, demo or live mode. Each action follows invariant 2:

1. the order gets its client order id and is recorded as an intent, with its audit entry,
   before anything is sent (`TradeStore.begin_entries` / `begin_exits`, which also refuse
   a second entry for one signal and a second exit in flight for one trade; the entries
   of one candle close are recorded together, in one transaction, and so are the exits
   its prices trigger);
2. the executor sends it;
3. what the executor reports is booked: fills, the trade, the ledger, the performance
   aggregate and the audit log in one transaction (`TradeStore.record`);
4. subscribers hear of it only then.

A crash between 1 and 3 loses nothing: `reconcile` asks the executor about every order
still recorded as an intent or open. One the venue never received is sent now (an exit:
a position must not stay unprotected; an entry while it is fresh) or given up (a stale
entry), one it did receive is booked as it stands. Actions on one trade are serialised in
this process (a lock per trade), so an emergency stop never races the monitor over one
position while different positions are worked at once; across processes the store's
compare-and-set rules decide, and the store's transactions (row locks) keep the ledger
that a trader's positions share.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from app.domain.decision import KeyLevels
from app.domain.enums import (
    ExitReason,
    OrderPurpose,
    OrderSide,
    OrderStatus,
    OrderType,
    TradeStatus,
)
from app.domain.exits import exit_levels
from app.domain.intervals import interval_ms
from app.domain.orders import Order, OrderReport, entry_order_id, exit_order_id
from app.domain.risk import EntryPlan
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.clock import Clock
from app.engine.executors.base import ExecutorError, TradeExecutor
from app.engine.instruments import Instruments
from app.engine.ports import Booked, ExitLevels, Notifier, TradeStore

log = logging.getLogger(__name__)

ENTRY_INTENT_TTL_MS = 60_000
ENTRY_LIMIT_CANDLES = 3
STUCK_INTENT_MS = 10_000
LIVE_STATUSES = frozenset({OrderStatus.INTENT, OrderStatus.OPEN})

Executors = Callable[[Order], TradeExecutor | None]


@dataclass(frozen=True, slots=True)
class Entry:
    """What entering one ready signal takes: the risk manager's plan, the decision's
    levels, and the limit price when the entry waits for one."""

    spec: TraderSpec
    signal: Signal
    plan: EntryPlan
    levels: KeyLevels | None = None
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Exit:
    """Closing one position at market: the trade as the caller read it, why, the price
    the caller expects (the stop or target that triggered), and why in words."""

    trade: Trade
    reason: ExitReason
    expected_price: Decimal | None = None
    note: str | None = None


class OrderManager:
    def __init__(
        self,
        store: TradeStore,
        executors: Executors,
        notifier: Notifier,
        clock: Clock,
        instruments: Instruments,
        entry_intent_ttl_ms: int = ENTRY_INTENT_TTL_MS,
    ) -> None:
        self.store = store
        self.executors = executors
        self.notifier = notifier
        self.clock = clock
        self.instruments = instruments
        self.entry_intent_ttl_ms = entry_intent_ttl_ms
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    def lock(self, trade_id: uuid.UUID) -> asyncio.Lock:
        """Held around every order action on one trade in this process."""
        return self._locks.setdefault(trade_id, asyncio.Lock())

    async def open(
        self,
        spec: TraderSpec,
        signal: Signal,
        plan: EntryPlan,
        levels: KeyLevels | None,
        limit_price: Decimal | None = None,
    ) -> Booked | None:
        """`open_many` of one entry."""
        booked = await self.open_many([Entry(spec, signal, plan, levels, limit_price)])
        return booked.get(signal.id)

    async def open_many(self, entries: Sequence[Entry]) -> dict[uuid.UUID, Booked]:
        """Enter positions for ready signals: at market, or with a limit order at an
        entry's `limit_price` that waits `ENTRY_LIMIT_CANDLES` candles for the price to come
        down. Every intent is recorded first, in one transaction; then the orders are sent
        at once, and what their venues answered is booked in one transaction. By signal id,
        what was booked; an entry is missing when it was already made (its signal's client
        order id exists) or its trader was disabled meanwhile."""
        now = self.clock.now()
        made = {entry.signal.id: (entry, *self._entry(entry, now)) for entry in entries}
        locks = [self.lock(trade.id) for _, trade, _ in made.values()]
        for lock in locks:
            await lock.acquire()
        try:
            recorded = await self.store.begin_entries(
                [(trade, order) for _, trade, order in made.values()]
            )
            sending = [(e, order) for e, trade, order in made.values() if trade.id in recorded]
            reports = await asyncio.gather(*(self._report(order) for _, order in sending))
            sent = [(e, o, r) for (e, o), r in zip(sending, reports, strict=True) if r is not None]
            recorded_reports = await self.store.record_many(
                [(order, report) for _, order, report in sent], self.clock.now()
            )
            booked = await self._place_levels(
                [(e, b) for (e, _, _), b in zip(sent, recorded_reports, strict=True) if b]
            )
        finally:
            for lock in locks:
                lock.release()
        for done in booked.values():
            await self._announce(done)
        return booked

    def _entry(self, entry: Entry, now: int) -> tuple[Trade, Order]:
        spec, signal, limit_price = entry.spec, entry.signal, entry.limit_price
        price = limit_price or entry.plan.expected_price
        instrument = self.instruments.instrument(signal.symbol, price)
        stop, target = exit_levels(price, spec.risk, entry.levels, instrument)
        trade = Trade(
            id=uuid.uuid4(),
            trader_id=spec.id,
            owner_id=spec.owner_id,
            mode=spec.mode,
            symbol=signal.symbol,
            opened_at=now,
            signal_id=signal.id,
            stop_loss=stop,
            take_profit=target,
            trailing_stop=spec.risk.trailing_stop,
        )
        order = Order(
            id=uuid.uuid4(),
            client_order_id=entry_order_id(signal.id),
            trader_id=spec.id,
            owner_id=spec.owner_id,
            trade_id=trade.id,
            mode=spec.mode,
            purpose=OrderPurpose.ENTRY,
            symbol=signal.symbol,
            side=OrderSide.BUY,
            type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
            amount=entry.plan.amount,
            created_at=now,
            price=limit_price,
            expected_price=price,
            expires_at=None
            if limit_price is None
            else now + ENTRY_LIMIT_CANDLES * interval_ms(spec.interval),
        )
        return trade, order

    async def _place_levels(self, booked: list[tuple[Entry, Booked]]) -> dict[uuid.UUID, Booked]:
        """Each opened entry's stop and target from the price actually paid (the intent had
        them from the expected price, so a crash right after the fill still leaves them in
        place), written together; by signal id, the entries as booked."""
        levels: dict[uuid.UUID, ExitLevels] = {}
        for entry, done in booked:
            trade = done.trade
            if not done.opened or trade.entry_price is None:
                continue
            instrument = self.instruments.instrument(trade.symbol, trade.entry_price)
            stop, target = exit_levels(trade.entry_price, entry.spec.risk, entry.levels, instrument)
            levels[trade.id] = ExitLevels(trade.id, stop, target)
        placed = await self.store.set_exit_levels(list(levels.values())) if levels else set()
        found = {}
        for entry, done in booked:
            if done.trade.id in placed:
                at = levels[done.trade.id]
                trade = replace(done.trade, stop_loss=at.stop_loss, take_profit=at.take_profit)
                done = replace(done, trade=trade)
            found[entry.signal.id] = done
        return found

    async def close(
        self,
        trade: Trade,
        reason: ExitReason,
        expected_price: Decimal | None = None,
        note: str | None = None,
    ) -> Booked | None:
        """`close_many` of one position."""
        return (await self.close_many([Exit(trade, reason, expected_price, note)])).get(trade.id)

    async def close_many(self, exits: Sequence[Exit]) -> dict[uuid.UUID, Booked]:
        """Sell whole positions at market, as `open_many` enters them: every exit intent
        recorded first, in one transaction, the orders sent at once, what their venues
        answered booked in one transaction. By trade id, what was booked; a trade is
        missing when it is no longer open or another exit of it is in flight. An exit the
        store refused because the caller's copy of the trade was stale (an exit attempt or
        a fill since) is tried once more from the trade as stored."""
        by_trade = {e.trade.id: e for e in exits}
        locks = [self.lock(trade_id) for trade_id in sorted(by_trade)]
        for lock in locks:
            await lock.acquire()
        try:
            begun, booked = await self._close_all(list(by_trade.values()))
            again = []
            for exit_ in by_trade.values():
                if exit_.trade.id not in begun:
                    current = await self.store.trade(exit_.trade.id)
                    if current is not None and current != exit_.trade:
                        again.append(replace(exit_, trade=current))
            booked |= (await self._close_all(again))[1]
        finally:
            for lock in locks:
                lock.release()
        for done in booked.values():
            await self._announce(done)
        return booked

    async def _close_all(
        self, exits: Sequence[Exit]
    ) -> tuple[set[uuid.UUID], dict[uuid.UUID, Booked]]:
        """One exit attempt of each open trade as the caller read it (the store's
        compare-and-set on its exit attempts refuses a stale one): the trades whose exit
        was recorded, and what was booked of them by trade id."""
        now = self.clock.now()
        orders = {
            e.trade.id: (e.trade, self._exit_order(e, now))
            for e in exits
            if e.trade.status == TradeStatus.OPEN
        }
        begun = await self.store.begin_exits(list(orders.values()))
        sending = [order for trade_id, (_, order) in orders.items() if trade_id in begun]
        reports = await asyncio.gather(*(self._report(order) for order in sending))
        sent = [(o, r) for o, r in zip(sending, reports, strict=True) if r is not None]
        recorded = await self.store.record_many(sent, self.clock.now())
        return begun, {done.trade.id: done for done in recorded if done is not None}

    @staticmethod
    def _exit_order(exit_: Exit, now: int) -> Order:
        trade = exit_.trade
        return Order(
            id=uuid.uuid4(),
            client_order_id=exit_order_id(trade.id, trade.exit_attempts + 1),
            trader_id=trade.trader_id,
            owner_id=trade.owner_id,
            trade_id=trade.id,
            mode=trade.mode,
            purpose=OrderPurpose.EXIT,
            symbol=trade.symbol,
            side=OrderSide.SELL,
            type=OrderType.MARKET,
            amount=trade.held,
            created_at=now,
            expected_price=exit_.expected_price,
            exit_reason=exit_.reason,
            reason=exit_.note,
        )

    async def cancel(self, order: Order) -> Booked | None:
        """Cancel an order that is not final yet; its earlier fills stay booked."""
        async with self.lock(order.trade_id):
            current = await self.store.order(order.id)
            if current is None or current.final:
                return None
            if self.executors(current) is None:
                report: OrderReport | None = OrderReport(
                    OrderStatus.CANCELED, reason="no executor for its mode"
                )
            else:
                report = await self._ask(current, "cancel")
            booked = None if report is None else await self._book(current, report)
        await self._announce(booked)
        return booked

    async def poll(self, trader_ids: Collection[uuid.UUID] | None = None) -> int:
        """Book what resting orders got since they were last asked about; cancel those whose
        time ran out (`expired`, keeping what they filled); settle an intent whose sending
        failed (`STUCK_INTENT_MS` ago) as reconciliation would. A resting order the venue
        reports nothing new of is left alone without another read of the store."""
        handled = 0
        now = self.clock.now()
        for order in await self.store.orders(LIVE_STATUSES, trader_ids):
            if order.status == OrderStatus.INTENT and now - order.created_at < STUCK_INTENT_MS:
                continue
            if order.status == OrderStatus.OPEN and not self._expired(order, now):
                report = await self._ask(order, "fetch")
                if report is None or not report.changes(order):
                    continue
            async with self.lock(order.trade_id):
                current = await self._unchanged(order)
                if current is None:
                    continue
                if current.status == OrderStatus.INTENT:
                    booked = await self._settle(current)
                elif self._expired(current, now):
                    booked = await self._expire(current)
                else:
                    booked = await self._refresh(current)
            if booked is not None and (booked.fills or booked.order.final):
                await self._announce(booked)
                handled += 1
        return handled

    @staticmethod
    def _expired(order: Order, now: int) -> bool:
        return order.expires_at is not None and now >= order.expires_at

    async def reconcile(self, trader_ids: Collection[uuid.UUID] | None = None) -> int:
        """After a restart: settle every order recorded as an intent or open; how many."""
        settled = 0
        for order in await self.store.orders(LIVE_STATUSES, trader_ids):
            async with self.lock(order.trade_id):
                current = await self._unchanged(order)
                booked = None if current is None else await self._settle(current)
            if booked is not None:
                await self._announce(booked)
                settled += 1
        return settled

    async def _unchanged(self, order: Order) -> Order | None:
        """`order` as stored now, if it still has the status it was listed with (another
        action on its trade may have settled it while this one waited for the lock)."""
        current = await self.store.order(order.id)
        return current if current is not None and current.status == order.status else None

    async def _ask(self, order: Order, action: str) -> OrderReport | None:
        """`fetch` or `cancel` `order` at its venue; None when there is none, when it does
        not answer (logged; asked again later) or, for fetch, when it never got the order."""
        executor = self.executors(order)
        if executor is None:
            return None
        try:
            if action == "cancel":
                return await executor.cancel(order)
            return await executor.fetch(order)
        except ExecutorError:
            log.exception("%s of %s failed; asked again later", action, order.client_order_id)
            return None

    async def _expire(self, order: Order) -> Booked | None:
        report = await self._ask(order, "cancel")
        if report is None:
            return None
        if report.status == OrderStatus.CANCELED:
            report = replace(report, status=OrderStatus.EXPIRED, reason="its time ran out")
        return await self._book(order, report)

    async def _settle(self, order: Order) -> Booked | None:
        executor = self.executors(order)
        if order.status == OrderStatus.OPEN or executor is None:
            return await self._refresh(order)
        try:
            report = await executor.fetch(order)
        except ExecutorError:
            log.exception("reconciling %s: the venue did not answer", order.client_order_id)
            return None
        if report is not None:
            return await self._book(order, report)
        stale = self.clock.now() - order.created_at > self.entry_intent_ttl_ms
        if order.purpose == OrderPurpose.ENTRY and stale:
            reason = "not sent before the engine stopped, and too old to send now"
            return await self._book(order, OrderReport(OrderStatus.REJECTED, reason=reason))
        return await self._send(order)

    async def _refresh(self, order: Order) -> Booked | None:
        report = await self._ask(order, "fetch")
        if report is None or not report.changes(order):
            return None
        return await self._book(order, report)

    async def _send(self, order: Order) -> Booked | None:
        report = await self._report(order)
        return None if report is None else await self._book(order, report)

    async def _report(self, order: Order) -> OrderReport | None:
        """Send `order`; what its venue answers, None when it did not (logged; the order
        stays an intent, which reconciliation settles)."""
        executor = self.executors(order)
        if executor is None:
            reason = f"no executor for {order.mode.value} trading"
            return OrderReport(OrderStatus.REJECTED, reason=reason)
        try:
            return await executor.place(order)
        except ExecutorError:
            log.exception("sending %s failed; reconciliation settles it", order.client_order_id)
            return None

    async def _book(self, order: Order, report: OrderReport) -> Booked | None:
        return await self.store.record(order, report, self.clock.now())

    async def _announce(self, booked: Booked | None) -> None:
        if booked is None:
            return
        trade = booked.trade
        for fill in booked.fills:
            await self.notifier.trade_changed(trade, "filled", fill)
        if booked.opened:
            await self.notifier.trade_changed(trade, "opened")
        if booked.closed:
            await self.notifier.trade_changed(trade, "closed")
        if trade.status == TradeStatus.CANCELLED and booked.ended:
            await self.notifier.trade_changed(trade, "cancelled")
        if booked.fills:
            await self.notifier.pnl_changed(trade.trader_id, trade.owner_id)
