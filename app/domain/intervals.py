"""Candle intervals the platform understands, in exchange notation, and their length."""

INTERVAL_SECONDS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "6h": 21600,
    "8h": 28800,
    "12h": 43200,
    "1d": 86400,
    "3d": 259200,
    "1w": 604800,
}

INTERVALS: tuple[str, ...] = tuple(INTERVAL_SECONDS)


def interval_ms(interval: str) -> int:
    """Length of one candle in milliseconds; KeyError for an unknown interval."""
    return INTERVAL_SECONDS[interval] * 1000
