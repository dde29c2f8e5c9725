"""Process settings, read once from `TRADERS_*` environment variables.

Every setting has an embedded default so that `traders serve` works on a fresh machine:
an SQLite file under `./data/`, the in-process event bus, and the `auto` market feed.
A misspelt or malformed variable stops the process at start with a message naming it,
because a silently ignored setting (say, a live exchange key under a wrong name) is worse
than a refusal to start.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
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
    gemini_api_key: SecretStr | None = None
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
    max_query_depth: int = Field(default=12, ge=2, le=100)
    max_aliases: int = Field(default=30, ge=1, le=1000)
    max_traders_per_user: int = Field(default=100, ge=1, le=1_000_000)
    max_query_cost: int = Field(
        default=20_000,
        ge=1,
        le=100_000_000,
        description="estimated fields an operation may resolve; page sizes multiply",
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
