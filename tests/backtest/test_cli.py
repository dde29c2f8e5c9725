"""`traders backtest` as a user runs it, on the shared recorded candles: a progress bar, the
summary table, the full result as JSON and the equity curve as a PNG; bad input is one
clear line and a failing exit status, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "candles"
EMA_CROSS = (
    "fast = ema(candles, 9)\nslow = ema(candles, 21)\n"
    "return crossed_above(fast, slow), 'long', fast[-1] / slow[-1]\n"
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def traders(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADERS_")}
    env["PYTHONPATH"] = str(ROOT)
    env["TRADERS_DATABASE_URL"] = f"sqlite://{cwd / 'db.sqlite3'}"
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "backtest", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def filter_file(tmp_path: Path) -> Path:
    path = tmp_path / "ema_cross.filter"
    path.write_text(EMA_CROSS)
    return path


def test_a_backtest_prints_its_summary_and_writes_the_json_and_the_png(
    tmp_path: Path, filter_file: Path
) -> None:
    result = traders(
        *("--filter", str(filter_file), "--interval", "5m", "--balance", "1"),
        *("--symbols", "ETH/BTC", "LTC/BTC", "XMR/BTC", "ADA/BTC", "DASH/BTC"),
        *("--stop-loss", "3", "--take-profit", "6"),
        *("--from", "2018-01-11T00:00", "--to", "2018-01-13T00:00"),
        *("--data", str(DATA), "--json", "result.json", "--plot", "equity.png"),
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert "] 100% 577/577 closes" in result.stderr, "the progress bar ends full"
    lines = dict(line.split("  ", 1) for line in result.stdout.splitlines() if "  " in line)
    summary = {label.strip(): value.strip() for label, value in lines.items()}
    assert summary["closes replayed"] == "577"
    document = json.loads((tmp_path / "result.json").read_text())
    assert document["closes"] == 577 and len(document["equity_curve"]) == 577
    assert document["trades"], "the crossings should trade"
    assert summary["closed trades"] == str(document["metrics"]["closed_positions"])
    assert summary["total P&L"] == document["metrics"]["total_pnl"]
    assert summary["signals"] == str(document["signals"]) != "0"
    assert {"metrics", "decisions", "decision_quality", "errors"} <= set(document)
    png = (tmp_path / "equity.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000


def test_a_backtest_without_analysis_enters_every_signal(tmp_path: Path, filter_file: Path) -> None:
    result = traders(
        *("--filter", str(filter_file), "--interval", "5m", "--balance", "1"),
        *("--symbols", "ETH/BTC", "LTC/BTC", "--analysis", "filter"),
        *("--stop-loss", "3", "--take-profit", "6"),
        *("--from", "2018-01-11T00:00", "--to", "2018-01-12T00:00"),
        *("--data", str(DATA), "--json", "result.json"),
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    document = json.loads((tmp_path / "result.json").read_text())
    assert document["signals"] == len(document["decisions"]) > 0
    assert {d["action"] for d in document["decisions"]} == {"enter_trade"}
    assert {c["engine"] for c in document["decision_quality"]["counts"]} == {"filter"}
    assert document["trades"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--from", "2018-01-12", "--to", "2018-01-11"), "to: the window is inverted"),
        (("--from", "2018-01-12", "--to", "2018-01-12"), "to: the window is empty"),
        (("--from", "2030-01-01", "--to", "2030-02-01"), "from: the data holds no 5m candles"),
        (("--from", "2018-01-12", "--to", "someday"), "--from and --to take ISO dates"),
        (
            ("--from", "2018-01-11", "--to", "2018-01-12", "--symbols", "NOPE/BTC"),
            "symbols: no 5m candles for NOPE/BTC",
        ),
        (
            ("--from", "2018-01-11", "--to", "2018-01-12", "--data", "missing"),
            "data: no data directory",
        ),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, filter_file: Path, args: tuple[str, ...], message: str
) -> None:
    result = traders(
        *("--filter", str(filter_file), "--interval", "5m", "--data", str(DATA)),
        *args,
        cwd=tmp_path,
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_an_invalid_filter_is_refused_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.filter"
    bad.write_text("import os\nreturn True")

    result = traders(
        *("--filter", str(bad), "--interval", "5m", "--data", str(DATA)),
        *("--from", "2018-01-11", "--to", "2018-01-12"),
        cwd=tmp_path,
    )

    assert result.returncode != 0 and "filter: the filter does not pass" in result.stderr
