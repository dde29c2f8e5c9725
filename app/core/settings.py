"""Process settings, read once from `TRADERS_*` environment variables.

Every setting has an embedded default so that `traders serve` works on a fresh machine:
an SQLite file under `./data/`, the in-process event bus, and the `auto` market feed.
A misspelt or malformed variable stops the process at start with a message naming it,
because a silently ignored setting (say, a live exchange key under a wrong name) is worse
than a refusal to start.
"""

from __future__ import annotations

import os
from decimal import Decimal
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TRADERS_"


class SettingsError(ValueError):
    """A `TRADERS_*` variable is unknown or its value is malformed."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", frozen=True)

    database_url: str = Field(
        default="sqlite://data/traders.sqlite3",
        description="Tortoise database URL: sqlite://path or postgres://user@host:port/db",
    )
    redis_url: str | None = Field(
        default=None, description="redis://host:port/db; unset means the in-process event bus"
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts exchange credentials at rest",
    )
    gemini_api_key: SecretStr | None = Field(
        default=None, description="Gemini API key; unset, the offline analysis engines answer"
    )
    gemini_model: str = Field(
        default="gemini-2.5-flash", min_length=1, description="model that analyzes signals"
    )
    gemini_generation_model: str = Field(
        default="gemini-2.5-flash", min_length=1, description="model that generates traders"
    )
    gemini_base_url: str | None = Field(
        default=None, description="Gemini API base URL (a proxy, or a fake in tests)"
    )
    gemini_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    gemini_attempts: int = Field(
        default=4,
        ge=1,
        le=10,
        description="attempts per request on 429 and 5xx, the first one included",
    )
    gemini_max_retry_delay_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="a longer retry delay asked by the API fails the request instead of waiting",
    )
    analysis_engine: Literal["auto", "gemini", "rules", "filter"] = Field(
        default="auto",
        description="auto: Gemini with a key, the rule engine without one; filter: no "
        "analysis, every signal entered with the trader's stop loss and take profit",
    )
    llm_daily_tokens_per_user: int = Field(
        default=2_000_000,
        ge=0,
        description="model tokens a user may spend per UTC day; then the rule engine answers",
    )
    llm_concurrency: int = Field(default=10, ge=1, le=1000, description="model calls at once")
    llm_concurrency_per_user: int = Field(default=4, ge=1, le=1000)
    analysis_candles: int = Field(default=100, ge=20, le=1000)
    watch_rechecks: int = Field(
        default=5, ge=1, le=1000, description="re-checks of a watched signal before it expires"
    )
    watch_cancel_move_percent: float = Field(
        default=5.0,
        gt=0,
        le=100,
        description="a watched signal whose price moved more is cancelled",
    )
    outcome_horizon_candles: int = Field(
        default=24, ge=1, le=1000, description="candles after a decision that judge its outcome"
    )
    feed: str = Field(
        default="auto", description="auto | simulated | ccxt:<exchange> | replay:<directory>"
    )
    feed_speed: float | None = Field(
        default=None,
        gt=0,
        le=1_000_000,
        description="how many times faster than real time the simulated and replay feeds run; "
        "unset: simulated in real time, replay at 60x",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    engine: Literal["embedded", "off"] = Field(
        default="embedded",
        description="embedded runs the trading engine inside the API process; off serves only",
    )
    kline_depth: int = Field(default=500, ge=50, le=100_000)
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="largest HTTP request body and websocket message; larger bodies get 413",
    )
    max_indicator_candles: int = Field(
        default=10_000,
        ge=1,
        le=100_000_000,
        description="per klines request: indicators asked for x the stored candles each is "
        "computed over (20 indicators over the default 500 candles)",
    )
    dry_run_eval_seconds: float = Field(
        default=0.25, gt=0, le=5, description="time limit of one symbol in a validateFilter dry run"
    )
    dry_run_seconds: float = Field(
        default=1.5,
        gt=0,
        le=30,
        description="evaluation time of one validateFilter dry run, in all",
    )
    dry_run_wait_seconds: float = Field(
        default=5.0,
        ge=0,
        le=60,
        description="how long a dry run waits for a free dry-run worker before it is refused",
    )
    dry_run_workers: int = Field(default=1, ge=1, le=8, description="workers of the dry-run lane")
    screen_seconds_per_user: float = Field(
        default=4.0,
        gt=0,
        le=600,
        description="filter evaluation time a user's traders share per candle close and "
        "sandbox worker; a trader over its share fails that close",
    )
    heavy_trader_seconds: float = Field(
        default=0.25,
        gt=0,
        le=600,
        description="a trader that spent more at its previous close is screened after the "
        "others have their signals",
    )
    demo_balance: Decimal = Field(
        default=Decimal(10_000), gt=0, le=10**12, description="each demo trader's starting USDT"
    )
    demo_taker_fee: Decimal = Field(
        default=Decimal("0.001"), ge=0, lt=1, description="paper fee of market orders (0.001: 0.1%)"
    )
    demo_maker_fee: Decimal = Field(
        default=Decimal("0.001"), ge=0, lt=1, description="paper fee of resting limit orders"
    )
    demo_volume_share: Decimal = Field(
        default=Decimal("0.1"),
        gt=0,
        le=1,
        description="the largest share of a candle's volume a paper limit order fills in it",
    )
    demo_impact: Decimal = Field(
        default=Decimal("0.1"),
        ge=0,
        le=100,
        description="paper market impact: the price moves impact x (order amount / candle volume)",
    )
    backtest_data: str = Field(
        default="data/candles",
        description="the replay directory (CSV or Parquet candle files) backtests run on",
    )
    backtest_concurrency: int = Field(
        default=1, ge=1, le=64, description="backtests one API process runs at once"
    )
    backtest_lease_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="a queued or running backtest whose API process has not said it still "
        "runs it for this long was left by a process that stopped: it is failed",
    )
    max_query_depth: int = Field(default=12, ge=2, le=100)
    max_aliases: int = Field(default=30, ge=1, le=1000)
    max_traders_per_user: int = Field(default=100, ge=1, le=1_000_000)
    max_query_cost: int = Field(
        default=20_000,
        ge=1,
        le=100_000_000,
        description="estimated fields an operation may resolve; page sizes multiply",
    )
    subscription_send_queue: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description="subscription results a websocket may have waiting to be sent; then the "
        "oldest is dropped for each new one",
    )
    subscription_max_dropped: int = Field(
        default=1000,
        ge=1,
        le=100_000_000,
        description="results dropped for a websocket that does not read before it is closed "
        "(code 4420)",
    )
    ticker_interval_seconds: float = Field(
        default=1.0,
        ge=0.05,
        le=3600,
        description="tickers subscriptions get each symbol's ticker at most this often",
    )
    ws_per_message_deflate: bool = Field(
        default=False,
        description="compress websocket messages (permessage-deflate) when a client offers it; "
        "costs CPU per message and memory per connection for small JSON events",
    )

    @field_validator("database_url")
    @classmethod
    def _known_database_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgres://", "postgresql://", "asyncpg://")):
            raise ValueError("must start with sqlite://, postgres:// or postgresql://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _known_redis_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("gemini_base_url")
    @classmethod
    def _http_base_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("analysis_engine")
    @classmethod
    def _gemini_needs_a_key(cls, value: str, info: ValidationInfo) -> str:
        if value == "gemini" and info.data.get("gemini_api_key") is None:
            raise ValueError(f"gemini needs {ENV_PREFIX}GEMINI_API_KEY")
        return value

    @property
    def uses_gemini(self) -> bool:
        """Whether model calls are made: a key, and the rule engine not forced (with
        `filter` the model only generates traders: no signal is analyzed)."""
        return self.gemini_api_key is not None and self.analysis_engine != "rules"

    @field_validator("feed")
    @classmethod
    def _known_feed(cls, value: str) -> str:
        kind, _, argument = value.partition(":")
        if kind in ("auto", "simulated") and not argument:
            return value
        if kind in ("ccxt", "replay") and argument:
            return value
        raise ValueError("must be auto, simulated, ccxt:<exchange> or replay:<directory>")


def _unknown_variables(environ: dict[str, str]) -> list[str]:
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    return sorted(key for key in environ if key.startswith(ENV_PREFIX) and key not in known)


def load_settings() -> Settings:
    """Build settings from the environment, naming the variable at fault on any error."""
    if unknown := _unknown_variables(dict(os.environ)):
        raise SettingsError(f"unknown setting {', '.join(unknown)}")
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{str(error['loc'][0]).upper()}: {error['msg']}" for error in exc.errors()
        )
        raise SettingsError(problems) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
