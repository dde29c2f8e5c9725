"""What a backtest runs on: a replay directory of CSV files as `traders data download`
writes them, or of Parquet files with the same columns, gives the same run; and a run over
the same request twice gives the same document."""

from __future__ import annotations

import csv
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.domain.backtest import BacktestInputError
from app.domain.trader_spec import RiskSettings, TraderSpec
from app.engine.backtest.job import BacktestRequest, run_backtest
from app.engine.feeds.replay import COLUMNS
from tests.engine.conftest import SYMBOL_FILES

DATA = Path(__file__).resolve().parents[1] / "data" / "candles"
FIRST_CANDLE = 1515560100000
FIVE_MINUTES = 300_000
TRADER = TraderSpec(
    id=uuid.UUID(int=7),
    owner_id=1,
    name="ema cross",
    interval="5m",
    filter_code=(
        "fast = ema(candles, 9)\nslow = ema(candles, 21)\n"
        "return crossed_above(fast, slow), 'long', fast[-1] / slow[-1]"
    ),
    risk=RiskSettings(stop_loss=Decimal(3), take_profit=Decimal(6)),
)


def request(directory: Path) -> BacktestRequest:
    return BacktestRequest(
        TRADER,
        start=FIRST_CANDLE + 200 * FIVE_MINUTES,
        end=FIRST_CANDLE + 800 * FIVE_MINUTES,
        data=str(directory),
        balance=Decimal(1),
    )


def as_parquet(source: Path, target: Path) -> Path:
    """The five BTC pairs' CSV files as Parquet files of the same names and columns."""
    target.mkdir()
    for name in SYMBOL_FILES:
        with (source / name).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        table = pa.table(
            {
                column: pa.array(
                    [int(r[column]) if column == "timestamp" else float(r[column]) for r in rows]
                )
                for column in COLUMNS
            }
        )
        pq.write_table(table, target / name.replace(".csv", ".parquet"))
    return target


def without_ids(document: dict[str, Any]) -> dict[str, Any]:
    """Ids are fresh uuids in every run; everything else must agree to the digit."""

    def bare(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in item.items() if k not in ("id", "signal_id")} for item in items]

    return {
        **document,
        "trades": bare(document["trades"]),
        "decisions": bare(document["decisions"]),
    }


def csv_only(source: Path, target: Path) -> Path:
    target.mkdir()
    for name in SYMBOL_FILES:
        (target / name).write_bytes((source / name).read_bytes())
    return target


async def test_parquet_and_csv_give_the_same_run_and_a_run_repeats_itself(
    tmp_path: Path,
) -> None:
    from_csv = await run_backtest(request(csv_only(DATA, tmp_path / "csv")))
    again = await run_backtest(request(csv_only(DATA, tmp_path / "csv again")))
    from_parquet = await run_backtest(request(as_parquet(DATA, tmp_path / "parquet")))

    assert from_csv["trades"], "the run should trade to compare"
    assert from_csv["closes"] == 601

    assert without_ids(again) == without_ids(from_csv)
    assert without_ids(from_parquet) == without_ids(from_csv)


async def test_a_directory_without_candles_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no candles here")

    with pytest.raises(BacktestInputError, match="holds no candle files") as caught:
        await run_backtest(request(tmp_path))
    assert caught.value.field == "data"


async def test_a_malformed_candle_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "ETH_BTC-5m.csv").write_text("time,price\n1,2\n")

    with pytest.raises(BacktestInputError, match=r"ETH_BTC-5m\.csv: expected columns"):
        await run_backtest(request(tmp_path))
