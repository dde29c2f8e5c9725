"""In-memory stand-ins for the engine's ports, for backtests (freqtrade's `LocalTrade` beside
`Trade`): the stages run unchanged on them, and nothing reaches the database or the bus.

`MemorySignalRepository` keeps the database's rules: at most one active signal per trader
and symbol (the second `add` is refused), leases that only a free or expired claim takes,
and only the transitions the lifecycle allows, each recorded. The decision repository, the
model call log and the response cache keep theirs (`app.engine.llm` for the last two).
`MemoryTradeStore` keeps the trade store's: each client order id once, one exit in flight
per trade, entries only while the trader is enabled, each fill booked once through the same
`book_report` as the database.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from app.domain.decision import Decision, DecisionAction, KeyLevels
from app.domain.decision_quality import Label
from app.domain.enums import OrderPurpose, OrderStatus, SignalStatus, TradeStatus, TradingMode
from app.domain.ledger import DEFAULT_BALANCE, Ledger
from app.domain.llm import LlmCall
from app.domain.metrics import Performance
from app.domain.orders import FINAL_ORDER_STATUSES, Fill, Order, OrderReport
from app.domain.risk import PastExit
from app.domain.signal import Signal
from app.domain.signal_lifecycle import check_transition
from app.domain.trade import Trade, book_report
from app.domain.trader_spec import TraderSpec
from app.engine.audit import AuditEntry, intent_entry, report_entries
from app.engine.llm.ports import CachedAnswer
from app.engine.ports import Booked, DueOutcome, ExitLevels, Move, PositionView

LIVE_ORDER_STATUSES = frozenset(OrderStatus) - FINAL_ORDER_STATUSES


class MemoryTraderRepository:
    def __init__(self, specs: Iterable[TraderSpec]) -> None:
        self._specs = {spec.id: spec for spec in specs}
        self.errors: dict[uuid.UUID, str] = {}
        self.paused: dict[uuid.UUID, str] = {}

    def is_running(self, trader_id: uuid.UUID) -> bool:
        return trader_id in self._specs and not (
            trader_id in self.errors or trader_id in self.paused
        )

    async def running(self, interval: str) -> list[TraderSpec]:
        return [
            spec
            for spec in self._specs.values()
            if spec.interval == interval and self.is_running(spec.id)
        ]

    async def set_error(self, spec: TraderSpec, reason: str) -> None:
        self.errors[spec.id] = reason

    async def specs(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TraderSpec]:
        return {t: self._specs[t] for t in trader_ids if t in self._specs}

    async def running_specs(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TraderSpec]:
        return {t: self._specs[t] for t in trader_ids if self.is_running(t)}

    async def pause(self, spec: TraderSpec, reason: str) -> None:
        self.paused[spec.id] = reason


@dataclass(slots=True)
class _Lease:
    """Held by `owner` until `until`; without an owner the signal is parked until then."""

    owner: str | None
    until: int


@dataclass(frozen=True, slots=True)
class Transition:
    signal_id: uuid.UUID
    source: SignalStatus
    target: SignalStatus
    reason: str | None
    at: int


class MemorySignalRepository:
    """Indexed by status and by active (trader, symbol), as the database is: a claim or a
    check looks at the few signals it concerns, not at every signal a year of replay made."""

    def __init__(self) -> None:
        self.signals: dict[uuid.UUID, Signal] = {}
        self._leases: dict[uuid.UUID, _Lease] = {}
        self.transitions: list[Transition] = []
        self._by_status: dict[SignalStatus, dict[uuid.UUID, None]] = {}
        self._active: dict[tuple[uuid.UUID, str], uuid.UUID] = {}

    def _index(self, signal: Signal, previous: Signal | None) -> None:
        if previous is not None:
            self._by_status[previous.status].pop(previous.id, None)
            if previous.active:
                self._active.pop((previous.trader_id, previous.symbol), None)
        self._by_status.setdefault(signal.status, {})[signal.id] = None
        if signal.active:
            self._active[(signal.trader_id, signal.symbol)] = signal.id

    def all(self) -> list[Signal]:
        """Every signal in the order it was added."""
        return list(self.signals.values())

    async def active_symbols(
        self, wanted: Mapping[uuid.UUID, Collection[str]]
    ) -> dict[uuid.UUID, set[str]]:
        return {
            trader: {symbol for symbol in symbols if (trader, symbol) in self._active}
            for trader, symbols in wanted.items()
        }

    async def add_many(
        self, signals: Sequence[Signal], lease: tuple[str, int] | None = None
    ) -> set[uuid.UUID]:
        added = {signal.id for signal in signals if await self.add(signal)}
        if lease is not None:
            for signal_id in added:
                self._leases[signal_id] = _Lease(*lease)
        return added

    async def add(self, signal: Signal) -> bool:
        if signal.active and (signal.trader_id, signal.symbol) in self._active:
            return False
        self._index(signal, self.signals.get(signal.id))
        self.signals[signal.id] = signal
        return True

    async def claim(
        self, status: SignalStatus, owner: str, now: int, until: int, limit: int
    ) -> list[Signal]:
        claimed: list[Signal] = []
        waiting = (self.signals[i] for i in self._by_status.get(status, {}))
        for signal in sorted(waiting, key=lambda signal: signal.queue_order):
            if len(claimed) >= limit:
                break
            if self._lease(signal.id, owner, now, until):
                claimed.append(signal)
        return claimed

    async def claim_known(
        self, signals: Sequence[Signal], status: SignalStatus, owner: str, now: int, until: int
    ) -> list[Signal]:
        return [
            signal
            for signal in signals
            if (current := self.signals.get(signal.id)) is not None
            and current.status == status
            and self._lease(signal.id, owner, now, until)
        ]

    def _lease(self, signal_id: uuid.UUID, owner: str, now: int, until: int) -> bool:
        """Lease the signal to `owner` until `until` if its lease is free or ran out."""
        lease = self._leases.get(signal_id)
        if lease is not None and lease.until > now:
            return False
        self._leases[signal_id] = _Lease(owner, until)
        return True

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
        return [self._move(move, at) for move in moves]

    def _move(self, move: Move, at: int) -> Signal | None:
        signal = move.signal
        current = self.signals.get(signal.id)
        held = self._holds(signal, move.owner)
        if current is None or current.status != signal.status or not held:
            return None
        if move.not_before is None:
            self._leases.pop(signal.id, None)
        else:
            self._leases[signal.id] = _Lease(move.next_owner, move.not_before)
        moved = replace(current, status=move.status, status_reason=move.reason)
        self._index(moved, current)
        self.signals[signal.id] = moved
        self.transitions.append(Transition(signal.id, current.status, move.status, move.reason, at))
        return moved

    async def defer_many(self, deferrals: Sequence[tuple[Signal, str, int]]) -> set[uuid.UUID]:
        parked: set[uuid.UUID] = set()
        for signal, owner, until in deferrals:
            current = self.signals.get(signal.id)
            if (
                current is not None
                and current.status == signal.status
                and self._holds(signal, owner)
            ):
                self._leases[signal.id] = _Lease(None, until)
                parked.add(signal.id)
        return parked

    def _holds(self, signal: Signal, owner: str | None) -> bool:
        lease = self._leases.get(signal.id)
        return owner is None or (lease is not None and lease.owner == owner)


class MemoryDecisionRepository:
    """Decisions of a backtest, judged on the replayed candles like live ones."""

    def __init__(self, signals: MemorySignalRepository) -> None:
        self._signals = signals
        self.decisions: dict[uuid.UUID, Decision] = {}
        self.outcomes: dict[uuid.UUID, Label] = {}
        self._check_at: dict[uuid.UUID, int] = {}
        self._of_signal: dict[uuid.UUID, list[Decision]] = {}
        self._unjudged: dict[uuid.UUID, None] = {}

    async def add(self, decision: Decision) -> None:
        await self.add_many([decision])

    async def add_many(self, decisions: Sequence[Decision]) -> None:
        for decision in decisions:
            self.decisions[decision.id] = decision
            self._of_signal.setdefault(decision.signal_id, []).append(decision)
            self._unjudged[decision.id] = None

    async def for_signal(self, signal_id: uuid.UUID) -> list[Decision]:
        return sorted(self._of_signal.get(signal_id, ()), key=lambda d: d.created_at)

    async def for_signals(
        self, signal_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[Decision]]:
        return {signal_id: await self.for_signal(signal_id) for signal_id in signal_ids}

    async def levels_for(self, signals: Collection[Signal]) -> dict[uuid.UUID, KeyLevels]:
        found = {}
        for signal in signals:
            decisions = await self.for_signal(signal.id)
            if decisions and decisions[-1].action == DecisionAction.ENTER_TRADE:
                found[signal.id] = decisions[-1].levels
        return found

    async def outcomes_due(self, now: int, limit: int) -> list[DueOutcome]:
        check_at = self._check_at
        unjudged = (self.decisions[i] for i in self._unjudged)
        due = [d for d in unjudged if check_at.get(d.id, d.created_at) <= now]
        due.sort(key=lambda d: (d.created_at, d.id.hex))  # only the due ones: fewer
        found = []
        for decision in due[:limit]:
            signal = self._signals.signals[decision.signal_id]
            found.append(DueOutcome(decision, signal.symbol, signal.interval))
        return found

    async def record_outcome(self, decision_id: uuid.UUID, label: Label) -> None:
        self.outcomes[decision_id] = label
        self._unjudged.pop(decision_id, None)

    async def check_outcome_later(self, decision_ids: Collection[uuid.UUID], at: int) -> None:
        for decision_id in decision_ids:
            self._check_at[decision_id] = at


class MemoryCallLog:
    """Model calls of a process that keeps no database (a backtest with a live model)."""

    def __init__(self) -> None:
        self.calls: list[LlmCall] = []

    async def record(self, call: LlmCall) -> None:
        self.calls.append(call)

    async def tokens_spent(self, owner_id: int, since: int) -> int:
        return sum(c.tokens for c in self.calls if c.owner_id == owner_id and c.created_at >= since)


class MemoryResponseCache:
    def __init__(self, answers: dict[str, CachedAnswer] | None = None) -> None:
        self.answers: dict[str, CachedAnswer] = dict(answers or {})

    async def get(self, key: str) -> CachedAnswer | None:
        return self.answers.get(key)

    async def put(self, key: str, answer: CachedAnswer) -> None:
        self.answers.setdefault(key, answer)


@dataclass(slots=True)
class CollectingNotifier:
    """Keeps what the stages announced, in order, instead of publishing it."""

    created: list[Signal] = field(default_factory=list)
    changed: list[Signal] = field(default_factory=list)
    trades: list[tuple[str, Trade, Fill | None]] = field(default_factory=list)
    pnl: list[uuid.UUID] = field(default_factory=list)

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None:
        self.created.extend(signals)

    async def signal_changed(self, signal: Signal) -> None:
        self.changed.append(signal)

    async def trade_changed(self, trade: Trade, kind: str, fill: Fill | None = None) -> None:
        self.trades.append((kind, trade, fill))

    async def pnl_changed(self, trader_id: uuid.UUID, owner_id: int) -> None:
        self.pnl.append(trader_id)

    async def flush(self) -> None:
        return None


@dataclass(slots=True)
class _Account:
    ledger: Ledger
    performance: Performance = field(default_factory=Performance)
    snapshots: dict[int, Decimal] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)


class MemoryTradeStore:
    """`TradeStore` in memory, with the database's rules: one client order id once, one exit
    in flight per trade, entries only for enabled traders, a fill booked once. Indexed as the
    database is (active trades, live orders, each trade's orders, each order's fills, exits
    by time), so a year of replayed trades costs each call only the rows it concerns."""

    def __init__(
        self, balance: Decimal = DEFAULT_BALANCE, enabled: Callable[[uuid.UUID], bool] | None = None
    ) -> None:
        self.balance = balance
        self.enabled = enabled or (lambda trader_id: True)
        self.trades: dict[uuid.UUID, Trade] = {}
        self.orders_by_id: dict[uuid.UUID, Order] = {}
        self.fills: dict[str, tuple[uuid.UUID, Fill]] = {}
        self.accounts: dict[tuple[uuid.UUID, TradingMode], _Account] = {}
        self.audit_log: list[AuditEntry] = []
        self._close_requests: dict[uuid.UUID, str] = {}
        self._active: dict[uuid.UUID, None] = {}  # in the order the trades were added
        self._live: dict[uuid.UUID, None] = {}  # orders not final, in the order added
        self._orders_of: dict[uuid.UUID, list[uuid.UUID]] = {}
        self._fills_of: dict[uuid.UUID, set[str]] = {}
        self._client_ids: set[str] = set()
        self._exits: list[tuple[int, int, uuid.UUID]] = []  # (closed at, added as, trade)
        self._added: dict[uuid.UUID, int] = {}

    def _put_trade(self, trade: Trade) -> None:
        previous = self.trades.get(trade.id)
        self.trades[trade.id] = trade
        self._added.setdefault(trade.id, len(self._added))
        if trade.active:
            self._active[trade.id] = None
        else:
            self._active.pop(trade.id, None)
        closing = previous is None or previous.status != TradeStatus.CLOSED
        if trade.status == TradeStatus.CLOSED and trade.closed_at is not None and closing:
            bisect.insort(self._exits, (trade.closed_at, self._added[trade.id], trade.id))

    def _put_order(self, order: Order) -> None:
        if order.id not in self.orders_by_id:
            self._orders_of.setdefault(order.trade_id, []).append(order.id)
            self._client_ids.add(order.client_order_id)
        self.orders_by_id[order.id] = order
        if order.final:
            self._live.pop(order.id, None)
        else:
            self._live[order.id] = None

    def _account(self, trader_id: uuid.UUID, mode: TradingMode) -> _Account:
        key = (trader_id, mode)
        if key not in self.accounts:
            self.accounts[key] = _Account(Ledger.opened(self.balance))
        return self.accounts[key]

    def fills_of(self, trade_id: uuid.UUID) -> list[Fill]:
        order_ids = set(self._orders_of.get(trade_id, ()))
        return [fill for order_id, fill in self.fills.values() if order_id in order_ids]

    def equity_curve(self, trader_id: uuid.UUID, mode: TradingMode) -> list[tuple[int, Decimal]]:
        return sorted(self._account(trader_id, mode).snapshots.items())

    async def ledger(self, trader_id: uuid.UUID, mode: TradingMode) -> Ledger:
        return self._account(trader_id, mode).ledger

    async def ledgers(
        self, accounts: Collection[tuple[uuid.UUID, TradingMode]]
    ) -> dict[tuple[uuid.UUID, TradingMode], Ledger]:
        return {key: self._account(*key).ledger for key in accounts}

    async def active_trades(self, trader_ids: Collection[uuid.UUID] | None = None) -> list[Trade]:
        active = (self.trades[t] for t in self._active)
        return [t for t in active if trader_ids is None or t.trader_id in trader_ids]

    async def open_positions(
        self, trader_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[PositionView]]:
        found: dict[uuid.UUID, list[PositionView]] = {trader: [] for trader in trader_ids}
        for trade in await self.active_trades(list(found)):
            if trade.status == TradeStatus.OPEN:
                found[trade.trader_id].append(trade)
        return found

    async def active_symbols(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        found: dict[uuid.UUID, set[str]] = {trader: set() for trader in trader_ids}
        for trade in await self.active_trades(list(found)):
            found[trade.trader_id].add(trade.symbol)
        return found

    async def trade(self, trade_id: uuid.UUID) -> Trade | None:
        return self.trades.get(trade_id)

    async def order(self, order_id: uuid.UUID) -> Order | None:
        return self.orders_by_id.get(order_id)

    async def orders(
        self,
        statuses: Collection[OrderStatus],
        trader_ids: Collection[uuid.UUID] | None = None,
        trade_id: uuid.UUID | None = None,
    ) -> list[Order]:
        live = frozenset(statuses) <= LIVE_ORDER_STATUSES
        listed = (self.orders_by_id[o] for o in self._live) if live else self.orders_by_id.values()
        return [
            o
            for o in listed
            if o.status in statuses
            and (trader_ids is None or o.trader_id in trader_ids)
            and (trade_id is None or o.trade_id == trade_id)
        ]

    async def past_exits(
        self, trader_ids: Collection[uuid.UUID], since: int
    ) -> dict[tuple[uuid.UUID, TradingMode], list[PastExit]]:
        found: dict[tuple[uuid.UUID, TradingMode], list[PastExit]] = {}
        recent = self._exits[bisect.bisect_left(self._exits, (since,)) :]
        for closed_at, _, trade_id in sorted(recent, key=lambda exit_: exit_[1]):
            t = self.trades[trade_id]
            if t.trader_id in trader_ids:
                exit_ = PastExit(t.symbol, closed_at, t.exit_reason, t.pnl or Decimal(0))
                found.setdefault((t.trader_id, t.mode), []).append(exit_)
        return found

    async def performance(self, trader_id: uuid.UUID, mode: TradingMode) -> Performance:
        return self._account(trader_id, mode).performance

    async def begin_entries(self, entries: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        recorded = set()
        for trade, order in entries:
            if order.client_order_id in self._client_ids or not self.enabled(trade.trader_id):
                continue
            self._put_trade(trade)
            self._put_order(order)
            self.audit_log.append(intent_entry(order))
            recorded.add(trade.id)
        return recorded

    async def begin_exits(self, exits: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        return {trade.id for trade, order in exits if self._begin_exit(trade, order)}

    def _begin_exit(self, trade: Trade, order: Order) -> bool:
        current = self.trades.get(trade.id)
        in_flight = any(
            o.purpose == OrderPurpose.EXIT and not o.final
            for o in map(self.orders_by_id.__getitem__, self._orders_of.get(trade.id, ()))
        )
        if (
            current is None
            or current.status != TradeStatus.OPEN
            or current.exit_attempts != trade.exit_attempts
            or current.amount != trade.amount
            or in_flight
        ):
            return False
        self.trades[trade.id] = replace(current, exit_attempts=current.exit_attempts + 1)
        self._put_order(order)
        self._close_requests.pop(trade.id, None)
        self.audit_log.append(intent_entry(order))
        return True

    async def record_many(
        self, reports: Sequence[tuple[Order, OrderReport]], now: int
    ) -> list[Booked | None]:
        return [await self.record(order, report, now) for order, report in reports]

    async def record(self, order: Order, report: OrderReport, now: int) -> Booked | None:
        current = self.orders_by_id.get(order.id)
        if current is None:
            return None
        trade = self.trades[current.trade_id]
        account = self._account(trade.trader_id, trade.mode)
        booked = self._fills_of.setdefault(current.id, set())
        done = book_report(
            current, trade, account.ledger, account.performance, report, frozenset(booked), now
        )
        self._put_order(done.order)
        self._put_trade(done.trade)
        account.ledger, account.performance = done.ledger, done.performance
        for fill in done.fills:
            self.fills[fill.id] = (done.order.id, fill)
            booked.add(fill.id)
        self.audit_log.extend(report_entries(current, done))
        return Booked(done.order, done.trade, done.fills, done.opened, done.closed, done.ended)

    async def request_close(self, trade_id: uuid.UUID, reason: str) -> bool:
        trade = self.trades.get(trade_id)
        if trade is None or trade.status != TradeStatus.OPEN:
            return False
        self._close_requests[trade_id] = reason
        return True

    async def close_requests(self) -> list[tuple[Trade, str]]:
        return [(self.trades[t], reason) for t, reason in self._close_requests.items()]

    async def set_exit_levels(self, levels: Sequence[ExitLevels]) -> set[uuid.UUID]:
        placed = set()
        for level in levels:
            trade = self.trades.get(level.trade_id)
            if trade is not None and trade.status == TradeStatus.OPEN:
                self.trades[trade.id] = replace(
                    trade, stop_loss=level.stop_loss, take_profit=level.take_profit
                )
                placed.add(trade.id)
        return placed

    async def set_highest(self, trade_id: uuid.UUID, highest: Decimal) -> None:
        trade = self.trades[trade_id]
        if trade.highest_price is None or highest > trade.highest_price:
            self.trades[trade_id] = replace(trade, highest_price=highest)

    async def snapshot(
        self,
        trader_id: uuid.UUID,
        mode: TradingMode,
        time: int,
        equity: Decimal,
        marks: Mapping[str, Decimal],
    ) -> Performance | None:
        account = self._account(trader_id, mode)
        if time in account.snapshots:
            return None
        account.snapshots[time] = equity
        account.marks = dict(marks)
        account.performance = account.performance.after_snapshot(time, equity)
        return account.performance

    async def audit(self, entry: AuditEntry) -> None:
        self.audit_log.append(entry)
