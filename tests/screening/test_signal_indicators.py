"""A signal keeps a bounded number of the indicator values its filter read."""

from __future__ import annotations

from app.bootstrap import build_workflow
from app.db.models import Signal, Trader
from app.domain.bounds import MAX_SIGNAL_INDICATORS
from app.domain.enums import Side
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterMatch, FilterOutcome, FilterSandbox
from app.services.repositories.traders import spec_of
from app.services.users import create_user
from tests.screening.test_engine import RecordingBus


async def test_a_filter_reading_hundreds_of_indicators_stores_the_first_few(
    db: str, feed: SimulatedFeed, store: KlineStore
) -> None:
    owner, _ = await create_user("alice")
    trader = await Trader.create(owner=owner, name="greedy", filter_code="return True")
    read = {f"1h.sma({period})": float(period) for period in range(2, 502)}
    match = FilterMatch("BTC/USDT", Side.LONG, None, 100.0, 1_767_225_600_000, read)
    bus = RecordingBus()

    market = MarketData(feed, store)
    signals = build_workflow(bus, RealtimeClock(), FilterSandbox(), market).signals
    await signals.record_run(spec_of(trader), FilterOutcome(str(trader.id), (match,)))

    stored = await Signal.get(trader_id=trader.id)
    assert list(stored.indicators) == list(read)[:MAX_SIGNAL_INDICATORS]
    signal_events = [e for e in bus.events if e.payload.get("signal_id") == str(stored.id)]
    assert signal_events[0].payload["indicators"] == stored.indicators
