"""Request bodies over TRADERS_MAX_BODY_BYTES are refused with 413 before they are read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.api.app import create_app
from app.core.settings import Settings

LIMIT = 64 * 1024
CHUNK = 16 * 1024
QUERY = b'{"query": "{ __typename }"}'


class Body:
    """A request body of `total` bytes that records how much of it was read."""

    def __init__(self, total: int, start: bytes = b"") -> None:
        self.total = total
        self.start = start
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = self.start
        while self.read < self.total:
            chunk = chunk or b" " * min(CHUNK, self.total - self.read)
            self.read += len(chunk)
            yield chunk
            chunk = b""


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url="sqlite://:memory:", max_body_bytes=LIMIT))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_a_declared_length_over_the_limit_is_refused_unread(
    client: httpx.AsyncClient,
) -> None:
    body = Body(200 * 1024 * 1024)
    response = await client.post(
        "/graphql",
        content=body,
        headers={"Content-Type": "application/json", "Content-Length": str(body.total)},
    )
    assert response.status_code == 413
    assert response.json() == {
        "errors": [{"message": f"request body over the limit of {LIMIT:,} bytes"}]
    }
    assert body.read == 0


async def test_a_chunked_body_is_refused_at_the_chunk_that_passes_the_limit(
    client: httpx.AsyncClient,
) -> None:
    body = Body(200 * 1024 * 1024, start=QUERY)
    response = await client.post(
        "/graphql", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["connection"] == "close"
    assert LIMIT < body.read <= LIMIT + CHUNK


async def test_a_body_at_the_limit_is_served(client: httpx.AsyncClient) -> None:
    padded = QUERY[:-1] + b" " * (LIMIT - len(QUERY)) + b"}"
    assert len(padded) == LIMIT
    for content in (padded, Body(LIMIT, start=QUERY)):
        response = await client.post(
            "/graphql", content=content, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_malformed_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=QUERY,
        headers={"Content-Type": "application/json", "Content-Length": "-1"},
    )
    assert response.status_code == 400
