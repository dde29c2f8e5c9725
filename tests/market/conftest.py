"""Shared fixtures of the market tests: the recorded candles in `tests/data/candles`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

CANDLES_DIR = Path(__file__).resolve().parents[1] / "data/candles"


@pytest.fixture(scope="session")
def candles_dir() -> Path:
    if not CANDLES_DIR.is_dir():
        pytest.fail(f"recorded candle data missing at {CANDLES_DIR}")
    return CANDLES_DIR


def read_csv(path: Path) -> np.ndarray:
    """The file's rows parsed independently of the code under test."""
    with path.open() as handle:
        reader = csv.reader(handle)
        next(reader)
        return np.array([[float(value) for value in row] for row in reader])


@pytest.fixture(scope="session")
def eth_btc(candles_dir: Path) -> np.ndarray:
    return read_csv(candles_dir / "ETH_BTC-5m.csv")
