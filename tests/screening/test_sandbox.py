"""Filters run in worker processes: hostile code fails alone, with its reason."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
from pathlib import Path

import pytest

from app.core import settings
from app.domain.filter_validation import FilterValidationError, parse_filter
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterJob, FilterSandbox, SandboxLimits, TickerValues, process
from app.engine.sandbox.messages import Ready
from app.engine.sandbox.process import WorkerProcess
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
        "x = []\nfor i in range(20000):\n    x = [x]\nreturn len(str(x)) > 0",
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
        failure = outcomes[name].failure
        assert failure is not None and reason in failure, (name, failure)
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


async def test_workers_do_not_inherit_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert process.ENV_PREFIX == settings.ENV_PREFIX
    monkeypatch.setenv("TRADERS_SECRET_KEY", "not-for-filters")

    worker = WorkerProcess(LIMITS)
    try:
        assert isinstance(await worker.start(), Ready)
        environ = await asyncio.to_thread(Path(f"/proc/{worker.process.pid}/environ").read_bytes)
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
        WorkerProcess(LIMITS)

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


LEAKY_FAILURES = {
    "operator on candles": ("return candles + 1 > 0", "for +: 'candles' and 'int'"),
    "comparing indicator outputs": ("return macd(candles) > 1", "'indicator outputs' and 'int'"),
    "len of candles": ("return len(candles) > 0", "object of type 'candles' has no len()"),
    "float of the ticker": ("return float(ticker) > 0", "not 'ticker'"),
    "operator on params": ("return params + 1", "for +: 'mapping' and 'int'"),
    "text of candles": ("return int(str(candles)) > 0", "'<candles>'"),
    "text of a helper": ("return float(str(rsi)) > 0", "'<function rsi>'"),
    "text of outputs": ("return int(str(bbands(candles))) > 0", "'<indicator outputs>'"),
}
INTERNALS = re.compile(
    r"0x[0-9a-fA-F]{4,}|FilterCandles|IndicatorOutputs|TickerValues|mappingproxy|app\.engine"
    r"|_Candles|<locals>|Indicators"
)


async def test_failure_reasons_carry_no_addresses_nor_internal_names(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    jobs = [_job(name, code) for name, (code, _) in LEAKY_FAILURES.items()]

    outcomes = await sandbox.run(jobs, store, _tickers(feed))

    for name, (_, shown) in LEAKY_FAILURES.items():
        failure = outcomes[name].failure
        assert failure is not None and shown in failure, (name, failure)
        assert not INTERNALS.search(failure), (name, failure)


BIG = "[0] * 20_000_000"  # 160 MB of pointers: two of them do not fit in the limit below
MEMORY_LIMITS = SandboxLimits(eval_seconds=5.0, run_seconds=30.0, memory_bytes=256 * 1024**2)
NEXT_TRADER = "y = [1] * 20_000_000\nreturn len(y) > 0"


@pytest.mark.parametrize(
    "first",
    [
        pytest.param(f"x = {BIG}\nreturn x", id="returns a huge value"),
        pytest.param(f"x = {BIG}\nreturn x, 'long'", id="matches with a huge value"),
        pytest.param(f"x = {BIG}\ny = [x]\ny.append(y)\nreturn True", id="leaves a huge cycle"),
    ],
)
async def test_a_trader_holding_much_memory_does_not_make_the_next_one_fail(
    first: str, store: KlineStore, feed: SimulatedFeed
) -> None:
    symbols = ("BTC/USDT", "ETH/USDT")
    jobs = [
        FilterJob("first", first, "1h", symbols, frozenset({"1h"})),
        FilterJob("next", NEXT_TRADER, "1h", symbols, frozenset({"1h"})),
    ]

    async with FilterSandbox(workers=1, limits=MEMORY_LIMITS) as pool:
        outcomes = await pool.run(jobs, store, _tickers(feed))

    assert outcomes["next"].failure is None, outcomes["next"].failure
    assert len(outcomes["next"].matches) == len(symbols)
    if "return x\n" not in first + "\n":
        assert outcomes["first"].failure is None and len(outcomes["first"].matches) == 2


SLOW = "for i in range(10**10):\n    pass\nreturn True"


async def test_a_job_has_its_own_budget_and_reports_the_time_it_spent(
    store: KlineStore, feed: SimulatedFeed
) -> None:
    limits = SandboxLimits(eval_seconds=5.0, run_seconds=10.0, grace_seconds=1.0)
    symbols = tuple(SYMBOLS)
    jobs = [
        FilterJob("tight", SLOW, "1h", symbols, frozenset({"1h"}), budget_seconds=0.3),
        FilterJob("quick", "return True", "1h", symbols, frozenset({"1h"}), budget_seconds=0.3),
        FilterJob("default", "return True", "1h", symbols, frozenset({"1h"})),
    ]

    async with FilterSandbox(workers=1, limits=limits) as pool:
        outcomes = await pool.run(jobs, store, _tickers(feed))

    tight, quick = outcomes["tight"], outcomes["quick"]
    assert tight.failure == "run time limit exceeded (0.3 s per candle close)"
    assert tight.evaluated == 1
    assert 0.3 <= tight.spent_seconds < 1.5
    assert quick.failure is None and len(quick.matches) == len(SYMBOLS)
    assert 0 < quick.spent_seconds < 0.3
    assert outcomes["default"].failure is None and outcomes["default"].spent_seconds > 0


async def test_a_job_whose_worker_was_killed_is_charged_the_time_until_the_kill(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    stuck = _job("stuck", "return sum(range(10**14)) > 0")

    outcomes = await sandbox.run([stuck, _job("always", "return True")], store, _tickers(feed))

    assert outcomes["stuck"].failure == "time limit exceeded (worker killed)"
    assert outcomes["stuck"].spent_seconds >= LIMITS.eval_seconds + LIMITS.grace_seconds
    assert len(outcomes["always"].matches) == len(SYMBOLS)


async def test_an_evaluation_runs_out_of_time_at_its_own_limit_after_many_quick_ones(
    store: KlineStore, feed: SimulatedFeed
) -> None:
    """The worker sets its timer only when no pending one fires in time: an evaluation that
    runs away after many quick ones is still stopped at its own limit, not before, and the
    evaluations after it run."""
    quick = "\n".join(f"x{n} = rsi(candles, {n + 2})" for n in range(20)) + "\nreturn True"
    stuck = "for i in range(10**12):\n    pass\nreturn True"
    code = (
        f"if symbol == '{sorted(SYMBOLS)[3]}':\n    " + stuck.replace("\n", "\n    ") + "\n" + quick
    )
    limits = SandboxLimits(eval_seconds=0.4, grace_seconds=1.0, batch_cpu_seconds=20)
    jobs = [_job(f"quick{n}", quick) for n in range(10)] + [_job("stuck", code)]

    async with FilterSandbox(workers=1, limits=limits) as pool:
        outcomes = await pool.run(jobs, store, _tickers(feed))

    assert outcomes["stuck"].failure == "time limit exceeded"
    assert 0.4 <= outcomes["stuck"].spent_seconds < 1.0
    assert outcomes["stuck"].evaluated == 4, "stopped at its fourth symbol"
    for n in range(10):
        assert len(outcomes[f"quick{n}"].matches) == len(SYMBOLS)
