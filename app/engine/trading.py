"""TradeStage, the Trade stage: ready signals become positions, or refusals with a reason.

It takes the signals the analysis marked `ready` and handed over (`Handoff`, with their
traders and decisions, which it then need not read), or claims them from the store when
none were (a lease either way, so two engine processes never enter one signal twice, and a
crash only delays one), asks the `RiskManager` with the
trader's account as it stands, and either enters through the `OrderManager` (stop loss and
take profit from the decision's key levels when it gave usable ones, else from the risk
settings; at market, or with a limit order at the decision's entry level when that lies
below the market) or records the refusal on the signal, where the user reads it, and
publishes it. The signal ends `entered` (it then knows its trade) or `cancelled` with the
reason; the moves of a batch are written together, after its entries.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from app.domain.decision import DecisionAction, KeyLevels
from app.domain.enums import SignalStatus, TradeStatus
from app.domain.intervals import interval_ms
from app.domain.risk import Account, EntryPlan, PastExit, Refusal, RiskManager
from app.domain.signal import Signal
from app.domain.trader_spec import TraderSpec
from app.engine.clock import Clock
from app.engine.handoff import Handed, Handoff, handed_specs
from app.engine.instruments import Instruments
from app.engine.orders import Entry, OrderManager
from app.engine.ports import (
    LevelsSource,
    Move,
    Notifier,
    Quotes,
    SignalRepository,
    TraderRepository,
    TradeStore,
)
from app.engine.screening import CandleClose, MarketView

log = logging.getLogger(__name__)

BATCH = 100
LEASE_MS = 60_000
NOT_RUNNING = "the trader is no longer running"


@dataclass(slots=True)
class _Book:
    """A trader's account while a batch of its entries is checked."""

    equity: Decimal
    cash: Decimal
    active: set[str]
    exits: list[PastExit]


