"""The first run: one local user with a token (and with --demo, running template traders)
on a fresh embedded database, and nothing on PostgreSQL or once anybody exists."""

from __future__ import annotations

import pytest

from app.core.events import InProcessEventBus
from app.db.models import Trader, User
from app.domain.enums import TraderStatus
from app.services.first_run import DEMO_INTERVAL, DEMO_TRADERS, first_run, sign_in_link
from app.services.traders import TraderManager
from app.services.users import authenticate, create_user


def _manager() -> TraderManager:
    return TraderManager(InProcessEventBus())


async def test_a_fresh_embedded_database_gets_a_local_user_whose_token_signs_in(
    db: str, backend: str
) -> None:
    created = await first_run(db, _manager(), demo=False)
    if backend == "postgres":
        assert created is None
        assert await User.all().count() == 0
        return
    assert created is not None
    assert created.traders == ()
    assert await authenticate(created.token) == created.user
    assert await Trader.all().count() == 0


async def test_demo_traders_are_enabled_template_traders_on_one_minute_candles(
    db: str, backend: str
) -> None:
    created = await first_run(db, _manager(), demo=True)
    if backend == "postgres":
        assert created is None
        assert await Trader.all().count() == 0
        return
    assert created is not None
    traders = await Trader.filter(owner_id=created.user.id).order_by("name")
    assert len(traders) == len(DEMO_TRADERS) == 3
    for trader in traders:
        assert trader.enabled and trader.status == TraderStatus.RUNNING
        assert trader.interval == DEMO_INTERVAL
        assert trader.symbols == []  # the feed's whole universe
    assert "r[-1] < 40" in next(t.filter_code for t in traders if t.name.startswith("RSI"))


async def test_nothing_is_created_once_a_user_exists(db: str) -> None:
    await create_user("alice")
    assert await first_run(db, _manager(), demo=True) is None
    assert [user.name for user in await User.all()] == ["alice"]
    assert await Trader.all().count() == 0


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("::1", "[::1]")],
)
def test_the_sign_in_link_carries_the_token_in_its_fragment(host: str, shown: str) -> None:
    assert sign_in_link(host, 8000, "trd_x") == f"http://{shown}:8000/#token=trd_x"
