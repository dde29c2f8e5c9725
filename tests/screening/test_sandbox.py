"""Filters run in worker processes: hostile code fails alone, with its reason."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from app.domain.filter_validation import FilterValidationError, parse_filter
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterJob, FilterSandbox, SandboxLimits, TickerValues, _Worker
from app.engine.screening import ticker_values
from tests.screening.conftest import LIMITS, SYMBOLS

REJECTED_AT_VALIDATION = {
    "import": ("import os\nreturn True", "imports are not allowed"),
    "from import": ("from os import system\nreturn True", "imports are not allowed"),
    "dunder escape": ("return ().__class__.__bases__[0].__subclasses__()", "starting with '_'"),
    "builtins lookup": ("return __builtins__['eval']('1')", "starting with '_'"),
    "eval": ("return eval('1 + 1')", "'eval' is not allowed"),
    "exec": ("exec('x = 1')\nreturn True", "'exec' is not allowed"),
    "open": ("return open('/etc/passwd').read()", "'open' is not allowed"),
    "getattr": ("return getattr(candles, 'close')", "'getattr' is not allowed"),
    "type": ("return type(candles)", "'type' is not allowed"),
    "globals": ("return globals()", "'globals' is not allowed"),
    "while": ("while True:\n    pass\nreturn True", "while loops are not allowed"),
    "def": ("def f():\n    return f()\nreturn f()", "defining functions is not allowed"),
    "lambda": ("f = lambda: 1\nreturn f()", "lambda is not allowed"),
    "class": ("class A:\n    pass\nreturn True", "defining classes is not allowed"),
    "try": ("try:\n    x = 1\nexcept Exception:\n    x = 2\nreturn x", "try/except"),
    "with": ("with candles as c:\n    pass\nreturn True", "with is not allowed"),
    "global": ("global x\nreturn True", "global is not allowed"),
    "frame escape": ("return (x for x in [1]).gi_frame.f_globals", "'gi_frame' is not allowed"),
    "format escape": ("return '{0.__class__}'.format(candles)", "'format' is not allowed"),
    "attribute write": ("candles.close = [1]\nreturn True", "changing attributes"),
    "augmented attribute write": ("candles.close += 1\nreturn True", "changing attributes"),
    "item write": ("candles.close[-1] = 0.0\nreturn True", "assigning to items"),
    "out= write": ("candles.close.max(out=candles.close)\nreturn True", "'out'"),
    "unknown name": ("return secret > 1", "unknown name 'secret'"),
    "deep comprehension": (
        "x = " + "[" * 45 + "1" + " for a in range(2)]" * 45 + "\nreturn True",
        "nest deeper",
    ),
}

STOPPED_AT_RUN_TIME = {
    "huge power": ("return 10**10**10 > 0", "time limit exceeded"),
    "python loop": ("for i in range(10**12):\n    pass\nreturn True", "time limit exceeded"),
    "C loop": ("return sum(range(10**14)) > 0", "time limit exceeded (worker killed)"),
    "huge allocation": ("return len([0] * 10**10) > 0", "memory limit exceeded"),
    "deep recursion": (
        "x = []\nfor i in range(200000):\n    x = [x]\nreturn len(str(x)) > 0",
        "RecursionError",
    ),
    "in-place write on candles": ("c = candles.close\nc += 1\nreturn True", "read-only"),
    "in-place write on indicator": ("r = rsi(candles)\nr *= 2\nreturn True", "read-only"),
    "raises": ("x = 0\nreturn 1 / x", "line 2, column 8: ZeroDivisionError"),
    "ambiguous result": ("return candles.close > 0", "ambiguous"),
    "bad side": ("return True, 'sideways'", "sideways"),
    "bad indicator parameter": ("return rsi(candles, 1)[-1] > 0", "period must be in"),
}

HEALTHY = {
    "always": "return True",
    "oversold": "r = rsi(candles, 14)\nreturn r[-1] < 101, 'short', r[-1] / 100",
}


@pytest.mark.parametrize("name", sorted(REJECTED_AT_VALIDATION))
def test_hostile_filter_is_rejected_at_validation(name: str) -> None:
    code, reason = REJECTED_AT_VALIDATION[name]
    with pytest.raises(FilterValidationError) as raised:
        parse_filter(code)
    assert any(reason in error.message for error in raised.value.errors), raised.value.errors
    assert all(error.line >= 1 and error.column >= 1 for error in raised.value.errors)


def _job(key: str, code: str) -> FilterJob:
    program = parse_filter(code, "1h")
    return FilterJob(key, code, "1h", tuple(SYMBOLS), program.timeframes, {"interval": "1h"})


def _tickers(feed: SimulatedFeed) -> dict[str, TickerValues]:
    return {symbol: ticker_values(ticker) for symbol, ticker in feed.tickers().items()}


async def test_hostile_filters_fail_alone_at_run_time(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    jobs = [_job(name, code) for name, (code, _) in STOPPED_AT_RUN_TIME.items()]
    jobs += [_job(name, code) for name, code in HEALTHY.items()]

    outcomes = await sandbox.run(jobs, store, _tickers(feed))

    for name, (_, reason) in STOPPED_AT_RUN_TIME.items():
        assert outcomes[name].failure is not None, name
        assert reason in outcomes[name].failure, (name, outcomes[name].failure)
        assert outcomes[name].matches == ()
    for name in HEALTHY:
        assert outcomes[name].failure is None, outcomes[name].failure
        assert sorted(match.symbol for match in outcomes[name].matches) == sorted(SYMBOLS)
    assert sandbox.replaced >= 1

    again = await sandbox.run([_job("always", HEALTHY["always"])], store, _tickers(feed))
    assert len(again["always"].matches) == len(SYMBOLS)


async def test_matches_carry_side_score_price_and_the_indicators_read(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    outcomes = await sandbox.run([_job("oversold", HEALTHY["oversold"])], store, _tickers(feed))

    match = next(m for m in outcomes["oversold"].matches if m.symbol == "BTC/USDT")
    candles = store.candles("BTC/USDT", "1h")
    assert match.side == "short"
    assert match.price == float(candles.close[-1])
    assert match.candle_time == int(candles.time[-1])
    assert match.score == pytest.approx(match.indicators["1h.rsi(14)"] / 100)


async def test_filter_reads_other_timeframes_ticker_and_params(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    code = (
        "four = timeframes['4h']\n"
        "return (four.close[-1] == ticker.last or ticker.last > 0) and "
        "params['interval'] == '1h' and len(four.close) == 300 and symbol != 'ETH/USDT'"
    )
    outcomes = await sandbox.run([_job("multi", code)], store, _tickers(feed))

    assert outcomes["multi"].failure is None
    assert sorted(m.symbol for m in outcomes["multi"].matches) == sorted(
        set(SYMBOLS) - {"ETH/USDT"}
    )


async def test_workers_follow_new_candles_incrementally(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    job = _job("last", "return True")
    await sandbox.run([job], store, _tickers(feed))
    feed.step(store)

    outcomes = await sandbox.run([job], store, _tickers(feed))

    for match in outcomes["last"].matches:
        candles = store.candles(match.symbol, "1h")
        assert match.candle_time == int(candles.time[-1])
        assert match.price == float(candles.close[-1])


async def test_symbols_without_candles_leave_no_trace_in_the_pool(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    unknown = [f"NO{index}/USDT" for index in range(50)]
    job = FilterJob("x", "return True", "1h", (*SYMBOLS, *unknown), frozenset({"1h"}))

    outcomes = await sandbox.run([job], store, _tickers(feed))

    assert outcomes["x"].evaluated == len(SYMBOLS)
    assert set(sandbox._owner) == set(SYMBOLS)


def test_workers_do_not_inherit_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADERS_SECRET_KEY", "not-for-filters")

    worker = _Worker(LIMITS)
    try:
        assert worker._wait_ready()
        environ = Path(f"/proc/{worker.process.pid}/environ").read_bytes()
    finally:
        worker.stop(kill=True)

    assert b"TRADERS_" not in environ and b"PATH=" in environ


def test_a_worker_that_cannot_start_leaves_no_descriptor_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("fork refused")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    before = sorted(os.listdir("/proc/self/fd"))

    with pytest.raises(OSError, match="fork refused"):
        _Worker(LIMITS)

    assert sorted(os.listdir("/proc/self/fd")) == before


async def test_a_trader_has_a_time_budget_per_candle_close(
    store: KlineStore, feed: SimulatedFeed
) -> None:
    limits = SandboxLimits(eval_seconds=5.0, run_seconds=0.2, grace_seconds=1.0)
    slow = _job("slow", "for i in range(10**10):\n    pass\nreturn True")

    async with FilterSandbox(workers=1, limits=limits) as pool:
        outcomes = await pool.run([slow, _job("always", "return True")], store, _tickers(feed))

    assert outcomes["slow"].failure == "run time limit exceeded (0.2 s per candle close)"
    assert outcomes["slow"].evaluated == 1
    assert len(outcomes["always"].matches) == len(SYMBOLS)
