"""Backtests over GraphQL: a run starts, streams its progress and answers with its result;
only its owner sees or cancels it; a cancelled run stops within a second; bad input is a
clear error, and a filter that fails ends the run with its reason.

The API is the real application on the `db` fixture's database; each run is a real worker
process (`app.engine.backtest.process`) with its own sandbox, replaying the recorded
candles of `tests/data/candles`. Progress arrives through the schema's subscription on the
application's own bus.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from strawberry.types import ExecutionResult

from app.api.app import create_app
from app.api.context import Context
from app.api.schema import build_schema
from app.core.settings import Settings
from app.db import models
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.services.backtests import BacktestRunner
from app.services.market import EmbeddedMarket
from app.services.runtime import Runtime
from tests.api.conftest import Caller, _caller, create_trader
from tests.events.live import until

DATA = Path(__file__).resolve().parents[1] / "data" / "candles"
FIRST_CANDLE = 1515560100000  # the BTC pairs' first 5m candle
FIVE_MINUTES = 300_000
START = """
mutation ($input: BacktestInput!) { backtestTrader(input: $input) }
"""
READ = """
query ($id: ID!) {
  backtest(id: $id) {
    id traderId status progress closesDone closesTotal reason startedAt finishedAt
    result {
      signals closes errors
      metrics { closedPositions totalPnL equity maxDrawdown }
      equityCurve { time equity }
      trades { symbol side status amount entryPrice exitPrice pnl exitReason openedAt }
      decisions { symbol decision confidence createdAt outcome }
      decisionQuality { counts { engine decision decisions } calibration { low high } }
    }
  }
}
"""
CANCEL = "mutation ($id: ID!) { cancelBacktest(id: $id) { id status reason } }"
PROGRESS = """
subscription ($id: ID!) {
  backtestProgress(id: $id) { backtestId status progress closesDone closesTotal reason }
}
"""


def moment(candles: int) -> str:
    """The time `candles` 5m candles after the first recorded one, as GraphQL takes it."""
    return datetime.fromtimestamp((FIRST_CANDLE + candles * FIVE_MINUTES) / 1000, UTC).isoformat()


@pytest.fixture
def app(db: str) -> Starlette:
    return create_app(Settings(database_url=db, backtest_data=str(DATA)))


@pytest.fixture
async def runner(app: Starlette) -> AsyncIterator[BacktestRunner]:
    """The runner the application's lifespan would start (the tests run no lifespan)."""
    runtime: Runtime = app.state.runtime
    runtime.backtests = BacktestRunner(runtime.bus)
    yield runtime.backtests
    await runtime.backtests.close()


