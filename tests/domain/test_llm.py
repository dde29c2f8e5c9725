"""Model-call arithmetic: hashes that identify a request, back-off, durations, budget days."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from app.domain.llm import cache_key, day_start, parse_duration, prompt_hash, retry_delay


def test_the_prompt_hash_covers_system_prompt_and_schema() -> None:
    base = prompt_hash("s", "p", {"type": "object"})
    assert base == prompt_hash("s", "p", {"type": "object"})
    assert (
        len(
            {
                base,
                prompt_hash("t", "p", {"type": "object"}),
                prompt_hash("s", "q", {}),
                prompt_hash("s", "p", {}),
            }
        )
        == 4
    )


def test_the_cache_key_adds_model_and_schema_version() -> None:
    digest = prompt_hash("s", "p", {})
    keys = {cache_key("a", 1, digest), cache_key("b", 1, digest), cache_key("a", 2, digest)}
    assert len(keys) == 3


def test_the_apis_delay_wins() -> None:
    assert retry_delay(1, 7.0, initial=1, maximum=30) == 7.0


@given(st.integers(min_value=1, max_value=20), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_jittered_under_an_exponential_ceiling(attempt: int, seed: int) -> None:
    delay = retry_delay(attempt, None, initial=1.0, maximum=30.0, rng=random.Random(seed))
    assert 0 <= delay <= min(30.0, 2 ** (attempt - 1))


def test_protobuf_durations() -> None:
    assert parse_duration("7s") == 7.0
    assert parse_duration("3.700s") == 3.7
    for bad in ("7", "soon", "-1s", None, 7):
        assert parse_duration(bad) is None


def test_budgets_are_per_utc_day() -> None:
    day = 86_400_000
    assert day_start(3 * day + 5) == 3 * day
    assert day_start(3 * day) == 3 * day
