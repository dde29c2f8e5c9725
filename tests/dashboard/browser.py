"""What the browser tests drive: a fresh `traders serve --demo` process, headless Chromium
from Debian's packages under playwright, and a page that records its console errors.

Screenshots are kept under `artifacts/browser/` in the repository (ignored by git), or the
directory `TRADERS_TEST_ARTIFACTS` names, so a run leaves pictures of what it saw.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from app.core.tokens import hash_token, new_token
from tests.events.live import ROOT, free_port, wait_for_port

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TRADERS_TEST_ARTIFACTS", ROOT / "artifacts" / "browser"))
LINK = re.compile(r"http://127\.0\.0\.1:\d+/#token=(\S+)")
# Simulated seconds per wall second: a one-minute candle closes every 2 s.
FEED_SPEED = "30"


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run every test (.ci/run installs it)")
    pytest.skip(reason)


@dataclass
class DemoServer:
    """`traders serve --demo` on a fresh SQLite file, and the sign-in link it printed."""

    directory: Path
    port: int = field(default_factory=free_port)
    link: str = ""
    token: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.directory / "serve.log"

    @property
    def database(self) -> Path:
        return self.directory / "traders.sqlite3"

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("TRADERS_")}
        return env | {
            "TRADERS_DATABASE_URL": f"sqlite://{self.database}",
            "TRADERS_FEED_SPEED": FEED_SPEED,
            "PYTHONPATH": str(ROOT),
        }

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve", "--demo", "--port", str(self.port)],
                cwd=self.directory,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, timeout=90)
        found = LINK.search(self.log.read_text())
        assert found, f"no sign-in link printed:\n{self.log.read_text()}"
        self.link, self.token = found.group(0), found.group(1)

    def stop(self) -> None:
        """Terminate, and kill what has not exited after 30 s (as `ApiServer.stop` does):
        these tests are about the page, not about a graceful shutdown."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def issue_token(self) -> str:
        """Another token for the local user, stored as `issue_token` stores one (its hash).
        Written from here, on one short connection, rather than by a second `traders`
        process that would migrate the database the running server writes to."""
        token = new_token()
        with self._database() as connection:
            connection.execute(
                "INSERT INTO api_tokens (user_id, token_hash, name, created_at, revoked) "
                "SELECT id, ?, 'browser test', ?, 0 FROM users WHERE name = 'local'",
                (hash_token(token), datetime.now(UTC).isoformat(" ")),
            )
        return token

    def revoke(self, token: str) -> None:
        with self._database() as connection:
            connection.execute(
                "UPDATE api_tokens SET revoked = 1 WHERE token_hash = ?", (hash_token(token),)
            )

    def _database(self) -> sqlite3.Connection:
        # The running server writes to the same file: wait for its write lock as it does.
        return sqlite3.connect(self.database, timeout=30)

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


class ConsoleErrors:
    """Every console error and uncaught exception of a page, as text."""

    def __init__(self, page: Page) -> None:
        self.messages: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"uncaught: {error}"))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.messages.append(message.text)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
