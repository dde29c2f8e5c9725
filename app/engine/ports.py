"""The ports the stages are wired to: where traders, signals and trades are kept, where
prices come from, who hears of them.

A stage knows these protocols only. Live, they are the database repositories and the event
bus (`app.services.repositories`, `app.services.notifier`); in a backtest, the in-memory
repositories and collector of `app.engine.memory`. Everything crosses a port as a value from
`app.domain`, never as an ORM row, and every time is the engine clock's (epoch ms).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from app.domain.decision import Decision, KeyLevels
from app.domain.decision_quality import Label
from app.domain.enums import OrderStatus, Side, SignalStatus, TradingMode
from app.domain.exits import Review
from app.domain.fill_model import Bar, Quote
from app.domain.ledger import Ledger
from app.domain.metrics import Performance
from app.domain.orders import Fill, Order, OrderReport
from app.domain.risk import PastExit
from app.domain.signal import Signal
from app.domain.trade import Trade
from app.domain.trader_spec import TraderSpec
from app.engine.audit import AuditEntry
from app.engine.screening import MarketView


class TraderRepository(Protocol):
    async def running(self, interval: str) -> list[TraderSpec]:
        """The traders that screen at `interval` now: enabled and running."""
        ...

    async def set_error(self, spec: TraderSpec, reason: str) -> None:
        """Stop one failing trader (status `error` with the reason); the others go on."""
        ...

    async def specs(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TraderSpec]:
        """The traders as they are now, running or not; a deleted one is not in the answer."""
        ...

    async def running_specs(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, TraderSpec]:
        """Those of the traders that are enabled and running now, as they are now."""
        ...

    async def pause(self, spec: TraderSpec, reason: str) -> None:
        """Disable a trader (status `paused` with the reason), as its own risk rules ask."""
        ...


@dataclass(frozen=True, slots=True)
class Move:
    """A move of `signal`, from the status it has, to `status`; with `owner`, only while
    that owner holds its lease; with `not_before`, parked until then, or with `next_owner`
    as well, leased to that owner until then (handed to the stage that works on it next)."""

    signal: Signal
    status: SignalStatus
    reason: str | None
    owner: str | None
    not_before: int | None = None
    next_owner: str | None = None


class SignalRepository(Protocol):
    async def active_symbols(
        self, wanted: Mapping[uuid.UUID, Collection[str]]
    ) -> dict[uuid.UUID, set[str]]:
        """By trader, those of its `wanted` symbols on which it holds an active signal (in
        one read; a trader holding none of them may be left out)."""
        ...

    async def add(self, signal: Signal) -> bool:
        """Record a new signal; False when the store refuses it because the trader already
        holds an active signal on the symbol (another engine process won the race)."""
        ...

    async def add_many(
        self, signals: Sequence[Signal], lease: tuple[str, int] | None = None
    ) -> set[uuid.UUID]:
        """`add` of each, in one write; the ids of those recorded. With `lease` (owner,
        until), each is recorded leased to that owner (handed to the stage that works on it
        next, as if it had claimed it)."""
        ...

    async def claim(
        self, status: SignalStatus, owner: str, now: int, until: int, limit: int
    ) -> list[Signal]:
        """Lease up to `limit` signals in `status` whose lease is free or ran out, oldest
        first, to `owner` until `until`; no two claimers ever get the same signal."""
        ...

    async def claim_known(
        self, signals: Sequence[Signal], status: SignalStatus, owner: str, now: int, until: int
    ) -> list[Signal]:
        """`claim` for these signals, which the caller holds as they were last written (it
        parked them): those still in `status` with a free lease are leased to `owner` until
        `until` and returned as given, in their order, without being read again."""
        ...

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
        """Move `signal` from the status it has to `status` and free its lease, only if it
        still has that status (and, with `owner`, that lease); None when it moved meanwhile.
        The move is recorded with the clock time `at` and the reason; with `not_before` the
        signal is parked until then (no claim takes it earlier). A move the lifecycle does
        not allow raises `InvalidTransitionError` (app.domain.signal_lifecycle)."""
        ...

    async def transition_many(self, moves: Sequence[Move], *, at: int) -> list[Signal | None]:
        """`transition` of each move, in one transaction; per move, in order, the signal as
        moved, or None when it moved meanwhile. A move the lifecycle does not allow raises
        before anything is written."""
        ...

    async def defer_many(self, deferrals: Sequence[tuple[Signal, str, int]]) -> set[uuid.UUID]:
        """Give back leased signals unchanged, each (signal, owner, until) parked until
        `until`, in one transaction; the signals parked (one is not when its owner no longer
        holds it)."""
        ...


class Notifier(Protocol):
    """Tells the outside what the stages changed, after the change is durable."""

    async def signals_created(self, spec: TraderSpec, signals: Sequence[Signal]) -> None: ...

    async def signal_changed(self, signal: Signal) -> None: ...

    async def trade_changed(self, trade: Trade, kind: str, fill: Fill | None = None) -> None:
        """`kind`: opened, filled, closed, cancelled; `fill` for kind filled."""
        ...

    async def pnl_changed(self, trader_id: uuid.UUID, owner_id: int) -> None:
        """The trader's metrics moved (a fill, a close, an equity snapshot)."""
        ...

    async def flush(self) -> None:
        """Return once everything announced so far is delivered."""
        ...


