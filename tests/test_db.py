from decimal import Decimal

import pytest

from app.db.models import AppendOnlyError, TradeAuditLog, Trader, User


async def test_models_round_trip_decimals(db: str) -> None:
    user = await User.create(name="alice")
    trader = await Trader.create(owner=user, name="t", stop_loss=Decimal("2.5"))
    fetched = await Trader.get(id=trader.id)
    assert fetched.stop_loss == Decimal("2.5")


async def test_audit_log_is_append_only(db: str) -> None:
    user = await User.create(name="alice")
    trader = await Trader.create(owner=user, name="t")
    row = await TradeAuditLog.create(owner_id=user.id, trader_id=trader.id, action="order_sent")
    row.action = "changed"
    with pytest.raises(AppendOnlyError):
        await row.save()
    with pytest.raises(AppendOnlyError):
        await row.delete()
    assert (await TradeAuditLog.get(id=row.id)).action == "order_sent"
