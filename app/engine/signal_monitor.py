"""The signal monitor: a watched signal is looked at again at each later candle close.

A `good_setup` is not a trade yet: the analyzer parks the signal until the next candle of
its interval closes. The monitor claims the watched signals whose time has come (those the
analysis of this process parked, from memory: `Parked`, at the close that makes them due;
the others from the store) and, once the store holds that candle (live, the close reaches
the store a moment after the candle time; until then the signal is parked a little longer),
either cancels it without a model call because price has moved more than
`cancel_move_percent` from the signal's price (either way: against the trade the setup is
broken, with it the entry is gone), or has it re-analyzed with its earlier decisions in the
context: enter (ready), reject, or keep watching until the next close. After `rechecks`
re-checks that still only watch, the signal expires; so does one whose next candle is a
whole interval late (a feed that stopped for that symbol).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from app.domain.decision import DecisionAction
from app.domain.enums import SignalStatus
from app.domain.intervals import interval_ms
from app.domain.signal import price_of
from app.domain.trader_spec import TraderSpec
from app.engine.analysis.base import AnalysisContext
from app.engine.analyzer import DEFAULT_BATCH, DEFAULT_LEASE_MS, Analyst
from app.engine.handoff import Handed
from app.engine.screening import CandleClose, MarketView

log = logging.getLogger(__name__)

DEFAULT_RECHECKS = 5
DEFAULT_CANCEL_MOVE = Decimal(5)
RETRY_MS = 1000


class SignalMonitorStage:
    name = "signal monitor"

    def __init__(
        self,
        analyst: Analyst,
        *,
        owner: str,
        rechecks: int = DEFAULT_RECHECKS,
        cancel_move_percent: Decimal = DEFAULT_CANCEL_MOVE,
        batch: int = DEFAULT_BATCH,
        lease_ms: int = DEFAULT_LEASE_MS,
        retry_ms: int = RETRY_MS,
    ) -> None:
        self.analyst = analyst
        self.owner = owner
        self.rechecks = rechecks
        self.cancel_move = cancel_move_percent
        self.batch = batch
        self.lease_ms = lease_ms
        self.retry_ms = retry_ms
        self._quiet_until = 0
        """A claim that found nothing is not made again for `retry_ms`: every run ends with
        one, and the stage tasks run a stage again after it handled something, but watched
        signals fall due at their next close (or a retry later), never within a run."""
        self._close_traders: dict[uuid.UUID, TraderSpec] = {}
        """The traders that ran at the latest close, until the run after it: the signals
        that fall due at a close are theirs, read as it began."""
        self._due: list[Handed] = []
        """The parked signals the latest close made due, claimed for the run after it."""

    async def on_close(
        self, close: CandleClose, view: MarketView, traders: Sequence[TraderSpec]
    ) -> None:
        """Claim the signals the analysis parked here that this close makes due (one
        statement), for the run that re-checks them, and keep the traders for it: claimed
        now, before the analyzer's work on the close's new signals fills the event loop,
        their re-checks are decided with those, and their entries go in one batch."""
        self._close_traders = {spec.id: spec for spec in traders}
        self._due = await self._claim_parked(self.analyst.clock.now(), self.batch)

    async def run(self, view: MarketView) -> int:
        traders, self._close_traders = self._close_traders, {}

        async def claim(limit: int) -> list[AnalysisContext]:
            now = self.analyst.clock.now()
            handed, self._due = self._due, []
            if not handed:
                handed = await self._claim_parked(now, limit)
            if not handed and now >= self._quiet_until:
                signals = await self.analyst.signals.claim(
                    SignalStatus.WATCHING, self.owner, now, now + self.lease_ms, limit
                )
                if not signals:
                    self._quiet_until = now + self.retry_ms
                handed = [Handed(signal) for signal in signals]
            handed = [replace(h, spec=traders.get(h.signal.trader_id)) for h in handed]
            return await self.analyst.prepare(handed, view)

        return await self.analyst.under_way.work_through(
            claim, lambda context: self._check(context, view), self.batch
        )

    async def _claim_parked(self, now: int, limit: int) -> list[Handed]:
        """The due signals the analysis parked here, those still watched and free, with the
        decisions it parked them with; while there are such, the store is not searched
        (`retry_ms`): what it holds besides is parked by others."""
        while due := self.analyst.parked.take_due(now, limit):
            self._quiet_until = max(self._quiet_until, now + self.retry_ms)
            until = now + self.lease_ms
            claimed = await self.analyst.signals.claim_known(
                [handed.signal for handed in due], SignalStatus.WATCHING, self.owner, now, until
            )
            if claimed:
                ids = {signal.id for signal in claimed}
                return [handed for handed in due if handed.signal.id in ids]
        return []

    async def _check(self, context: AnalysisContext, view: MarketView) -> bool:
        """Whether the signal was re-checked (False: its candle is not in yet)."""
        try:
            return await self._recheck(context, view)
        except Exception:
            log.exception("signal %s: re-check failed; its lease runs out", context.signal.id)
            return False

    async def _recheck(self, context: AnalysisContext, view: MarketView) -> bool:
        analyst = self.analyst
        signal, earlier = context.signal, context.earlier
        seen = earlier[-1].as_of if earlier else signal.candle_time + interval_ms(signal.interval)
        length = interval_ms(signal.interval)
        candles = view.candles(signal.symbol, signal.interval)
        if not len(candles.time) or int(candles.time[-1]) + length <= seen:
            now = analyst.clock.now()
            if now < seen + 2 * length:
                retry = now + self.retry_ms
                if await analyst.signals.defer_many([(signal, self.owner, retry)]):
                    analyst.parked.put(Handed(signal, earlier=tuple(earlier)), retry)
                return False
            reason = f"no {signal.interval} candle of {signal.symbol} closed since the last check"
            await analyst.move(signal, SignalStatus.EXPIRED, reason, self.owner)
            return True
        price = price_of(float(candles.close[-1]))
        move = (price - signal.price) / signal.price * 100
        if abs(move) > self.cancel_move:
            reason = (
                f"price {price} moved {move:+.2f}% from the signal's {signal.price} "
                f"(more than {self.cancel_move}%)"
            )
            await analyst.move(signal, SignalStatus.CANCELLED, reason, self.owner)
            return True
        decision = await analyst.decide(context)
        if decision.action == DecisionAction.GOOD_SETUP and len(earlier) >= self.rechecks:
            reason = f"still only watched after {len(earlier)} re-checks"
            await analyst.move(signal, SignalStatus.EXPIRED, reason, self.owner, decision)
        else:
            await analyst.settle(context, decision, self.owner)
        return True