class PositionView(Protocol):
    """What the analysis shows of an open position (the trade stage's positions have it)."""

    @property
    def symbol(self) -> str: ...

    @property
    def side(self) -> Side: ...

    @property
    def entry_price(self) -> Decimal | None: ...

    @property
    def amount(self) -> Decimal: ...


class PositionReader(Protocol):
    async def open_positions(
        self, trader_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[PositionView]]:
        """Each trader's open positions, by trader id (every id is in the answer)."""
        ...


@dataclass(frozen=True, slots=True)
class OpenPosition:
    """An open position as the analysis reads it (a `PositionView`)."""

    symbol: str
    side: Side
    entry_price: Decimal | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class DueOutcome:
    """A decision whose outcome may be known now, with the market it was made on."""

    decision: Decision
    symbol: str
    interval: str


class DecisionRepository(Protocol):
    async def add(self, decision: Decision) -> None:
        """Record a decision; its outcome is looked at from the next outcome run on."""
        ...

    async def add_many(self, decisions: Sequence[Decision]) -> None:
        """`add` of each, in one write."""
        ...

    async def for_signal(self, signal_id: uuid.UUID) -> list[Decision]:
        """The signal's decisions, oldest first."""
        ...

    async def for_signals(
        self, signal_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[Decision]]:
        """`for_signal` of each, in one read (every id is in the answer)."""
        ...

    async def levels_for(self, signals: Collection[Signal]) -> dict[uuid.UUID, KeyLevels]:
        """The levels to trade each of `signals` at, by signal id: those of its latest
        decision when that decision is to enter (a signal without is not in the answer)."""
        ...

    async def outcomes_due(self, now: int, limit: int) -> list[DueOutcome]:
        """Unjudged decisions whose next look is due by `now`, oldest first."""
        ...

    async def record_outcome(self, decision_id: uuid.UUID, label: Label) -> None: ...

    async def check_outcome_later(self, decision_ids: Collection[uuid.UUID], at: int) -> None:
        """Look at these decisions' outcomes again at `at`."""
        ...


@dataclass(frozen=True, slots=True)
class ExitLevels:
    trade_id: uuid.UUID
    stop_loss: Decimal | None
    take_profit: Decimal | None


@dataclass(frozen=True, slots=True)
class Booked:
    """What recording an executor's report changed: the order and trade as they are now,
    and the fills booked by this call (those booked before are not repeated)."""

    order: Order
    trade: Trade
    fills: tuple[Fill, ...]
    opened: bool = False
    closed: bool = False
    ended: bool = False


