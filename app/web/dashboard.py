"""The dashboard's route: its static files at `/`, `index.html` for the root.

Mounted last, after `/graphql`, the probes and `/metrics`, so it answers only paths that
no other route claims. The page is plain HTML, CSS and JavaScript modules that talk to the
public GraphQL API like any other client, so it needs no build step and no server code.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

STATIC_DIRECTORY = Path(__file__).parent / "static"


def dashboard_mount() -> Mount:
    return Mount("/", app=StaticFiles(directory=STATIC_DIRECTORY, html=True), name="dashboard")
