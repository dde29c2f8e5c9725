"""Each invalid input is answered with an error naming the field, and nothing is written."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from app.db.models import Trader
from tests.api.conftest import CREATE_TRADER, Caller, create_trader

RISK = "strategy.riskManagement."
NESTED_9: object = 1
for _ in range(9):
    NESTED_9 = [NESTED_9]
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("empty name", {"name": "  "}, "name"),
    ("stopLoss zero", {"strategy": {"riskManagement": {"stopLoss": "0"}}}, RISK + "stopLoss"),
    ("stopLoss 100", {"strategy": {"riskManagement": {"stopLoss": 100}}}, RISK + "stopLoss"),
    ("stopLoss negative", {"strategy": {"riskManagement": {"stopLoss": "-1"}}}, RISK + "stopLoss"),
    (
        "stopLoss rounds to 0",
        {"strategy": {"riskManagement": {"stopLoss": "0.00001"}}},
        RISK + "stopLoss",
    ),
    (
        "stopLoss rounds to 100",
        {"strategy": {"riskManagement": {"stopLoss": "99.99999"}}},
        RISK + "stopLoss",
    ),
    (
        "maxDrawdown rounds to 0",
        {"strategy": {"riskManagement": {"maxDrawdown": "0.00004"}}},
        RISK + "maxDrawdown",
    ),
    (
        "positionSizePercent zero",
        {"strategy": {"riskManagement": {"positionSizePercent": "0"}}},
        RISK + "positionSizePercent",
    ),
    (
        "positionSizePercent over 100",
        {"strategy": {"riskManagement": {"positionSizePercent": "100.01"}}},
        RISK + "positionSizePercent",
    ),
    (
        "maxPositions zero",
        {"strategy": {"riskManagement": {"maxPositions": 0}}},
        RISK + "maxPositions",
    ),
    ("unknown interval", {"interval": "7m"}, "interval"),
    ("bad symbol", {"symbols": ["btc-usdt"]}, "symbols"),
    ("name too long", {"name": "x" * 201}, "name"),
    ("description too long", {"description": "x" * 2001}, "description"),
    (
        "instructions too long",
        {"strategy": {"instructions": "x" * 10_001}},
        "strategy.instructions",
    ),
    (
        "too many filter description lines",
        {"filter": {"description": ["a"] * 21}},
        "filter.description",
    ),
    (
        "filter description line too long",
        {"filter": {"description": ["ok", "x" * 501]}},
        "filter.description",
    ),
    ("filter code too long", {"filter": {"code": "#" * 20_001}}, "filter.code"),
    ("indicators nested too deep", {"filter": {"indicators": NESTED_9}}, "filter.indicators"),
    (
        "indicators too large",
        {"filter": {"indicators": {"notes": "x" * 16_384}}},
        "filter.indicators",
    ),
    ("NUL in name", {"name": "a\x00b"}, "name"),
    ("NUL in description", {"description": "a\x00b"}, "description"),
    (
        "NUL in instructions",
        {"strategy": {"instructions": "buy\x00"}},
        "strategy.instructions",
    ),
    ("NUL in a filter description", {"filter": {"description": ["\x00"]}}, "filter.description"),
    ("NUL in filter code", {"filter": {"code": "return True\x00"}}, "filter.code"),
    ("NUL in indicators", {"filter": {"indicators": {"k": "a\x00"}}}, "filter.indicators"),
    ("NUL in an indicators key", {"filter": {"indicators": {"\x00": 1}}}, "filter.indicators"),
]


def _fields_of(body: dict[str, Any]) -> list[str]:
    return [item["field"] for item in body["errors"][0]["extensions"]["fields"]]


@pytest.mark.parametrize(("case", "fields", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_create_rejects_and_writes_nothing(
    alice: Caller, case: str, fields: dict[str, Any], field: str
) -> None:
    body = await alice.gql(CREATE_TRADER, {"input": {"name": "ok", **fields}})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert _fields_of(body) == [field]
    assert field in body["errors"][0]["message"]
    assert await Trader.all().count() == 0


@pytest.mark.parametrize(("case", "fields", "field"), INVALID, ids=[c[0] for c in INVALID])
async def test_update_rejects_and_changes_nothing(
    alice: Caller, case: str, fields: dict[str, Any], field: str
) -> None:
    trader = await create_trader(alice, name="keep", strategy={"riskManagement": {"stopLoss": 5}})
    body = await alice.gql(
        "mutation($id: ID!, $input: UpdateTraderInput!) {"
        " updateTrader(id: $id, input: $input) { id } }",
        {"id": trader["id"], "input": fields},
    )
    assert _fields_of(body) == [field]
    stored = await Trader.get(id=trader["id"])
    assert stored.name == "keep"
    assert stored.stop_loss == 5
    assert stored.interval == "1h"
    assert stored.symbols == []


async def test_unknown_mode_is_refused_by_the_schema_naming_the_field(alice: Caller) -> None:
    response = await alice.post(CREATE_TRADER, {"input": {"name": "x", "mode": "paper"}})
    body = response.json()
    assert "data" not in body or body["data"] is None
    assert "mode" in body["errors"][0]["message"]
    assert await Trader.all().count() == 0


async def test_null_for_a_required_field_is_refused(alice: Caller) -> None:
    trader = await create_trader(alice)
    body = await alice.gql(
        "mutation($id: ID!) { updateTrader(id: $id, input: {interval: null}) { id } }",
        {"id": trader["id"]},
    )
    assert _fields_of(body) == ["interval"]


async def test_delete_needs_confirmation(alice: Caller) -> None:
    trader = await create_trader(alice)
    body = await alice.gql(
        "mutation($id: ID!) { deleteTrader(id: $id, confirm: false) }", {"id": trader["id"]}
    )
    assert _fields_of(body) == ["confirm"]
    assert await Trader.exists(id=trader["id"])


async def test_several_errors_are_reported_together(alice: Caller) -> None:
    body = await alice.gql(
        CREATE_TRADER,
        {"input": {"name": "", "interval": "9h", "strategy": {"riskManagement": {"stopLoss": 0}}}},
    )
    assert sorted(_fields_of(body)) == sorted(["name", "interval", RISK + "stopLoss"])


async def test_filter_code_is_validated_with_line_and_column(alice: Caller) -> None:
    body = await alice.gql(
        CREATE_TRADER,
        {"input": {"name": "x", "filter": {"code": "x = 1\nimport os\nreturn True"}}},
    )
    assert _fields_of(body) == ["filter.code"]
    message = body["errors"][0]["extensions"]["fields"][0]["message"]
    assert "line 2, column 1" in message
    assert "import" in message
    assert await Trader.all().count() == 0


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity"])
async def test_non_numbers_are_refused_naming_the_field(alice: Caller, value: str) -> None:
    response = await alice.post(
        CREATE_TRADER,
        {"input": {"name": "x", "strategy": {"riskManagement": {"stopLoss": value}}}},
    )
    error = response.json()["errors"][0]["message"]
    assert "stopLoss" in error
    assert "Internal" not in error
    assert await Trader.all().count() == 0


@pytest.mark.parametrize(
    "time",
    ["2020-01-01T00:00:00", "9999-12-31T23:59:59-23:59", "yesterday"],
    ids=["without-zone", "out-of-range-in-utc", "not-a-time"],
)
async def test_a_cursor_not_from_this_api_is_bad_input(alice: Caller, time: str) -> None:
    cursor = base64.urlsafe_b64encode(f"{time}|{uuid.uuid4()}".encode()).decode()

    for field in ("signals", "trades"):
        body = await alice.gql(f'{{ {field}(after: "{cursor}") {{ nodes {{ id }} }} }}')

        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
        assert body["errors"][0]["extensions"]["fields"][0]["field"] == "after"


async def test_a_percentage_is_checked_as_it_will_be_stored(alice: Caller) -> None:
    body = await alice.gql(
        CREATE_TRADER,
        {"input": {"name": "x", "strategy": {"riskManagement": {"stopLoss": "0.00001"}}}},
    )
    message = body["errors"][0]["extensions"]["fields"][0]["message"]
    assert "rounds to 0.0000" in message

    kept = await create_trader(
        alice, strategy={"riskManagement": {"stopLoss": "99.99994", "positionSizePercent": "100"}}
    )
    risk = kept["strategy"]["riskManagement"]
    assert (risk["stopLoss"], risk["positionSizePercent"]) == ("99.9999", "100")


async def test_inputs_at_their_limits_are_accepted(alice: Caller) -> None:
    created = await create_trader(
        alice,
        name="n" * 200,
        description="d" * 2000,
        filter={
            "description": ["x" * 500] * 20,
            "indicators": [[[[[[[[1]]]]]]]],
        },
        strategy={"instructions": "i" * 10_000},
    )
    assert created["filter"]["description"] == ["x" * 500] * 20
