"""Workers answer in plain data: whatever a compromised worker sends, the engine never runs it.

Hostile stand-ins (tests/screening/workers/hostile.py) are started by the pool in place of
the real worker. A protocol violation replaces the worker and blames nobody: the part is
retried once on a fresh worker, and a second violation loses the run, for its jobs only.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import talib

from app.bootstrap import build_workflow
from app.core.events import InProcessEventBus
from app.db.models import Trader, User
from app.domain.enums import TraderStatus
from app.domain.filter_validation import parse_filter
from app.engine.clock import RealtimeClock
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.market import MarketData
from app.engine.sandbox import FilterJob, FilterSandbox, TickerValues
from app.engine.sandbox.progress import PROGRESS_BYTES, create_progress
from app.engine.screening import CandleClose, ticker_values
from app.services.repositories.traders import spec_of
from tests.screening.conftest import LIMITS, SYMBOLS
from tests.screening.workers.hostile import crafted_pickle

HOSTILE = "tests.screening.workers.hostile"
RSI = "return rsi(candles, 14)[-1] > 50"
VIOLATIONS = [
    "pickle",
    "wrong-type",
    "bool-count",
    "unknown-job",
    "unknown-task",
    "foreign-match",
    "bad-reading",
    "negative-time",
    "unknown-abort",
    "extra-field",
    "nan",
    "binary-part",
    "oversized",
    "half-frame",
    "shrink-progress",
]


def _job(key: str, code: str, symbols: tuple[str, ...] = tuple(SYMBOLS)) -> FilterJob:
    program = parse_filter(code, "1h")
    return FilterJob(key, code, "1h", symbols, program.timeframes, {"interval": "1h"})


def _tickers(feed: SimulatedFeed) -> dict[str, TickerValues]:
    return {s: v for s, t in feed.tickers().items() if (v := ticker_values(t)) is not None}


def _exists(path: Path) -> bool:
    return path.exists()


@pytest.fixture
def target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "unpickled-here"
    monkeypatch.setenv("SANDBOX_HOSTILE_TARGET", str(path))
    return path


def test_the_crafted_answer_would_create_the_file_if_unpickled(tmp_path: Path) -> None:
    control = tmp_path / "control"

    pickle.loads(crafted_pickle(str(control)))

    assert control.exists()


async def test_a_pickled_answer_is_refused_and_the_part_retried_on_a_fresh_worker(
    store: KlineStore,
    feed: SimulatedFeed,
    target: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANDBOX_HOSTILE", "pickle")
    monkeypatch.setenv("SANDBOX_HOSTILE_ONCE", str(tmp_path / "first-was-hostile"))
    jobs = [_job("always", "return True"), _job("rsi", RSI)]

    async with FilterSandbox(workers=1, limits=LIMITS, worker_module=HOSTILE) as pool:
        outcomes = await pool.run(jobs, store, _tickers(feed))

    assert not _exists(target)
    assert pool.replaced == 1
    assert all(o.failure is None and o.lost is None for o in outcomes.values()), outcomes
    assert sorted(m.symbol for m in outcomes["always"].matches) == sorted(SYMBOLS)
    expected = [s for s in SYMBOLS if talib.RSI(store.candles(s, "1h").close, 14)[-1] > 50]
    assert sorted(m.symbol for m in outcomes["rsi"].matches) == sorted(expected)


@pytest.mark.parametrize("mode", VIOLATIONS)
async def test_a_second_violation_loses_the_run_and_blames_nobody(
    mode: str,
    store: KlineStore,
    feed: SimulatedFeed,
    target: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANDBOX_HOSTILE", mode)
    jobs = [_job("always", "return True"), _job("btc", "return True", ("BTC/USDT",))]

    async with FilterSandbox(workers=1, limits=LIMITS, worker_module=HOSTILE) as pool:
        outcomes = await pool.run(jobs, store, _tickers(feed))

    assert not _exists(target)
    assert pool.replaced == 2
    for outcome in outcomes.values():
        assert outcome.failure is None, outcome
        assert outcome.matches == ()
        assert outcome.lost is not None and "filter worker" in outcome.lost, outcome


async def test_a_lost_part_loses_only_its_own_jobs(
    store: KlineStore, feed: SimulatedFeed, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_HOSTILE", "pickle")
    jobs = [_job("btc", "return True", ("BTC/USDT",)), _job("eth", "return True", ("ETH/USDT",))]

    async with FilterSandbox(workers=2, limits=LIMITS, worker_module=HOSTILE) as pool:
        outcomes = await pool.run(jobs, store, _tickers(feed))

    assert outcomes["btc"].lost is not None and outcomes["eth"].lost is not None
    assert all(outcome.failure is None for outcome in outcomes.values())
    assert pool.replaced == 4


async def test_a_trader_whose_run_was_lost_is_not_counted_as_failing(
    db: str, store: KlineStore, feed: SimulatedFeed, target: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANDBOX_HOSTILE", "pickle")
    owner = await User.create(name="mallory-victim")
    trader = await Trader.create(
        owner=owner,
        name="innocent",
        enabled=True,
        status=TraderStatus.RUNNING,
        interval="1h",
        symbols=SYMBOLS,
        filter_code="return True",
    )
    async with FilterSandbox(workers=1, limits=LIMITS, worker_module=HOSTILE) as pool:
        market = MarketData(feed, store)
        workflow = build_workflow(InProcessEventBus(), RealtimeClock(), pool, market)
        workflow.signals.failure_limit = 1
        newest = store.last_time("BTC/USDT", "1h")
        assert newest is not None
        close = CandleClose("1h", newest)
        report = await workflow.on_close(close, market.view(close.at))

    assert report is not None and report.failures == 0 and report.matches == 0
    assert (await Trader.get(id=trader.id)).status == TraderStatus.RUNNING
    assert workflow.signals.history(spec_of(trader)).failures == 0
    assert not _exists(target)


def test_the_progress_memfd_cannot_be_shrunk_under_the_engines_mapping() -> None:
    fd = create_progress()
    try:
        with pytest.raises(PermissionError):
            os.ftruncate(fd, 0)
        assert os.fstat(fd).st_size == PROGRESS_BYTES
    finally:
        os.close(fd)
