"""Fixtures of the engine tests: a replay directory cut from the recorded candles."""

from __future__ import annotations

from pathlib import Path

from tests.market.conftest import candles_dir  # noqa: F401 - the fixture, shared

SYMBOL_FILES = (
    "ADA_BTC-5m.csv",
    "DASH_BTC-5m.csv",
    "ETH_BTC-5m.csv",
    "LTC_BTC-5m.csv",
    "XMR_BTC-5m.csv",
)
WARMUP = 200


def cut(source: Path, target: Path, rows: int) -> Path:
    """The first `rows` candles of each of the five BTC pairs, as a replay directory."""
    target.mkdir(parents=True, exist_ok=True)
    for name in SYMBOL_FILES:
        lines = (source / name).read_text().splitlines()
        (target / name).write_text("\n".join(lines[: rows + 1]) + "\n")
    return target
