"""`traders serve --demo` runs on the simulated feed: another explicitly chosen feed is a
clear error before anything starts, not a demo on real prices."""

from __future__ import annotations

import pytest

from app.cli import main


@pytest.mark.parametrize("feed", ["ccxt:binance", "replay:data/candles"])
def test_demo_refuses_another_feed(feed: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADERS_FEED", feed)
    with pytest.raises(SystemExit, match=f"--demo runs on the simulated feed, not {feed}"):
        main(["serve", "--demo"])
