"""The GraphQL-over-HTTP details real clients depend on, plus probes and request limits."""

from __future__ import annotations

import httpx
import pytest

from app.api.view import negotiate
from tests.api.conftest import Caller

GRAPHQL_RESPONSE = "application/graphql-response+json"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, GRAPHQL_RESPONSE),
        ("*/*", GRAPHQL_RESPONSE),
        ("application/json", "application/json"),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        ("text/plain", None),
        (f"{GRAPHQL_RESPONSE};q=0", None),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


async def _post(client: httpx.AsyncClient, token: str, query: str, accept: str) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {token}", "Accept": accept},
    )


async def test_graphql_response_json_statuses(alice: Caller) -> None:
    ok = await _post(alice.client, alice.token, "{ me { name } }", GRAPHQL_RESPONSE)
    assert ok.status_code == 200
    assert ok.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert ok.json() == {"data": {"me": {"name": "alice"}}}

    invalid = await _post(alice.client, alice.token, "{ nope }", GRAPHQL_RESPONSE)
    assert invalid.status_code == 400
    assert invalid.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert "data" not in invalid.json()
    assert invalid.json()["errors"][0]["message"]

    unparsable = await _post(alice.client, alice.token, "{ me { ", GRAPHQL_RESPONSE)
    assert unparsable.status_code == 400

    field_error = await _post(
        alice.client, alice.token, '{ trader(id: "x") { id } }', GRAPHQL_RESPONSE
    )
    assert field_error.status_code == 200
    assert field_error.json()["data"] is None


async def test_application_json_is_always_200(alice: Caller) -> None:
    invalid = await _post(alice.client, alice.token, "{ nope }", "application/json")
    assert invalid.status_code == 200
    assert invalid.headers["content-type"].startswith("application/json")
    assert invalid.json()["errors"]


async def test_not_acceptable_and_method_not_allowed(alice: Caller) -> None:
    refused = await _post(alice.client, alice.token, "{ me { name } }", "text/csv")
    assert refused.status_code == 406
    mutation_over_get = await alice.client.get(
        "/graphql",
        params={"query": 'mutation { deleteTrader(id: "x", confirm: true) }'},
        headers={"Authorization": f"Bearer {alice.token}", "Accept": GRAPHQL_RESPONSE},
    )
    assert mutation_over_get.status_code == 405
    assert "POST" in mutation_over_get.headers["allow"]
    bad_json = await alice.client.post(
        "/graphql", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    assert bad_json.json()["errors"][0]["message"]


async def test_query_over_get(alice: Caller) -> None:
    response = await alice.client.get(
        "/graphql",
        params={"query": "{ me { name } }"},
        headers={"Authorization": f"Bearer {alice.token}", "Accept": "application/json"},
    )
    assert response.json() == {"data": {"me": {"name": "alice"}}}


async def test_bad_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", json={"query": "{ me { name } }"}, headers={"Authorization": "Bearer nope"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_graphiql_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_health_probes(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_readyz_does_not_tell_why_the_database_failed(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Down:
        async def execute_query(self, sql: str) -> None:
            raise OSError("connect to postgres://admin:hunter2@10.0.0.5 refused")

    monkeypatch.setattr("app.api.app.get_connection", lambda name: Down())

    ready = await client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "unavailable"}


async def test_depth_and_alias_limits(alice: Caller) -> None:
    nested = "trader { id }"
    for _ in range(4):
        nested = f"trader {{ signals {{ nodes {{ {nested} }} }} }}"
    deep = f"{{ traders {{ nodes {{ signals {{ nodes {{ {nested} }} }} }} }} }}"
    body = (await _post(alice.client, alice.token, deep, "application/json")).json()
    assert "exceeds maximum operation depth" in body["errors"][0]["message"]
    aliases = "{ " + " ".join(f"a{i}: me {{ name }}" for i in range(31)) + " }"
    body = (await _post(alice.client, alice.token, aliases, "application/json")).json()
    assert "aliases" in body["errors"][0]["message"].lower()
