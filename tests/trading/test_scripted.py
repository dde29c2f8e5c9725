"""On scripted candles, through the real stages of a backtest: each exit closes at the right
candle, price and reason; each risk rule refuses an entry with its reason on the signal.

Prices are hand-checkable: the fill model has a half spread of 0.025% and no impact, on a
tick of 0.01. An entry at a close of 100 pays 100.03 (100.025 rounded up); a 2% stop lies at
98.03 (98.0294 rounded up, towards the entry) and a 4% target at 104.03 (104.0312 down).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.domain.decision import KeyLevels
from app.domain.enums import (
    ExitReason,
    Liquidity,
    OrderPurpose,
    SignalStatus,
    TradeStatus,
)
from app.domain.orders import Fill
from app.domain.trade import Trade
from app.domain.trader_spec import RiskSettings, TraderSpec
from app.engine.sandbox import FilterSandbox
from tests.trading.replay import START, STEP, Replay, spec

D = Decimal
FLAT = (100.0, 100.5, 99.5, 100.0, 1e9)
RISK = RiskSettings(stop_loss=D(2), take_profit=D(4))


async def entered(sandbox: FilterSandbox, risk: RiskSettings = RISK) -> tuple[Replay, TraderSpec]:
    trader = spec(risk)
    replay = Replay([trader], sandbox)
    signal = await replay.ready(trader)
    await replay.close({"BTC/USDT": FLAT})
    assert replay.signal(signal).status == SignalStatus.ENTERED
    (trade,) = replay.trades_of(trader)
    assert trade.status == TradeStatus.OPEN
    assert trade.entry_price == D("100.03")
    assert trade.amount == D(10)  # 10% of the equity of 10,000 at the last price of 100
    assert trade.signal_id == signal.id
    return replay, trader


def exit_fill(replay: Replay, trader: TraderSpec) -> tuple[Trade, Fill]:
    (trade,) = replay.trades_of(trader)
    fills = replay.trades.fills_of(trade.id)
    exits = [
        f for f in fills if replay.trades.orders_by_id[f.order_id].purpose == OrderPurpose.EXIT
    ]
    assert len(exits) == 1
    return trade, exits[0]


async def test_a_stop_loss_closes_at_its_candle_and_level(sandbox: FilterSandbox) -> None:
    replay, trader = await entered(sandbox)
    (trade,) = replay.trades_of(trader)
    assert (trade.stop_loss, trade.take_profit) == (D("98.03"), D("104.03"))
    await replay.close({"BTC/USDT": (100.0, 101.0, 98.5, 100.5, 1e9)})
    assert replay.trades_of(trader)[0].status == TradeStatus.OPEN
    stopped = await replay.close({"BTC/USDT": (100.5, 100.8, 97.5, 98.0, 1e9)})
    trade, fill = exit_fill(replay, trader)
    assert trade.status == TradeStatus.CLOSED
    assert trade.exit_reason == ExitReason.STOP_LOSS
    assert trade.closed_at == stopped.at
    assert fill.expected_price == D("98.03")
    assert fill.price == D("98.00")  # 98.03 less the half spread, rounded down
    assert fill.liquidity == Liquidity.TAKER
    assert trade.pnl == trade.exit_proceeds - trade.entry_cost - trade.entry_fee - trade.exit_fee
    assert trade.pnl < 0
    kinds = [kind for kind, *_ in replay.notifier.trades]
    assert kinds == ["filled", "opened", "filled", "closed"]


async def test_a_take_profit_closes_at_its_candle_and_level(sandbox: FilterSandbox) -> None:
    replay, trader = await entered(sandbox)
    await replay.close({"BTC/USDT": (100.0, 103.9, 99.0, 103.0, 1e9)})
    hit = await replay.close({"BTC/USDT": (103.0, 104.5, 102.5, 104.2, 1e9)})
    trade, fill = exit_fill(replay, trader)
    assert (trade.exit_reason, trade.closed_at) == (ExitReason.TAKE_PROFIT, hit.at)
    assert fill.expected_price == D("104.03")
    assert fill.price == D("104.00")  # 104.03 less the half spread, rounded down
    assert trade.pnl is not None and trade.pnl > 0


async def test_a_trailing_stop_follows_the_high_and_closes_below_it(
    sandbox: FilterSandbox,
) -> None:
    replay, trader = await entered(sandbox, RiskSettings(stop_loss=D(5), trailing_stop=D(3)))
    await replay.close({"BTC/USDT": (100.0, 110.0, 99.0, 109.0, 1e9)})
    (trade,) = replay.trades_of(trader)
    assert (trade.status, trade.highest_price) == (TradeStatus.OPEN, D(110))
    await replay.close({"BTC/USDT": (109.0, 109.5, 107.0, 108.0, 1e9)})
    assert replay.trades_of(trader)[0].status == TradeStatus.OPEN
    hit = await replay.close({"BTC/USDT": (108.0, 108.2, 106.0, 106.5, 1e9)})
    trade, fill = exit_fill(replay, trader)
    assert (trade.exit_reason, trade.closed_at) == (ExitReason.TRAILING_STOP, hit.at)
    assert fill.expected_price == D("106.70")  # 3% under the high of 110
    assert fill.price == D("106.67")  # 106.7 less the half spread (106.673), rounded down


async def test_a_candle_holding_both_stop_and_target_takes_the_stop(
    sandbox: FilterSandbox,
) -> None:
    replay, trader = await entered(sandbox)
    # A falling candle that first rallies through the target, then drops through the stop:
    # with candles only the path is unknown, and the worst case is taken.
    await replay.close({"BTC/USDT": (100.0, 105.0, 97.0, 97.5, 1e9)})
    trade, fill = exit_fill(replay, trader)
    assert trade.exit_reason == ExitReason.STOP_LOSS
    assert fill.expected_price == D("98.03")


async def test_a_gap_through_the_stop_fills_at_the_open(sandbox: FilterSandbox) -> None:
    replay, trader = await entered(sandbox)
    await replay.close({"BTC/USDT": (95.0, 96.0, 94.0, 95.5, 1e9)})
    trade, fill = exit_fill(replay, trader)
    assert trade.exit_reason == ExitReason.STOP_LOSS
    assert (fill.expected_price, fill.price) == (D(95), D("94.97"))


async def test_the_decisions_levels_come_before_the_risk_settings(sandbox: FilterSandbox) -> None:
    trader = spec(RISK)
    replay = Replay([trader], sandbox)
    levels = KeyLevels(stop_loss=D(99), take_profits=(D(101), D(103)))
    await replay.ready(trader, levels=levels)
    await replay.close({"BTC/USDT": FLAT})
    (trade,) = replay.trades_of(trader)
    assert (trade.stop_loss, trade.take_profit) == (D(99), D(101))
    unusable = KeyLevels(stop_loss=D(120), take_profits=(D(90),))
    other = spec(RISK)
    replay = Replay([other], sandbox)
    await replay.ready(other, levels=unusable)
    await replay.close({"BTC/USDT": FLAT})
    (trade,) = replay.trades_of(other)
    assert (trade.stop_loss, trade.take_profit) == (D("98.03"), D("104.03"))


async def test_a_signal_handed_over_enters_at_its_decisions_levels_unless_its_trader_stopped(
    sandbox: FilterSandbox,
) -> None:
    """The trade stage takes a handed signal's trader and decision from the hand-off (the
    decision store holds none here); a trader stopped since it was read enters nothing."""
    trader = spec(RISK, symbols=("BTC/USDT", "ETH/USDT"))
    replay = Replay([trader], sandbox)
    await replay.hand(trader, levels=KeyLevels(stop_loss=D(99), take_profits=(D(101), D(103))))
    both = {"BTC/USDT": FLAT, "ETH/USDT": FLAT}
    await replay.close(both)
    (trade,) = replay.trades_of(trader)
    assert (trade.stop_loss, trade.take_profit) == (D(99), D(101))
    late = await replay.hand(trader, "ETH/USDT")
    await replay.traders.pause(trader, "stopped by its owner")
    await replay.close(both)
    assert len(replay.trades_of(trader)) == 1
    assert replay.signal(late).status == SignalStatus.CANCELLED
    assert replay.signal(late).status_reason == "the trader is no longer running"


@pytest.mark.parametrize(
    ("risk", "rule"),
    [
        (RiskSettings(max_positions=1), "max_positions"),
        (RiskSettings(position_size_percent=D(100)), "balance"),
    ],
)
async def test_a_second_entry_is_refused_with_the_reason(
    sandbox: FilterSandbox, risk: RiskSettings, rule: str
) -> None:
    trader = spec(risk, symbols=("BTC/USDT", "ETH/USDT"))
    replay = Replay([trader], sandbox)
    first = await replay.ready(trader, "BTC/USDT")
    await replay.close({"BTC/USDT": FLAT, "ETH/USDT": FLAT})
    second = await replay.ready(trader, "ETH/USDT")
    await replay.close({"BTC/USDT": FLAT, "ETH/USDT": FLAT})
    assert replay.signal(first).status == SignalStatus.ENTERED
    refused = replay.signal(second)
    assert refused.status == SignalStatus.CANCELLED
    assert refused.status_reason is not None
    assert refused.status_reason.startswith(f"refused by risk ({rule}):")
    assert refused in replay.notifier.changed
    assert [t.symbol for t in replay.trades_of(trader)] == ["BTC/USDT"]


async def test_an_entry_below_the_minimum_notional_is_refused(sandbox: FilterSandbox) -> None:
    trader = spec(RiskSettings(position_size_percent=D("0.05")))
    replay = Replay([trader], sandbox)
    signal = await replay.ready(trader)
    await replay.close({"BTC/USDT": FLAT})
    refused = replay.signal(signal)
    assert refused.status == SignalStatus.CANCELLED
    assert refused.status_reason == (
        "refused by risk (min_notional): 0.05% of the equity is 5.00 USDT; "
        "BTC/USDT needs an order worth at least 10 USDT"
    )
    assert replay.trades_of(trader) == []


async def test_the_cooldown_refuses_a_reentry_until_it_has_passed(sandbox: FilterSandbox) -> None:
    replay, trader = await entered(sandbox, RiskSettings(stop_loss=D(2), cooldown_candles=3))
    await replay.close({"BTC/USDT": (100.0, 100.2, 97.0, 97.5, 1e9)})
    assert replay.trades_of(trader)[0].exit_reason == ExitReason.STOP_LOSS
    early = await replay.ready(trader)
    await replay.close({"BTC/USDT": FLAT})
    assert replay.signal(early).status == SignalStatus.CANCELLED
    assert replay.signal(early).status_reason == (
        "refused by risk (cooldown): BTC/USDT was exited 1 candles ago; cooldownCandles is 3"
    )
    await replay.close({"BTC/USDT": FLAT})
    late = await replay.ready(trader)
    await replay.close({"BTC/USDT": FLAT})
    assert replay.signal(late).status == SignalStatus.ENTERED


async def test_the_stop_loss_guard_locks_entries_after_repeated_stop_outs(
    sandbox: FilterSandbox,
) -> None:
    risk = RiskSettings(stop_loss=D(2), stop_loss_guard=2, stop_loss_guard_candles=10)
    trader = spec(risk, symbols=("BTC/USDT", "ETH/USDT", "SOL/USDT"))
    replay = Replay([trader], sandbox)
    drop = (100.0, 100.2, 97.0, 97.5, 1e9)
    symbols = trader.symbols
    for symbol in symbols[:2]:
        await replay.ready(trader, symbol)
        await replay.close(dict.fromkeys(symbols, FLAT))
        await replay.close({s: drop if s == symbol else FLAT for s in symbols})
    assert [t.exit_reason for t in replay.trades_of(trader)] == [ExitReason.STOP_LOSS] * 2
    locked = await replay.ready(trader, "SOL/USDT")
    await replay.close(dict.fromkeys(symbols, FLAT))
    reason = replay.signal(locked).status_reason
    assert reason is not None and reason.startswith("refused by risk (stop_loss_guard)")


async def test_a_trader_at_its_max_drawdown_closes_its_positions_and_pauses(
    sandbox: FilterSandbox,
) -> None:
    risk = RiskSettings(position_size_percent=D(50), max_drawdown=D(5))
    trader = spec(risk, symbols=("BTC/USDT", "ETH/USDT"))
    replay = Replay([trader], sandbox)
    await replay.ready(trader, "BTC/USDT")
    await replay.ready(trader, "ETH/USDT")
    both = {"BTC/USDT": FLAT, "ETH/USDT": FLAT}
    await replay.close(both)
    assert [t.status for t in replay.trades_of(trader)] == [TradeStatus.OPEN] * 2
    await replay.close({s: (100.0, 100.0, 95.0, 96.0, 1e9) for s in both})
    assert replay.trades_of(trader)[0].status == TradeStatus.OPEN  # down 4%: not yet
    crash = await replay.close({s: (96.0, 96.0, 93.0, 93.5, 1e9) for s in both})
    trades = replay.trades_of(trader)
    assert [(t.status, t.exit_reason) for t in trades] == [
        (TradeStatus.CLOSED, ExitReason.DRAWDOWN)
    ] * 2
    assert all(t.closed_at == crash.at for t in trades)
    reason = replay.traders.paused[trader.id]
    assert reason.startswith("maxDrawdown 5% reached: equity ")
    assert not replay.traders.is_running(trader.id)
    actions = [e.action for e in replay.trades.audit_log]
    assert actions.index("trader_paused") < len(actions) - 1
    after = await replay.ready(trader, "BTC/USDT")
    await replay.close(both)
    assert replay.signal(after).status == SignalStatus.CANCELLED
    assert replay.signal(after).status_reason == "the trader is no longer running"
    assert crash.at == START + 3 * STEP


async def test_an_entry_level_below_the_market_waits_as_a_limit_order_and_fills_in_parts(
    sandbox: FilterSandbox,
) -> None:
    trader = spec(RISK)
    replay = Replay([trader], sandbox)
    await replay.ready(trader, levels=KeyLevels(entry=D(98)))
    await replay.close({"BTC/USDT": FLAT})
    (trade,) = replay.trades_of(trader)
    assert trade.status == TradeStatus.PENDING
    # Touching 98 is not trading through it; then 10% of 50 units fill per candle.
    await replay.close({"BTC/USDT": (100.0, 100.0, 98.0, 99.0, 50.0)})
    assert replay.trades_of(trader)[0].status == TradeStatus.PENDING
    await replay.close({"BTC/USDT": (99.0, 99.0, 97.5, 98.5, 50.0)})
    trade = replay.trades_of(trader)[0]
    assert (trade.status, trade.amount, trade.entry_price) == (TradeStatus.OPEN, D(5), D(98))
    await replay.close({"BTC/USDT": (98.5, 99.0, 97.9, 98.5, 50.0)})
    trade = replay.trades_of(trader)[0]
    assert trade.amount == D(10)
    fills = replay.trades.fills_of(trade.id)
    assert [(f.amount, f.price, f.liquidity) for f in fills] == [(D(5), D(98), Liquidity.MAKER)] * 2
    assert (trade.stop_loss, trade.take_profit) == (D("96.04"), D("101.92"))


async def test_a_limit_entry_that_never_fills_expires_and_cancels_its_trade(
    sandbox: FilterSandbox,
) -> None:
    trader = spec(RISK)
    replay = Replay([trader], sandbox)
    await replay.ready(trader, levels=KeyLevels(entry=D(90)))
    for _ in range(4):
        await replay.close({"BTC/USDT": FLAT})
    (trade,) = replay.trades_of(trader)
    assert trade.status == TradeStatus.CANCELLED
    (order,) = replay.trades.orders_by_id.values()
    assert (order.status.value, order.reason) == ("expired", "its time ran out")
    assert (await replay.trades.ledger(trader.id, trader.mode)).cash == D(10_000)
