"""The dashboard's files at `/`, beside the API routes it must not disturb."""

from __future__ import annotations

import re

import httpx
import pytest

from app.web.dashboard import STATIC_DIRECTORY


@pytest.fixture
def backend() -> str:
    return "sqlite"  # static files do not depend on the database


async def test_the_root_serves_the_page_and_every_file_it_loads(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    loaded = re.findall(r'(?:src|href)="([^":]+)"', page.text)
    assert "js/app.js" in loaded
    for path in loaded:
        response = await client.get(f"/{path}")
        assert response.status_code == 200, path


async def test_every_module_import_resolves_to_a_served_file(client: httpx.AsyncClient) -> None:
    modules = sorted((STATIC_DIRECTORY / "js").glob("*.js"))
    assert modules
    for module in modules:
        for imported in re.findall(r'from "\./([\w.]+)"', module.read_text()):
            response = await client.get(f"/js/{imported}")
            assert response.status_code == 200, (module.name, imported)


async def test_the_chart_library_the_charts_load_is_served(client: httpx.AsyncClient) -> None:
    charts = (STATIC_DIRECTORY / "js" / "charts.js").read_text()
    [library] = re.findall(r'const LIBRARY = "([^"]+)"', charts)
    response = await client.get(f"/{library}")
    assert response.status_code == 200
    assert "Lightweight Charts" in response.text[:300]


async def test_the_api_routes_answer_as_before(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/metrics")).headers["content-type"].startswith("text/plain")
    graphiql = await client.get("/graphql", headers={"Accept": "text/html"})
    assert "graphiql" in graphiql.text.lower()
    answer = await client.post("/graphql", json={"query": "{ __typename }"})
    assert answer.json() == {"data": {"__typename": "Query"}}
    assert (await client.get("/no-such-file.js")).status_code == 404


async def test_the_chart_library_ships_with_its_license() -> None:
    vendor = STATIC_DIRECTORY / "vendor"
    assert "Apache License" in (vendor / "lightweight-charts.LICENSE").read_text()
    assert (
        "Lightweight Charts"
        in (vendor / "lightweight-charts.standalone.production.js").read_text()[:300]
    )
