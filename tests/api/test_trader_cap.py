"""A user owns at most TRADERS_MAX_TRADERS_PER_USER traders, also when creations race."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from app.api.app import create_app
from app.core.settings import Settings
from app.db.models import Trader
from tests.api.conftest import CREATE_TRADER, Caller

CAP = 3


@pytest.fixture
async def capped(db: str, alice: Caller) -> AsyncIterator[Caller]:
    app = create_app(Settings(database_url=db, max_traders_per_user=CAP))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield Caller(client, alice.token, alice.user_id)


async def _create(caller: Caller, name: str) -> dict:
    return await caller.gql(CREATE_TRADER, {"input": {"name": name}})


async def test_creating_beyond_the_cap_is_bad_input(capped: Caller, bob: Caller) -> None:
    for index in range(CAP):
        assert "errors" not in await _create(capped, f"t{index}")

    refused = await _create(capped, "one too many")

    assert refused["data"] is None
    error = refused["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["fields"] == [
        {
            "field": "input",
            "message": f"a user may have at most {CAP} traders: delete one to create another",
        }
    ]
    assert await Trader.filter(owner_id=capped.user_id).count() == CAP
    # The cap is per user; and deleting one makes room again.
    assert "errors" not in await bob.gql(CREATE_TRADER, {"input": {"name": "bob's"}})
    first = await Trader.filter(owner_id=capped.user_id).first()
    assert first is not None
    await capped.data(
        "mutation($id: ID!) { deleteTrader(id: $id, confirm: true) }", {"id": str(first.id)}
    )
    assert "errors" not in await _create(capped, "room again")


async def test_racing_creations_never_pass_the_cap(capped: Caller) -> None:
    answers = await asyncio.gather(*(_create(capped, f"racer {n}") for n in range(4 * CAP)))

    created = [answer for answer in answers if "errors" not in answer]
    refused = [answer for answer in answers if "errors" in answer]
    assert len(created) == CAP
    assert {answer["errors"][0]["extensions"]["code"] for answer in refused} == {"BAD_USER_INPUT"}
    assert await Trader.filter(owner_id=capped.user_id).count() == CAP