class TradeStore(Protocol):
    """A trader's orders, trades, fills, ledger and performance, kept consistent: every
    write is one transaction that also appends its audit entries, and the bookkeeping of a
    fill is `app.domain.trade.book_fill` whatever the store."""

    async def ledger(self, trader_id: uuid.UUID, mode: TradingMode) -> Ledger:
        """The trader's ledger in `mode`, opened with the starting balance on first use."""
        ...

    async def ledgers(
        self, accounts: Collection[tuple[uuid.UUID, TradingMode]]
    ) -> dict[tuple[uuid.UUID, TradingMode], Ledger]:
        """Several ledgers at once, by (trader, mode)."""
        ...

    async def active_trades(self, trader_ids: Collection[uuid.UUID] | None = None) -> list[Trade]:
        """Pending and open trades (of these traders; all when None), oldest first."""
        ...

    async def open_positions(
        self, trader_ids: Collection[uuid.UUID]
    ) -> dict[uuid.UUID, list[PositionView]]:
        """Each trader's open positions, oldest first, by trader id (every id is in the
        answer): what an analysis shows of them, read without the rest of the trades."""
        ...

    async def active_symbols(self, trader_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
        """The symbols each trader has a pending or open trade in, by trader id (every id
        is in the answer): what the risk manager counts, read without the trades."""
        ...

    async def trade(self, trade_id: uuid.UUID) -> Trade | None: ...

    async def order(self, order_id: uuid.UUID) -> Order | None: ...

    async def orders(
        self,
        statuses: Collection[OrderStatus],
        trader_ids: Collection[uuid.UUID] | None = None,
        trade_id: uuid.UUID | None = None,
    ) -> list[Order]:
        """Orders in these statuses, oldest first."""
        ...

    async def past_exits(
        self, trader_ids: Collection[uuid.UUID], since: int
    ) -> dict[tuple[uuid.UUID, TradingMode], list[PastExit]]:
        """Positions of these traders that closed at or after `since`, by (trader, mode)."""
        ...

    async def performance(self, trader_id: uuid.UUID, mode: TradingMode) -> Performance: ...

    async def begin_entries(self, entries: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        """Record new pending trades with their entry orders as intents, in one transaction;
        the trades recorded. An entry is left out when its trader is no longer enabled or
        its client order id exists."""
        ...

    async def begin_exits(self, exits: Sequence[tuple[Trade, Order]]) -> set[uuid.UUID]:
        """Record the exit orders of open trades as intents, in one transaction; the trades
        whose exit was recorded. An exit is left out unless its trade is still open with
        `trade.exit_attempts` attempts and `trade.amount`, with no exit in flight."""
        ...

    async def record(self, order: Order, report: OrderReport, now: int) -> Booked | None:
        """Book what the executor reports of `order`: the fills not booked yet and its
        status; None when the store has no such order."""
        ...

    async def record_many(
        self, reports: Sequence[tuple[Order, OrderReport]], now: int
    ) -> list[Booked | None]:
        """`record` of each, in order (a later report sees what an earlier one booked), in
        one transaction."""
        ...

    async def request_close(self, trade_id: uuid.UUID, reason: str) -> bool:
        """Ask the engine to close an open trade (from a process that cannot trade)."""
        ...

    async def close_requests(self) -> list[tuple[Trade, str]]:
        """Open trades someone asked to close, with the reason asked."""
        ...

    async def set_exit_levels(self, levels: Sequence[ExitLevels]) -> set[uuid.UUID]:
        """Place open trades' stop losses and take profits (from their actual entry prices),
        in one write; the trades placed (one no longer open is not)."""
        ...

    async def set_highest(self, trade_id: uuid.UUID, highest: Decimal) -> None:
        """Raise an open trade's high-water mark (its trailing stop follows it)."""
        ...

    async def snapshot(
        self,
        trader_id: uuid.UUID,
        mode: TradingMode,
        time: int,
        equity: Decimal,
        marks: Mapping[str, Decimal],
    ) -> Performance | None:
        """Record the trader's equity at `time`, its positions valued at `marks` (kept as the
        latest marks for readers without a market); None when one is recorded at `time`."""
        ...

    async def audit(self, entry: AuditEntry) -> None: ...


class LevelsSource(Protocol):
    """The key levels of the decisions behind ready signals, by signal id (the analysis's
    DecisionRepository serves them); a signal the analysis gave none is not in the answer."""

    async def levels_for(self, signals: Collection[Signal]) -> dict[uuid.UUID, KeyLevels]: ...


class PositionReviewer(Protocol):
    """Asks the analysis whether to hold or close an open position."""

    async def review(self, spec: TraderSpec, trade: Trade, view: MarketView) -> Review: ...


class Quotes(Protocol):
    """The market an order meets: the latest quote of a symbol, and what its price did."""

    def quote(self, symbol: str) -> Quote | None: ...

    def bars_since(self, symbol: str, since: int) -> list[Bar]:
        """The symbol's closed candles from `since` (epoch ms) on, oldest first."""
        ...

    def marks(self, symbols: Collection[str]) -> dict[str, Decimal]:
        """The latest price of each of `symbols` that has one."""
        ...


class PriceUpdates(Protocol):
    """Every symbol's price moves since the previous `take`, oldest first: live, the feed's
    ticks; in a backtest, the candles the replay revealed."""

    def take(self) -> Mapping[str, list[Bar]]: ...

    async def wait(self) -> None:
        """Return once there are updates to take (live; a backtest never waits)."""
        ...
