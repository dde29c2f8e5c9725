"""Dry runs (`validateFilter`) cannot hog the engine: a small budget, one in flight per user,
and a lane of their own, so a screen and a dry run never wait for each other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from app.core.settings import Settings
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterJob, FilterSandbox, SandboxLimits
from app.services.errors import BusyError
from app.services.filter_check import FilterChecker, validate_filter
from tests.events.live import until
from tests.screening.conftest import SYMBOLS

LOOP = "for i in range(10**10):\n    pass\nreturn True"
ALWAYS = "return True"

CheckerFactory = Callable[..., FilterChecker]


@pytest.fixture
async def make_checker(store: KlineStore, feed: SimulatedFeed) -> AsyncIterator[CheckerFactory]:
    """Checkers built from settings, as the engine builds them, next to a screening pool."""
    started: list[FilterChecker] = []

    def make(**settings: Any) -> FilterChecker:
        checker = FilterChecker.from_settings(MarketData(feed, store), Settings(**settings))
        started.append(checker)
        return checker

    yield make
    for checker in started:
        await checker.close()


def test_dry_runs_have_a_much_smaller_budget_than_screens_by_default() -> None:
    settings, screening = Settings(), SandboxLimits()
    assert settings.dry_run_eval_seconds <= screening.eval_seconds / 2
    assert settings.dry_run_seconds <= 2.0 < screening.run_seconds


async def test_a_dry_run_stops_at_its_budget_per_symbol_and_in_all(
    make_checker: CheckerFactory,
) -> None:
    per_symbol = make_checker()
    await per_symbol.start()
    check = await validate_filter(LOOP, checker=per_symbol, user_id=1)
    assert [error.message for error in check.errors] == ["time limit exceeded"]
    assert check.evaluated == 1
    assert check.elapsed_ms < 1000 * SandboxLimits().run_seconds  # what a dry run used to get

    in_all = make_checker(dry_run_eval_seconds=0.25, dry_run_seconds=0.2)
    await in_all.start()
    check = await validate_filter(LOOP, checker=in_all, user_id=1)
    assert [e.message for e in check.errors] == ["run time limit exceeded (0.2 s per candle close)"]


async def test_a_user_has_one_dry_run_in_flight_and_others_wait_a_bounded_time(
    make_checker: CheckerFactory,
) -> None:
    checker = make_checker(dry_run_eval_seconds=1.0, dry_run_seconds=1.0, dry_run_wait_seconds=5)
    await checker.start()
    slow = asyncio.create_task(validate_filter(LOOP, checker=checker, user_id=2))
    await until(lambda: 2 in checker._in_flight)
    queued = asyncio.create_task(validate_filter(ALWAYS, checker=checker, user_id=1))
    await until(lambda: 1 in checker._in_flight)

    with pytest.raises(BusyError, match="still running"):
        await validate_filter(ALWAYS, checker=checker, user_id=1)
    checker.wait_seconds = 0.05
    with pytest.raises(BusyError, match="too many filter checks"):
        await validate_filter(ALWAYS, checker=checker, user_id=3)

    assert (await slow).errors[0].message == "time limit exceeded"
    assert sorted((await queued).matches) == sorted(SYMBOLS)
    again = await validate_filter(ALWAYS, checker=checker, user_id=1)
    assert again.valid and again.ran


async def test_a_screen_proceeds_while_a_slow_dry_run_runs(
    make_checker: CheckerFactory, sandbox: FilterSandbox, store: KlineStore
) -> None:
    checker = make_checker(dry_run_eval_seconds=3.0, dry_run_seconds=3.0)
    await checker.start()
    dry_run = asyncio.create_task(validate_filter(LOOP, ["BTC/USDT"], checker=checker, user_id=1))
    await until(lambda: 1 in checker._in_flight)
    await asyncio.sleep(0.2)  # the dry run is inside its worker by now

    job = FilterJob("screen", ALWAYS, "1h", tuple(SYMBOLS), frozenset({"1h"}))
    outcome = (await sandbox.run([job], store, {}))["screen"]

    assert len(outcome.matches) == len(SYMBOLS)
    assert not dry_run.done()
    assert (await dry_run).errors[0].message == "time limit exceeded"


async def test_a_dry_run_proceeds_while_a_slow_screen_runs(
    make_checker: CheckerFactory, store: KlineStore
) -> None:
    checker = make_checker()
    await checker.start()
    slow = FilterJob("slow", LOOP, "1h", ("BTC/USDT",), frozenset({"1h"}))
    async with FilterSandbox(workers=1, limits=SandboxLimits(eval_seconds=3.0)) as screening:
        screen = asyncio.create_task(screening.run([slow], store, {}))
        await asyncio.sleep(0.5)

        check = await validate_filter(ALWAYS, checker=checker, user_id=1)

        assert sorted(check.matches) == sorted(SYMBOLS)
        assert not screen.done()
        assert (await screen)["slow"].failure == "time limit exceeded"
