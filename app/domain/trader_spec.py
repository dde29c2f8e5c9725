"""What the engine knows of a trader: a frozen `TraderSpec`, never a database row.

Stages take specs, so the same stage code runs on traders read from the database (live) or
built in memory (a backtest of a template or a generation that was never saved). The field
names here are the trader's vocabulary everywhere below the API: the validation rules, the
database columns and the repository that maps one to the other use them unchanged; only the
API speaks GraphQL paths (`strategy.riskManagement.stopLoss`) and maps them onto these.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any

from app.domain.enums import TradingMode
from app.domain.filter_validation import FilterProgram, parse_filter

PROGRAM_CACHE = 4096


@dataclass(frozen=True, slots=True)
class RiskSettings:
    """A trader's risk settings, None when unset: percentages of 0-100 as stored (4 places),
    counts, and durations in candles of the trader's interval (see `app.domain.risk`).

    `min_risk_reward` is the least reward per unit of risk (to the first take profit) that an
    analysis may propose; unset, the analysis rules' default applies."""

    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    max_positions: int | None = None
    position_size_percent: Decimal | None = None
    max_drawdown: Decimal | None = None
    min_risk_reward: Decimal | None = None
    trailing_stop: Decimal | None = None
    cooldown_candles: int | None = None
    stop_loss_guard: int | None = None
    stop_loss_guard_candles: int | None = None
    review_candles: int | None = None


RISK_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RiskSettings))


@lru_cache(maxsize=PROGRAM_CACHE)
def compiled_filter(code: str, interval: str) -> FilterProgram:
    """The validated filter of `code` at `interval`, parsed once however many screens ask;
    `FilterValidationError` for code that does not pass (errors are not cached)."""
    return parse_filter(code, interval)


@dataclass(frozen=True, slots=True)
class TraderSpec:
    id: uuid.UUID
    owner_id: int
    name: str
    interval: str
    symbols: tuple[str, ...] = ()
    mode: TradingMode = TradingMode.DEMO
    filter_code: str = ""
    filter_description: tuple[str, ...] = ()
    strategy_instructions: str = ""
    risk: RiskSettings = field(default_factory=RiskSettings)
    exit_filter_code: str = ""

    @property
    def filter(self) -> FilterProgram:
        """The parsed filter; raises `FilterValidationError` when the code is invalid."""
        return compiled_filter(self.filter_code, self.interval)

    @property
    def exit_filter(self) -> FilterProgram | None:
        """The parsed exit filter, None when the trader has none; raises
        `FilterValidationError` when the code is invalid."""
        if not self.exit_filter_code.strip():
            return None
        return compiled_filter(self.exit_filter_code, self.interval)

    def filter_params(self) -> dict[str, Any]:
        """What the filter reads as `params`: its interval and risk settings, as numbers."""
        risk = {
            name: None if value is None else float(value)
            for name, value in ((n, getattr(self.risk, n)) for n in RISK_FIELDS)
        }
        return {"interval": self.interval, **risk}

    def screening_fingerprint(self) -> str:
        """Changes whenever what the trader screens changes (filter, symbols, interval): the
        matches of an earlier filter say nothing about what newly matches under this one."""
        screened = "\n".join([self.interval, *sorted(self.symbols), self.filter_code])
        return hashlib.sha256(screened.encode()).hexdigest()
