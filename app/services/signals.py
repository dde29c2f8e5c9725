"""SignalManager: turns each trader's screening run into signals, and stops failing traders.

Signals are written in one transaction per trader and run, after reading which symbols of
the trader still have an active signal, so a trader never holds two active signals on one
symbol; events go out only after the commit. The previous run's matches are kept in memory:
after a restart every current match counts as new, and the active-signal check is what
keeps that from duplicating a signal.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tortoise.transactions import in_transaction

from app.core.events import Event, EventBus, EventType
from app.db.models import Signal, Trader
from app.domain.enums import ACTIVE_SIGNAL_STATUSES, SignalStatus
from app.domain.signal_rules import (
    RunHistory,
    after_failure,
    after_success,
    newly_matched,
    should_stop,
    signals_due,
)
from app.engine.sandbox import FilterMatch, FilterOutcome
from app.services.pnl import publish_metrics
from app.services.traders import TraderManager

log = logging.getLogger(__name__)

DEFAULT_FAILURE_LIMIT = 3


def signal_event(signal: Signal, owner_id: int, kind: str = "created") -> Event:
    return Event(
        type=EventType.SIGNAL,
        owner_id=owner_id,
        trader_id=str(signal.trader_id),  # type: ignore[attr-defined]
        payload={
            "kind": kind,
            "signal_id": str(signal.id),
            "symbol": signal.symbol,
            "interval": signal.interval,
            "side": signal.side.value,
            "status": signal.status.value,
            "price": str(signal.price),
            "score": signal.score,
            "indicators": signal.indicators,
            "candle_time": signal.candle_time.isoformat(),
        },
    )


def _fingerprint(trader: Trader) -> str:
    screened = "\n".join([trader.interval, *sorted(trader.symbols), trader.filter_code])
    return hashlib.sha256(screened.encode()).hexdigest()


def _signal_fields(trader: Trader, match: FilterMatch) -> dict[str, Any]:
    return {
        "trader_id": trader.id,
        "symbol": match.symbol,
        "interval": trader.interval,
        "side": match.side,
        "price": Decimal(str(match.price)),
        "score": match.score,
        "indicators": match.indicators,
        "status": SignalStatus.NEW,
        "candle_time": datetime.fromtimestamp(match.candle_time / 1000, UTC),
    }


class SignalManager:
    def __init__(
        self,
        bus: EventBus,
        traders: TraderManager | None = None,
        failure_limit: int = DEFAULT_FAILURE_LIMIT,
    ) -> None:
        self.bus = bus
        self.traders = traders or TraderManager(bus)
        self.failure_limit = failure_limit
        self._history: dict[str, tuple[str, RunHistory]] = {}

    def history(self, trader: Trader) -> RunHistory:
        """The trader's previous runs, forgotten as soon as its filter, symbols or interval
        change: matches of an old filter say nothing about which symbols newly match now."""
        fingerprint, history = self._history.get(str(trader.id), ("", RunHistory()))
        return history if fingerprint == _fingerprint(trader) else RunHistory()

    def forget(self, trader_id: str) -> None:
        """Drop a trader's run history, as a restart of the engine would."""
        self._history.pop(trader_id, None)

    async def record_run(self, trader: Trader, outcome: FilterOutcome) -> list[Signal]:
        """Apply one screening run of `trader`: new signals, or one more failure; a run the
        sandbox lost (no fault of the trader's, no complete result) changes nothing."""
        key = str(trader.id)
        if outcome.lost is not None:
            log.warning("trader %s run lost: %s", key, outcome.lost)
            return []
        history = self.history(trader)
        if outcome.failure is not None:
            history = after_failure(history)
            self._history[key] = (_fingerprint(trader), history)
            log.info("trader %s filter failed (%d): %s", key, history.failures, outcome.failure)
            if should_stop(history, self.failure_limit):
                await self.stop_trader(trader, outcome.failure, history.failures)
            return []
        signals = await self.create_signals(trader, history, outcome.matches)
        matched = after_success(match.symbol for match in outcome.matches)
        self._history[key] = (_fingerprint(trader), matched)
        return signals

    async def stop_trader(self, trader: Trader, failure: str, failures: int) -> None:
        self.forget(str(trader.id))
        reason = f"filter failed {failures} times in a row: {failure}"
        await self.traders.set_error(trader, reason)

    async def create_signals(
        self, trader: Trader, history: RunHistory, matches: Iterable[FilterMatch]
    ) -> list[Signal]:
        by_symbol = {match.symbol: match for match in matches}
        candidates = newly_matched(history, by_symbol)
        if not candidates:
            return []
        async with in_transaction():
            active = await Signal.filter(
                trader_id=trader.id,
                symbol__in=candidates,
                status__in=list(ACTIVE_SIGNAL_STATUSES),
            ).values_list("symbol", flat=True)
            created = [
                await Signal.create(**_signal_fields(trader, by_symbol[symbol]))
                for symbol in signals_due(history, candidates, set(active))
            ]
        for signal in created:
            await self.bus.publish(signal_event(signal, trader.owner_id))  # type: ignore[attr-defined]
        if created:
            await publish_metrics(self.bus, trader)
        return created
