"""How one candle close's screening time is shared between users, and who waits for whom.

A user's traders share one compute budget per close: each trader may spend its equal share
of its owner's budget in each sandbox worker, so a user with many slow filters costs the
others at most that budget, and a trader that keeps running over its share fails like any
failing filter (three times in a row puts it in error, with the reason).

Traders whose filters were slow at the previous close are screened after the others: the
fast traders' signals are recorded first, so one user's heavy filters delay nobody else's
screen by more than the fast traders' own time.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence

from app.domain.trader_spec import TraderSpec


def fair_budgets(
    owners: Mapping[uuid.UUID, int], per_user_seconds: float, cap_seconds: float
) -> dict[uuid.UUID, float]:
    """Each trader's budget per worker: an equal share of its owner's, at most `cap_seconds`.

    `owners` maps each trader screened at this close to its owner."""
    traders_of = Counter(owners.values())
    return {
        trader: min(cap_seconds, per_user_seconds / traders_of[owner])
        for trader, owner in owners.items()
    }


def split_by_cost(
    specs: Sequence[TraderSpec], spent: Mapping[uuid.UUID, float], heavy_seconds: float
) -> tuple[list[TraderSpec], list[TraderSpec]]:
    """(light, heavy): the traders that spent more than `heavy_seconds` at their previous
    close are heavy; the others, and traders not screened before, are light."""
    light: list[TraderSpec] = []
    heavy: list[TraderSpec] = []
    for spec in specs:
        (heavy if spent.get(spec.id, 0.0) > heavy_seconds else light).append(spec)
    return light, heavy
