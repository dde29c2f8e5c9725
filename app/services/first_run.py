"""The first run of the embedded default: a local user, its sign-in link, and demo traders.

`traders serve` on a fresh SQLite database has nobody who could sign in, so it creates one
local user with an API token and prints a link that carries the token to the dashboard
(in the URL's fragment, which browsers never send to the server). With `--demo` that user
also gets a few template traders on one-minute candles, enabled, so a newcomer has signals,
decisions and paper trades to watch within a minute. Nothing happens on PostgreSQL (a
deployment creates its users on purpose) or once any user exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from app.db.models import Trader, User
from app.domain.trader_templates import TEMPLATES
from app.services.traders import TraderManager
from app.services.users import create_user

LOCAL_USER = "local"
DEMO_INTERVAL = "1m"
# Template parameters loosened for one-minute candles over the feed's whole universe, so
# that matches come within a minute or two rather than once a day.
DEMO_TRADERS: Mapping[str, Mapping[str, float]] = {
    "rsi_mean_reversion": {"threshold": 40},
    "volume_spike_momentum": {"multiple": 2, "change": 0.2},
    "bollinger_squeeze_breakout": {},
}


@dataclass(frozen=True, slots=True)
class FirstRun:
    """What the first run created: the user, its token (shown once), the demo traders."""

    user: User
    token: str
    traders: tuple[Trader, ...]


def applies_to(database_url: str) -> bool:
    """Whether a database can get a first-run user: only the embedded SQLite default."""
    return database_url.startswith("sqlite://")


async def first_run(database_url: str, manager: TraderManager, demo: bool) -> FirstRun | None:
    """Create the local user (and with `demo` its traders) when the database has no user;
    None when it is not the embedded default or somebody already exists."""
    if not applies_to(database_url) or await User.exists():
        return None
    user, token = await create_user(LOCAL_USER)
    traders = [await manager.create(user, fields) for fields in demo_traders()] if demo else []
    return FirstRun(user=user, token=token, traders=tuple(traders))


def demo_traders() -> list[dict[str, object]]:
    """The demo traders' fields, as `TraderManager.create` takes them: enabled, on the
    simulated feed's whole universe, at one-minute candles."""
    drafts = [
        replace(TEMPLATES[key].render(values), interval=DEMO_INTERVAL, symbols=())
        for key, values in DEMO_TRADERS.items()
    ]
    return [{**draft.trader_fields(), "enabled": True} for draft in drafts]


def sign_in_link(host: str, port: int, token: str) -> str:
    """The dashboard's address with the token in the fragment; a wildcard host is shown
    as the loopback address a local browser can open."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/#token={token}"