@pytest.fixture
async def client(app: Starlette, runner: BacktestRunner) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Caller:
    return await _caller(client, "alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Caller:
    return await _caller(client, "bob")


async def rsi_trader(caller: Caller, code: str = "return rsi(candles, 14)[-1] < 40") -> str:
    trader = await create_trader(
        caller,
        interval="5m",
        symbols=["ETH/BTC", "LTC/BTC"],
        filter={"code": code, "description": ["RSI(14) under 40"]},
    )
    return str(trader["id"])


async def start(caller: Caller, **fields: Any) -> dict[str, Any]:
    return await caller.gql(START, {"input": fields})


async def started(caller: Caller, **fields: Any) -> str:
    body = await start(caller, **fields)
    assert "errors" not in body, body["errors"]
    return str(body["data"]["backtestTrader"])


async def progress_of(app: Starlette, user_id: int, run_id: str) -> AsyncIterator[dict[str, Any]]:
    runtime: Runtime = app.state.runtime
    user = await models.User.get(id=user_id)
    context = Context(request=None, runtime=runtime, user=user)  # type: ignore[arg-type]
    results = await build_schema(runtime.settings).subscribe(
        PROGRESS, variable_values={"id": run_id}, context_value=context
    )
    assert not isinstance(results, ExecutionResult), results.errors
    async for result in results:
        assert not result.errors, result.errors
        yield result.data["backtestProgress"]  # type: ignore[index]


async def finished(caller: Caller, run_id: str) -> dict[str, Any]:
    for _ in range(600):
        run = (await caller.data(READ, {"id": run_id}))["backtest"]
        if run["status"] not in ("QUEUED", "RUNNING"):
            return run
        await asyncio.sleep(0.1)
    raise TimeoutError(f"backtest {run_id} did not finish")


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def fields_of(body: dict[str, Any]) -> list[str]:
    return [f["field"] for e in body["errors"] for f in e["extensions"].get("fields", [])]


async def test_a_run_streams_its_progress_and_answers_with_its_result(
    app: Starlette, alice: Caller
) -> None:
    trader_id = await rsi_trader(alice)
    run_id = await started(alice, traderId=trader_id, **{"from": moment(200), "to": moment(500)})

    events = [event async for event in progress_of(app, alice.user_id, run_id)]

    assert events[-1]["status"] == "DONE", events[-1]
    assert all(event["backtestId"] == run_id for event in events)
    done = [event["closesDone"] for event in events if event["status"] == "RUNNING"]
    assert done == sorted(done) and len(set(done)) >= 2, done
    run = await finished(alice, run_id)
    assert run["traderId"] == trader_id and run["progress"] == 1.0
    result = run["result"]
    assert result["closes"] == 301 == run["closesTotal"] == run["closesDone"]
    assert result["signals"] >= 1 and result["decisions"], result
    assert result["errors"] == []
    assert len(result["equityCurve"]) == 301
    assert result["metrics"]["equity"] is not None
    assert {c["engine"] for c in result["decisionQuality"]["counts"]} == {"rules"}
    assert await models.Signal.filter(trader_id=trader_id).count() == 0, "live tables untouched"
    assert await models.Decision.all().count() == 0


async def test_a_run_without_analysis_enters_every_signal(alice: Caller) -> None:
    """`analysis: FILTER`: the filter alone decides; each signal's one decision enters it,
    with the trader's stop loss and take profit, and the risk manager sizes the trades."""
    trader_id = await rsi_trader(alice)
    window = {"from": moment(200), "to": moment(500)}
    run_id = await started(alice, traderId=trader_id, analysis="FILTER", **window)

    run = await finished(alice, run_id)

    assert run["status"] == "DONE", run
    result = run["result"]
    assert result["signals"] >= 2
    assert len(result["decisions"]) == result["signals"], "one decision per signal, no re-checks"
    assert {d["decision"] for d in result["decisions"]} == {"ENTER_TRADE"}
    assert {c["engine"] for c in result["decisionQuality"]["counts"]} == {"filter"}
    assert result["trades"], "entered signals trade"


async def test_only_the_owner_sees_or_cancels_a_run(
    app: Starlette, alice: Caller, bob: Caller
) -> None:
    run_id = await started(
        alice, traderId=await rsi_trader(alice), **{"from": moment(200), "to": moment(260)}
    )

    assert codes(await bob.gql(READ, {"id": run_id})) == ["NOT_FOUND"]
    assert codes(await bob.gql(CANCEL, {"id": run_id})) == ["NOT_FOUND"]
    user = await models.User.get(id=bob.user_id)
    runtime: Runtime = app.state.runtime
    context = Context(request=None, runtime=runtime, user=user)  # type: ignore[arg-type]
    results = await build_schema(runtime.settings).subscribe(
        PROGRESS, variable_values={"id": run_id}, context_value=context
    )
    first = await anext(results) if not isinstance(results, ExecutionResult) else results
    assert first.errors and first.errors[0].extensions == {"code": "NOT_FOUND"}
    alices_trader = await models.Trader.get(owner_id=alice.user_id)
    bobs = await start(
        bob, traderId=str(alices_trader.id), **{"from": moment(200), "to": moment(260)}
    )
    assert codes(bobs) == ["NOT_FOUND"], "nor backtests another user's trader"
    run = await finished(alice, run_id)
    assert run["status"] == "DONE"


async def test_a_cancelled_run_stops_within_a_second(
    alice: Caller, bob: Caller, runner: BacktestRunner
) -> None:
    run_id = await started(
        alice, traderId=await rsi_trader(alice), **{"from": moment(200), "to": moment(5700)}
    )
    await until(lambda: uuid.UUID(run_id) in runner.processes, seconds=10)
    process = runner.processes[uuid.UUID(run_id)]
    for _ in range(100):
        if (await alice.data(READ, {"id": run_id}))["backtest"]["closesDone"] > 0:
            break
        await asyncio.sleep(0.1)

    cancelled = (await alice.data(CANCEL, {"id": run_id}))["cancelBacktest"]

    assert cancelled["status"] == "CANCELLED" and cancelled["reason"] == "cancelled by its owner"
    await until(lambda: process.returncode is not None, seconds=1.0)
    run = (await alice.data(READ, {"id": run_id}))["backtest"]
    await asyncio.sleep(0.3)
    again = (await alice.data(READ, {"id": run_id}))["backtest"]
    assert again["closesDone"] == run["closesDone"] < run["closesTotal"], "it stopped"
    assert again["status"] == "CANCELLED" and again["result"] is None
    again = (await alice.data(CANCEL, {"id": run_id}))["cancelBacktest"]
    assert again["status"] == "CANCELLED", "cancelling twice changes nothing"


@pytest.mark.parametrize(
    ("window", "changes", "field"),
    [
        ((300, 300), {}, "to"),
        ((300, 200), {}, "to"),
        ((200, 300), {"symbols": ["NOPE/BTC"]}, "symbols"),
        ((200, 300), {"interval": "4h"}, "interval"),
        ((200, 300), {"template": "no such template", "traderId": None}, "template"),
        ((200, 300), {"startingBalance": "0"}, "startingBalance"),
        ((200, 300), {"takerFee": "2"}, "takerFee"),
    ],
)
async def test_bad_input_is_a_clear_error_and_records_nothing(
    alice: Caller, window: tuple[int, int], changes: dict[str, Any], field: str
) -> None:
    fields = {
        "traderId": await rsi_trader(alice),
        "from": moment(window[0]),
        "to": moment(window[1]),
        **changes,
    }
    body = await start(alice, **fields)

    assert codes(body) == ["BAD_USER_INPUT"], body
    assert fields_of(body) == [field], body
    assert await models.Backtest.all().count() == 0


async def test_an_unsaved_trader_with_an_invalid_filter_is_refused(alice: Caller) -> None:
    preview = {
        "suggestedName": "broken",
        "filterCode": "import os",
        "interval": "5m",
        "symbols": ["ETH/BTC"],
    }
    body = await start(alice, trader=preview, **{"from": moment(200), "to": moment(300)})

    assert codes(body) == ["BAD_USER_INPUT"] and fields_of(body) == ["trader.filterCode"]


async def test_a_filter_that_fails_ends_the_run_with_its_reason(alice: Caller) -> None:
    trader_id = await rsi_trader(alice, "return candles.close[100000] > 1")
    run_id = await started(alice, traderId=trader_id, **{"from": moment(200), "to": moment(300)})

    run = await finished(alice, run_id)

    assert run["status"] == "FAILED"
    assert run["reason"].startswith("the trader stopped: "), run["reason"]
    assert run["result"]["errors"], "the result says why, too"


async def test_a_template_and_a_generation_preview_run_without_a_saved_trader(
    alice: Caller,
) -> None:
    window = {"from": moment(200), "to": moment(260), "symbols": ["ETH/BTC"], "interval": "5m"}
    preview = {
        "suggestedName": "preview",
        "filterCode": "return rsi(candles, 14)[-1] < 45",
        "interval": "5m",
    }
    template_run = await started(alice, template="rsi_mean_reversion", **window)
    preview_run = await started(alice, trader=preview, **window)

    for run_id in (template_run, preview_run):
        run = await finished(alice, run_id)
        assert run["status"] == "DONE", run
        assert run["traderId"] is None and run["result"]["closes"] == 61
    assert await models.Trader.all().count() == 0


HOUR = 3_600_000


def simulated_market(runtime: Runtime) -> KlineStore:
    """A running market's stored history, as the embedded engine holds it (not started)."""
    store = KlineStore(depth=400, source_id="simulated")
    feed = SimulatedFeed(["BTC/USDT", "ETH/USDT"], intervals=("1h",), seed=3, speed=None)
    feed.backfill(store)
    runtime.market = EmbeddedMarket(MarketData(feed, store))
    return store


async def test_a_run_replays_the_stored_history_of_the_running_market(
    app: Starlette, alice: Caller
) -> None:
    store = simulated_market(app.state.runtime)
    last = store.last_time("BTC/USDT", "1h")
    assert last is not None
    window = {
        "from": datetime.fromtimestamp((last - 150 * HOUR) / 1000, UTC).isoformat(),
        "to": datetime.fromtimestamp((last + HOUR) / 1000, UTC).isoformat(),
    }
    preview: dict[str, Any] = {
        "suggestedName": "dips",
        "filterCode": "return rsi(candles, 14)[-1] < 45",
    }
    preview |= {"interval": "1h", "symbols": ["BTC/USDT", "ETH/USDT"]}

    run_id = await started(alice, trader=preview, data="MARKET", **window)
    run = await finished(alice, run_id)

    assert run["status"] == "DONE", run
    assert run["result"]["closes"] == 152  # the closes from last - 150 h to last + 1 h
    elsewhere = await start(alice, trader=preview, data="MARKET", symbols=["SOL/USDT"], **window)
    assert fields_of(elsewhere) == ["symbols"], "the market has no such symbol"


async def test_the_running_market_is_unavailable_without_the_engine(alice: Caller) -> None:
    preview = {"suggestedName": "dips", "filterCode": "return True", "interval": "1h"}

    body = await start(alice, trader=preview, data="MARKET", **{"from": moment(1), "to": moment(9)})

    assert codes(body) == ["ENGINE_UNAVAILABLE"]