class TradeStage:
    name = "trade"
    handed_work = True

    def __init__(
        self,
        signals: SignalRepository,
        traders: TraderRepository,
        store: TradeStore,
        orders: OrderManager,
        quotes: Quotes,
        instruments: Instruments,
        notifier: Notifier,
        clock: Clock,
        levels: LevelsSource,
        risk: RiskManager | None = None,
    ) -> None:
        self.signals = signals
        self.traders = traders
        self.store = store
        self.orders = orders
        self.quotes = quotes
        self.instruments = instruments
        self.notifier = notifier
        self.clock = clock
        self.levels = levels
        self.risk = risk or RiskManager()
        self.owner = f"trade-{uuid.uuid4().hex[:12]}"
        self.handoff = Handoff(self.owner, LEASE_MS)
        """Where the analysis hands ready signals over, leased to this stage (`Analyst`)."""

    async def on_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> None:
        """Ready signals are worked as they come, not per close."""

    async def prompted(self) -> None:
        """Returns when the analysis has handed ready signals over."""
        await self.handoff.arrived()

    async def run(self, view: MarketView) -> int:
        """Enter what is ready, as one batch: each trader's account is read once, the
        batch's entries are checked one after the other against it (two signals of one
        trader see each other), and their intents are recorded together."""
        now = self.clock.now()
        handed = await self.handoff.take_or_claim(self.signals, SignalStatus.READY, now, BATCH)
        if not handed:
            return 0
        try:
            await self._enter(handed, now)
        except Exception:
            log.exception("entering %d ready signals failed; their leases run out", len(handed))
        finally:
            self.handoff.worked(handed)
        return len(handed)

    async def _enter(self, handed: list[Handed], now: int) -> None:
        claimed = [h.signal for h in handed]
        specs = handed_specs(handed)
        specs |= await self.traders.running_specs(
            {signal.trader_id for signal in claimed} - specs.keys()
        )
        books = await self._books(list(specs.values()), now)
        decided_levels = self._decided_levels(handed)
        decided_levels |= await self.levels.levels_for(
            [h.signal for h in handed if h.decision is None]
        )
        entries = []
        ends: list[Move] = []
        for signal in claimed:
            spec = specs.get(signal.trader_id)
            if spec is None:
                ends.append(self._end(signal, SignalStatus.CANCELLED, NOT_RUNNING))
                continue
            book = books[spec.id]
            decided = self._assess(spec, signal, book, now)
            if isinstance(decided, Refusal):
                ends.append(self._end(signal, SignalStatus.CANCELLED, str(decided)))
                continue
            book.active.add(signal.symbol)
            book.cash -= decided.estimated_cost
            levels = decided_levels.get(signal.id)
            entries.append(Entry(spec, signal, decided, levels, self._limit_price(signal, levels)))
        booked = await self.orders.open_many(entries)
        running = await self.traders.running_specs(
            {e.spec.id for e in entries if e.signal.id not in booked}
        )
        for entry in entries:
            made = booked.get(entry.signal.id)
            if made is None:
                entered = entry.spec.id in running  # the entry exists already
                status = SignalStatus.ENTERED if entered else SignalStatus.CANCELLED
                ends.append(self._end(entry.signal, status, None if entered else NOT_RUNNING))
            elif made.trade.status == TradeStatus.CANCELLED:
                reason = f"entry failed: {made.order.reason}"
                ends.append(self._end(entry.signal, SignalStatus.CANCELLED, reason))
            else:
                ends.append(self._end(entry.signal, SignalStatus.ENTERED, None))
        for moved in await self.signals.transition_many(ends, at=self.clock.now()):
            if moved is not None:
                await self.notifier.signal_changed(moved)

    @staticmethod
    def _decided_levels(handed: list[Handed]) -> dict[uuid.UUID, KeyLevels]:
        """The key levels of the decisions the signals were handed with, as the store
        gives them (`LevelsSource`): those of a decision to enter."""
        return {
            h.signal.id: h.decision.levels
            for h in handed
            if h.decision is not None and h.decision.action == DecisionAction.ENTER_TRADE
        }

    async def _books(self, specs: list[TraderSpec], now: int) -> dict[uuid.UUID, _Book]:
        """Each trader's account as it stands: three reads for all of them, at once; the
        past exits only of the traders whose protections look at them."""
        ids = [spec.id for spec in specs]
        lookback = {
            spec.id: now - self.risk.lookback_ms(spec.risk, interval_ms(spec.interval))
            for spec in specs
        }
        protected = [trader for trader, since in lookback.items() if since < now]
        ledgers, active, exits = await asyncio.gather(
            self.store.ledgers([(spec.id, spec.mode) for spec in specs]),
            self.store.active_symbols(ids),
            self.store.past_exits(protected, min((lookback[t] for t in protected), default=now)),
        )
        books = {}
        for spec in specs:
            ledger = ledgers[spec.id, spec.mode]
            marks = self.quotes.marks(frozenset(ledger.positions))
            books[spec.id] = _Book(
                equity=ledger.equity(marks),
                cash=ledger.cash,
                active=active[spec.id],
                exits=[
                    e for e in exits.get((spec.id, spec.mode), []) if e.time >= lookback[spec.id]
                ],
            )
        return books

    def _assess(
        self, spec: TraderSpec, signal: Signal, book: _Book, now: int
    ) -> EntryPlan | Refusal:
        """The risk manager's answer for `signal`, on the trader's account."""
        quote = self.quotes.quote(signal.symbol)
        account = Account(book.equity, book.cash, frozenset(book.active), book.exits)
        price = quote.last if quote is not None else signal.price
        return self.risk.assess_entry(
            symbol=signal.symbol,
            side=signal.side,
            risk=spec.risk,
            account=account,
            quote=quote,
            instrument=self.instruments.instrument(signal.symbol, price),
            now=now,
            interval_ms=interval_ms(spec.interval),
        )

    def _limit_price(self, signal: Signal, levels: KeyLevels | None) -> Decimal | None:
        """The decision's entry level when it lies below the market: wait for it there."""
        quote = self.quotes.quote(signal.symbol)
        if levels is None or levels.entry is None or quote is None:
            return None
        if not 0 < levels.entry < quote.last:
            return None
        instrument = self.instruments.instrument(signal.symbol, quote.last)
        return instrument.round_price(levels.entry, up=False)

    def _end(self, signal: Signal, status: SignalStatus, reason: str | None) -> Move:
        return Move(signal, status, reason, self.owner)
