"""An in-process API client on the `db` fixture's database, and users with tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.api.app import create_app
from app.core.settings import Settings
from app.services.users import create_user


@dataclass
class Caller:
    """One user talking GraphQL to the app."""

    client: httpx.AsyncClient
    token: str
    user_id: int

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        return await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
        )

    async def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.gql(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture
def app(db: str) -> Starlette:
    """The real application; its lifespan is not run, the `db` fixture has connected."""
    return create_app(Settings(database_url=db))


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def _caller(client: httpx.AsyncClient, name: str) -> Caller:
    user, token = await create_user(name)
    return Caller(client, token, user.id)


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Caller:
    return await _caller(client, "alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Caller:
    return await _caller(client, "bob")


CREATE_TRADER = """
mutation Create($input: CreateTraderInput!) {
  createTrader(input: $input) {
    id name enabled mode status interval symbols
    filter { code description }
    strategy {
      instructions
      riskManagement { stopLoss takeProfit maxPositions positionSizePercent maxDrawdown }
    }
  }
}
"""


async def create_trader(caller: Caller, **fields: Any) -> dict[str, Any]:
    data = await caller.data(CREATE_TRADER, {"input": {"name": "momentum", **fields}})
    return data["createTrader"]
