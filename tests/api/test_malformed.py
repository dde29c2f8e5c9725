"""Malformed requests are answered 400 (HTTP level) or BAD_USER_INPUT naming the problem,
never a 500 or a masked internal error, on SQLite and PostgreSQL alike; nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.db.models import Trader
from tests.api.conftest import CREATE_TRADER, Caller

LONE_SURROGATE = '"a\\ud800b"'  # as JSON text: valid JSON, not Unicode
BODIES: dict[str, tuple[bytes, str]] = {
    "a number": (b"1", "must be a JSON object"),
    "null": (b"null", "must be a JSON object"),
    "a string": (b'"{ me { name } }"', "must be a JSON object"),
    "true": (b" true", "must be a JSON object"),
    "an empty body": (b"", "must be a JSON object"),
    "an array (a batch)": (b'[{"query": "{ me { name } }"}]', "Batching is not enabled"),
    "an array nested 1,000 deep": (b"[" * 1000 + b"]" * 1000, "must not nest deeper than 64"),
    "an object nested 1,000 deep": (
        b'{"query": "{ me { name } }", "variables": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}",
        "must not nest deeper than 64 levels",
    ),
    "an object nested 100 deep": (
        b'{"query": "{ me { name } }", "variables": {"a": ' + b"[" * 100 + b"]" * 100 + b"}}",
        "must not nest deeper than 64 levels",
    ),
    "NaN": (b'{"query": "{ me { name } }", "variables": {"a": NaN}}', "NaN is not a JSON number"),
    "Infinity": (
        b'{"query": "{ me { name } }", "variables": {"a": -Infinity}}',
        "-Infinity is not a JSON number",
    ),
    "a lone surrogate": (
        b'{"query": "{ me { name } }", "variables": {"a": ' + LONE_SURROGATE.encode() + b"}}",
        "lone surrogate U+D800",
    ),
    "a lone surrogate in a key": (
        b'{"query": "{ me { name } }", "variables": {' + LONE_SURROGATE.encode() + b": 1}}",
        "lone surrogate U+D800",
    ),
    "invalid UTF-8": (b'{"query": "{ me { name } }\xff"}', "utf-8"),
    "an integer of 5,000 digits": (
        b'{"query": "{ me { name } }", "variables": {"a": ' + b"7" * 5000 + b"}}",
        "integer",
    ),
}


def _fields_of(body: dict[str, Any]) -> list[str]:
    return [item["field"] for item in body["errors"][0]["extensions"]["fields"]]


@pytest.mark.parametrize("case", list(BODIES))
async def test_malformed_bodies_are_400(alice: Caller, case: str) -> None:
    content, message = BODIES[case]
    for accept in ("application/graphql-response+json", "application/json"):
        response = await alice.client.post(
            "/graphql",
            content=content,
            headers={
                "Authorization": f"Bearer {alice.token}",
                "Content-Type": "application/json",
                "Accept": accept,
            },
        )
        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith(accept)
        assert message in response.json()["errors"][0]["message"]


async def test_unacceptable_variables_over_get_are_400(alice: Caller) -> None:
    response = await alice.client.get(
        "/graphql",
        params={"query": "{ me { name } }", "variables": '{"a": NaN}'},
        headers={"Authorization": f"Bearer {alice.token}"},
    )
    assert response.status_code == 400
    assert "NaN is not a JSON number" in response.json()["errors"][0]["message"]


async def test_a_lone_surrogate_in_a_name_is_400_and_writes_nothing(alice: Caller) -> None:
    variables = '{"input": {"name": ' + LONE_SURROGATE + "}}"
    body = '{"query": ' + json.dumps(CREATE_TRADER) + ', "variables": ' + variables + "}"
    response = await alice.client.post(
        "/graphql",
        content=body.encode(),
        headers={"Authorization": f"Bearer {alice.token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert "lone surrogate U+D800" in response.json()["errors"][0]["message"]
    assert await Trader.all().count() == 0


async def test_a_lone_surrogate_escape_in_the_document_is_a_syntax_error(alice: Caller) -> None:
    response = await alice.post('mutation { createTrader(input: {name: "a\\ud800"}) { id } }')
    assert response.status_code == 400
    assert "Invalid Unicode escape sequence" in response.json()["errors"][0]["message"]
    assert await Trader.all().count() == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "a\x00b"}, "name"),
        ({"name": "x", "filter": {"indicators": {"note": "a\x00"}}}, "filter.indicators"),
    ],
)
async def test_a_nul_character_in_variables_is_bad_input(
    alice: Caller, fields: dict[str, Any], field: str
) -> None:
    body = await alice.gql(CREATE_TRADER, {"input": fields})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _fields_of(body) == [field]
    assert "NUL" in body["errors"][0]["message"]
    assert await Trader.all().count() == 0


async def test_a_nul_escape_in_the_document_is_bad_input(alice: Caller) -> None:
    body = await alice.gql('mutation { createTrader(input: {name: "a\\u0000"}) { id } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _fields_of(body) == ["name"]
    body = await alice.gql('{ signals(symbol: "BTC/USDT\\u0000") { nodes { id } } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _fields_of(body) == ["symbol"]
    assert await Trader.all().count() == 0


async def test_deeply_nested_json_inputs_are_bad_input_or_400(alice: Caller) -> None:
    deep: object = 1
    for _ in range(40):
        deep = {"a": deep}
    variables = await alice.gql(
        CREATE_TRADER, {"input": {"name": "x", "filter": {"indicators": deep}}}
    )
    assert variables["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _fields_of(variables) == ["filter.indicators"]
    assert "must not nest deeper than 8 levels" in variables["errors"][0]["message"]

    literal = "[" * 600 + "]" * 600
    mutation = 'mutation { createTrader(input: {name: "x", filter: {indicators: LITERAL}}) { id } }'
    response = await alice.post(mutation.replace("LITERAL", literal))
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["errors"][0]["message"]
    assert await Trader.all().count() == 0


@pytest.mark.parametrize("number", ["1e999", "7" * 20, "-" + "7" * 400])
async def test_numbers_no_database_stores_are_bad_input(alice: Caller, number: str) -> None:
    """Infinity, and integers past 64 bits (Tortoise's orjson refused them with a 500)."""
    literal = 'mutation { createTrader(input: {name: "x", filter: {indicators: {a: N}}}) { id } }'
    body = await alice.gql(literal.replace("N", number))
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _fields_of(body) == ["filter.indicators"]
    if "e" not in number:
        variable = {"name": "x", "filter": {"indicators": {"a": int(number)}}}
        body = await alice.gql(CREATE_TRADER, {"input": variable})
        assert _fields_of(body) == ["filter.indicators"]
    assert await Trader.all().count() == 0
