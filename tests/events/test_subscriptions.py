"""Subscription resolvers through the schema: mapping, ownership and clean-up.

Events come from the real in-process bus, and trader status events from the real trader
service, which publishes after its transaction commits.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncGenerator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import strawberry
from graphql.execution.collect_fields import CollectedFields
from strawberry.types import ExecutionResult

from app.api.context import Context
from app.api.errors import ApiErrors
from app.api.executor import SubscriptionExecutor
from app.api.queries import Query
from app.api.subscriptions import Subscription
from app.core.events import Event, EventType, InProcessEventBus
from app.core.settings import Settings
from app.db.models import Trader, User
from app.domain.enums import TraderStatus
from app.services.runtime import Runtime
from app.services.traders import TraderManager
from app.services.users import create_user
from tests.events.live import until

TIMEOUT = 10.0
SCHEMA = strawberry.Schema(
    query=Query,
    subscription=Subscription,
    extensions=[ApiErrors],
    execution_context_class=SubscriptionExecutor,
)

SIGNALS = """
subscription ($traderId: ID) {
  signalEvents(traderId: $traderId) {
    eventId traderId publishedAt kind signalId symbol interval side status price score
    candleTime
  }
}"""


class Subscriber:
    """One subscription through the schema, started (listening) before it is returned."""

    def __init__(self, results: AsyncGenerator[ExecutionResult, None]) -> None:
        self._results = results
        self._next: asyncio.Future[ExecutionResult] = asyncio.ensure_future(anext(results))

    async def next(self) -> ExecutionResult:
        result = await asyncio.wait_for(self._next, TIMEOUT)
        self._next = asyncio.ensure_future(anext(self._results))
        return result

    def answered(self) -> bool:
        return self._next.done()

    async def close(self) -> None:
        self._next.cancel()
        await asyncio.gather(self._next, return_exceptions=True)
        await self._results.aclose()


@pytest.fixture
async def bus(db: str) -> AsyncGenerator[InProcessEventBus, None]:
    bus = InProcessEventBus()
    await bus.start()
    yield bus
    await bus.stop()


Subscribe = Callable[..., Awaitable[Subscriber]]


@pytest.fixture
async def subscribe(bus: InProcessEventBus) -> AsyncGenerator[Subscribe, None]:
    """Start subscriptions through the schema; every one is closed at the end."""
    started: list[Subscriber] = []

    async def start(user: User | None, query: str, **variables: Any) -> Subscriber:
        runtime = Runtime(Settings(), bus)
        context = Context(request=None, runtime=runtime, user=user)  # type: ignore[arg-type]
        results = await SCHEMA.subscribe(query, variable_values=variables, context_value=context)
        assert not isinstance(results, ExecutionResult), results.errors
        before = bus.broadcaster.listener_count
        subscriber = Subscriber(results)
        started.append(subscriber)
        await until(lambda: bus.broadcaster.listener_count > before or subscriber.answered())
        return subscriber

    yield start
    for subscriber in started:
        await subscriber.close()


async def trader_of(bus: InProcessEventBus, owner: User, name: str = "t") -> Trader:
    return await TraderManager(bus).create(owner, {"name": name})


def signal(owner: User, trader: Trader, **payload: Any) -> Event:
    return Event(EventType.SIGNAL, owner.id, str(trader.id), payload)


async def test_signal_events_carry_the_payload_of_the_callers_traders_only(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    bob, _ = await create_user("bob")
    alices, bobs = await trader_of(bus, alice), await trader_of(bus, bob)
    subscriber = await subscribe(alice, SIGNALS)

    await bus.publish(signal(bob, bobs, kind="created", symbol="ETH/USDT"))
    event = signal(
        alice,
        alices,
        kind="created",
        signal_id="5b3f7d1e-0000-4000-8000-000000000001",
        symbol="BTC/USDT",
        interval="1h",
        side="long",
        status="new",
        price=Decimal("0.00000001"),
        score=0.75,
        candle_time="2026-01-01T00:00:00+00:00",
    )
    await bus.publish(event)

    result = await subscriber.next()
    assert result.errors is None and result.data is not None
    assert result.data == {
        "signalEvents": {
            "eventId": event.id,
            "traderId": str(alices.id),
            "publishedAt": result.data["signalEvents"]["publishedAt"],
            "kind": "created",
            "signalId": "5b3f7d1e-0000-4000-8000-000000000001",
            "symbol": "BTC/USDT",
            "interval": "1h",
            "side": "LONG",
            "status": "NEW",
            "price": "1E-8",
            "score": 0.75,
            "candleTime": "2026-01-01T00:00:00+00:00",
        }
    }
    assert not subscriber.answered()


async def test_a_trader_id_narrows_the_stream_to_that_trader(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    first, second = await trader_of(bus, alice, "first"), await trader_of(bus, alice, "second")
    subscriber = await subscribe(alice, SIGNALS, traderId=str(second.id))

    await bus.publish(signal(alice, first, symbol="A"))
    await bus.publish(signal(alice, second, symbol="B"))

    result = await subscriber.next()
    assert result.data is not None
    assert result.data["signalEvents"]["symbol"] == "B"


@pytest.mark.parametrize(
    "payload",
    [{"status": "someday"}, {"price": "a lot"}, {"candle_time": 1767225600}, {"score": "high"}],
    ids=["unknown-status", "not-a-price", "not-a-time", "not-a-score"],
)
async def test_an_event_that_does_not_convert_is_skipped_and_the_stream_goes_on(
    bus: InProcessEventBus, subscribe: Subscribe, payload: dict[str, Any]
) -> None:
    alice, _ = await create_user("alice")
    trader = await trader_of(bus, alice)
    subscriber = await subscribe(alice, SIGNALS)

    await bus.publish(signal(alice, trader, symbol="BAD", **payload))
    await bus.publish(signal(alice, trader, symbol="GOOD"))

    result = await subscriber.next()
    assert result.errors is None
    assert result.data is not None
    assert result.data["signalEvents"]["symbol"] == "GOOD"


@pytest.mark.parametrize("whose", ["other user's", "malformed", "unknown"])
async def test_a_trader_that_is_not_the_callers_is_not_found(
    bus: InProcessEventBus, subscribe: Subscribe, whose: str
) -> None:
    alice, _ = await create_user("alice")
    bob, _ = await create_user("bob")
    trader_id = {
        "other user's": str((await trader_of(bus, bob)).id),
        "malformed": "not-a-uuid",
        "unknown": "5b3f7d1e-0000-4000-8000-000000000009",
    }[whose]
    subscriber = await subscribe(alice, SIGNALS, traderId=trader_id)

    result = await subscriber.next()

    assert result.errors is not None
    assert result.errors[0].message == "trader not found"
    assert result.errors[0].extensions == {"code": "NOT_FOUND"}
    assert bus.broadcaster.listener_count == 0


async def test_an_anonymous_subscription_is_refused(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    subscriber = await subscribe(None, SIGNALS)

    result = await subscriber.next()

    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAUTHENTICATED"}


async def test_trader_status_follows_the_trader_service(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    trader = await trader_of(bus, alice)
    subscriber = await subscribe(
        alice,
        "subscription { traderStatus { traderId kind status reason enabled mode } }",
    )

    await TraderManager(bus).set_enabled(alice, str(trader.id), True)

    result = await subscriber.next()
    assert result.data == {
        "traderStatus": {
            "traderId": str(trader.id),
            "kind": "updated",
            "status": "RUNNING",
            "reason": None,
            "enabled": True,
            "mode": "DEMO",
        }
    }
    assert (await Trader.get(id=trader.id)).enabled


async def test_a_trader_deleted_meanwhile_gets_no_status_event(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    trader = await trader_of(bus, alice)
    stale = await Trader.get(id=trader.id)
    subscriber = await subscribe(alice, "subscription { traderStatus { traderId kind } }")

    await TraderManager(bus).delete(alice, str(trader.id), True)
    await TraderManager(bus).set_error(stale.id, "filter failed 3 times in a row")

    result = await subscriber.next()
    assert result.data == {"traderStatus": {"traderId": str(trader.id), "kind": "deleted"}}
    await asyncio.sleep(0.05)
    assert not subscriber.answered()
    assert not await Trader.exists(id=trader.id)


async def test_an_error_status_event_tells_the_trader_as_stored_not_as_the_engine_read_it(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    trader = await TraderManager(bus).create(alice, {"name": "t", "enabled": True})
    read_by_engine = await Trader.get(id=trader.id)
    await TraderManager(bus).set_enabled(alice, str(trader.id), False)
    subscriber = await subscribe(alice, "subscription { traderStatus { status enabled } }")

    await TraderManager(bus).set_error(read_by_engine.id, "filter failed 3 times in a row")

    result = await subscriber.next()
    assert result.data == {"traderStatus": {"status": "ERROR", "enabled": False}}
    assert not (await Trader.get(id=trader.id)).enabled


async def test_an_update_does_not_write_back_a_status_the_engine_changed_meanwhile(
    bus: InProcessEventBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _ = await create_user("alice")
    trader = await trader_of(bus, alice)
    manager = TraderManager(bus)
    read_before = await Trader.get(id=trader.id)
    await manager.set_error(trader.id, "filter failed 3 times in a row")

    async def get(owner: User, trader_id: str) -> Trader:
        return read_before

    monkeypatch.setattr(manager, "get", get)
    await manager.update(alice, str(trader.id), {"name": "renamed"})

    stored = await Trader.get(id=trader.id)
    assert stored.name == "renamed"
    assert stored.status == TraderStatus.ERROR
    assert stored.status_reason == "filter failed 3 times in a row"


async def test_pnl_updates_carry_the_metrics_per_mode(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    trader = await trader_of(bus, alice)
    subscriber = await subscribe(
        alice,
        """subscription { pnlUpdates { traderId metrics {
             totalPnL winRate closedPositions lastSignalAt demoMetrics { totalPnL } liveMetrics {
             totalPnL } } } }""",
    )
    figures = {"total_pnl": "12.5", "win_rate": "50", "closed_positions": 2}
    await bus.publish(
        Event(
            EventType.PNL,
            alice.id,
            str(trader.id),
            {**figures, "last_signal_at": "2026-01-02 03:04:05+00:00", "demo": figures},
        )
    )

    result = await subscriber.next()
    assert result.data == {
        "pnlUpdates": {
            "traderId": str(trader.id),
            "metrics": {
                "totalPnL": "12.5",
                "winRate": "50",
                "closedPositions": 2,
                "lastSignalAt": "2026-01-02T03:04:05+00:00",
                "demoMetrics": {"totalPnL": "12.5"},
                "liveMetrics": None,
            },
        }
    }


async def test_trade_events_and_unsubscribing_releases_the_listener(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    trader = await trader_of(bus, alice)
    subscriber = await subscribe(
        alice, "subscription { tradeEvents { kind tradeId status mode pnl exitReason } }"
    )
    await bus.publish(
        Event(
            EventType.TRADE,
            alice.id,
            str(trader.id),
            {"kind": "closed", "trade_id": "t-1", "status": "closed", "mode": "demo",
             "pnl": "-3.20", "exit_reason": "stop_loss"},
        )
    )  # fmt: skip

    result = await subscriber.next()
    assert result.data == {
        "tradeEvents": {
            "kind": "closed",
            "tradeId": "t-1",
            "status": "CLOSED",
            "mode": "DEMO",
            "pnl": "-3.20",
            "exitReason": "stop_loss",
        }
    }
    assert bus.broadcaster.listener_count == 1
    await subscriber.close()
    assert bus.broadcaster.listener_count == 0


async def test_a_long_lived_subscription_does_not_grow_with_its_events(
    bus: InProcessEventBus, subscribe: Subscribe
) -> None:
    alice, _ = await create_user("alice")
    trader = await trader_of(bus, alice)
    subscriber = await subscribe(alice, SIGNALS)

    for n in range(300):
        await bus.publish(signal(alice, trader, symbol=f"S{n}"))
        assert (await subscriber.next()).errors is None
    gc.collect()

    assert sum(isinstance(o, CollectedFields) for o in gc.get_objects()) < 50
