"""What a one-sentence trader description states, read without a model.

Offline, a generated trader is a template adapted to what the user wrote, so the numbers in
"RSI(7) under 25 on the 4h, 2% stop" must reach the filter and the risk settings. This
reads the facts a template can use: the interval, indicator periods (`RSI(7)`, `7-period
RSI`, `EMA 9/21`), thresholds (`under 25`, `above 70`), a volume multiple (`3x volume`),
symbols (`BTC`, `ETH/USDT`, `bitcoin`) and risk numbers (`2% stop`, `take profit 6%`,
`max 3 positions`). It is deliberately literal: a number is taken only where the words
around it say what it is, so nothing is invented.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from app.domain.indicators import INDICATORS
from app.domain.intervals import INTERVALS

_NUMBER = r"(\d+(?:\.\d+)?)"
_UNITS = {
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "hourly": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "daily": "d",
    "w": "w",
    "week": "w",
    "weeks": "w",
    "weekly": "w",
}
_INTERVAL = re.compile(
    r"\b(\d{1,2})\s*-?\s*(" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r")\b"
    r"(?!\s*(?:ema|sma|wma|rsi|average|moving|period|candles?|bars?))",
    re.IGNORECASE,
)
_INTERVAL_WORDS = {"hourly": "1h", "daily": "1d", "weekly": "1w"}
_INDICATOR_NAMES = "|".join(sorted(INDICATORS, key=len, reverse=True))
_CALL = re.compile(rf"\b({_INDICATOR_NAMES})\s*\(\s*([\d.,\s]+)\)", re.IGNORECASE)
_NAME_THEN_NUMBERS = re.compile(
    rf"\b({_INDICATOR_NAMES})\s+(\d+(?:\s*(?:/|,|and|&)\s*\d+)*)\b(?!\s*%)", re.IGNORECASE
)
_NUMBERS_THEN_NAME = re.compile(
    rf"\b(\d+(?:\s*(?:/|,|and|&)\s*\d+)*)\s*-?\s*(?:period\s+|candle\s+|bar\s+)?"
    rf"({_INDICATOR_NAMES})\b",
    re.IGNORECASE,
)
_BELOW = re.compile(
    rf"\b(?:under|below|less than|drops? (?:under|below)|falls? (?:under|below)|<)\s*{_NUMBER}",
    re.IGNORECASE,
)
_ABOVE = re.compile(
    rf"\b(?:over|above|greater than|more than|rises? above|crosses? above|>)\s*{_NUMBER}",
    re.IGNORECASE,
)
_MULTIPLE = re.compile(rf"{_NUMBER}\s*(?:x|times)\b", re.IGNORECASE)
_STDDEV = re.compile(rf"{_NUMBER}\s*(?:std|standard deviations?|sigma)", re.IGNORECASE)
_PERCENT_OF = {
    "stop_loss": re.compile(
        rf"(?:{_NUMBER}\s*%\s*(?:stop|sl)\b|\b(?:stop(?:[- ]loss)?|sl)\s*(?:of|at|=|:)?\s*"
        rf"{_NUMBER}\s*%)",
        re.IGNORECASE,
    ),
    "take_profit": re.compile(
        rf"(?:{_NUMBER}\s*%\s*(?:take[- ]profit|tp|target|profit)\b|\b(?:take[- ]profit|tp|"
        rf"target|profit target)\s*(?:of|at|=|:)?\s*{_NUMBER}\s*%)",
        re.IGNORECASE,
    ),
    "position_size_percent": re.compile(
        rf"(?:{_NUMBER}\s*%\s*(?:of (?:the )?(?:equity|balance|capital|account)|position|"
        rf"per trade)|\b(?:position size|size|risk)\s*(?:of|at|=|:)?\s*{_NUMBER}\s*%)",
        re.IGNORECASE,
    ),
    "max_drawdown": re.compile(
        rf"(?:{_NUMBER}\s*%\s*(?:max(?:imum)? )?drawdown|\b(?:max(?:imum)? )?drawdown\s*"
        rf"(?:of|at|=|:)?\s*{_NUMBER}\s*%)",
        re.IGNORECASE,
    ),
}
_MAX_POSITIONS = re.compile(
    r"\b(?:max(?:imum)?|at most|up to)\s*(\d+)\s*(?:open\s+)?(?:positions|trades)\b",
    re.IGNORECASE,
)
_COUNT = re.compile(r"\b(\d+)\s+(candles|bars|closes)\b", re.IGNORECASE)
_PAIR = re.compile(r"\b([A-Z0-9]{2,10})/([A-Z0-9]{2,10})\b")
_COINS = frozenset(
    {
        "BTC",
        "ETH",
        "SOL",
        "BNB",
        "XRP",
        "ADA",
        "DOGE",
        "AVAX",
        "DOT",
        "LINK",
        "MATIC",
        "POL",
        "LTC",
        "TRX",
        "ATOM",
        "NEAR",
        "UNI",
        "ARB",
        "OP",
        "APT",
        "SUI",
        "PEPE",
        "SHIB",
        "TON",
        "BCH",
        "ETC",
        "FIL",
        "INJ",
        "SEI",
        "TIA",
        "WIF",
    }
)
_COIN_NAMES = {
    "bitcoin": "BTC",
    "ether": "ETH",
    "ethereum": "ETH",
    "solana": "SOL",
    "ripple": "XRP",
    "cardano": "ADA",
    "dogecoin": "DOGE",
    "avalanche": "AVAX",
    "polkadot": "DOT",
    "chainlink": "LINK",
    "litecoin": "LTC",
}
DEFAULT_QUOTE = "USDT"


@dataclass(frozen=True, slots=True)
class SentenceFacts:
    """What a description states. `periods` maps an indicator name to the numbers written
    with it (`{"ema": (9, 21)}`); thresholds are the first number after "under" / "above";
    `counts` the numbers written before candles, bars or closes (`{"candles": 5}`)."""

    interval: str | None = None
    periods: dict[str, tuple[float, ...]] = field(default_factory=dict)
    below: float | None = None
    above: float | None = None
    multiple: float | None = None
    stddev: float | None = None
    symbols: tuple[str, ...] = ()
    risk: dict[str, Decimal] = field(default_factory=dict)
    max_positions: int | None = None
    counts: dict[str, float] = field(default_factory=dict)
    words: frozenset[str] = field(default_factory=frozenset)


def _interval(text: str) -> str | None:
    for found in _INTERVAL.finditer(text):
        candidate = f"{int(found.group(1))}{_UNITS[found.group(2).lower()]}"
        if candidate in INTERVALS:
            return candidate
    for word, interval in _INTERVAL_WORDS.items():
        if re.search(rf"\b{word}\b", text, re.IGNORECASE):
            return interval
    return None


def _numbers(text: str) -> tuple[float, ...]:
    return tuple(float(n) for n in re.findall(r"\d+(?:\.\d+)?", text))


def _periods(text: str) -> dict[str, tuple[float, ...]]:
    found: dict[str, tuple[float, ...]] = {}
    for pattern, name_group, numbers_group in (
        (_CALL, 1, 2),
        (_NAME_THEN_NUMBERS, 1, 2),
        (_NUMBERS_THEN_NAME, 2, 1),
    ):
        for match in pattern.finditer(text):
            name = match.group(name_group).lower()
            found.setdefault(name, _numbers(match.group(numbers_group)))
    return found


def _first(pattern: re.Pattern[str], text: str) -> float | None:
    found = pattern.search(text)
    return float(found.group(1)) if found else None


def _symbols(text: str) -> tuple[str, ...]:
    symbols = [f"{base}/{quote}" for base, quote in _PAIR.findall(text)]
    paired = {symbol.split("/")[0] for symbol in symbols}
    for word in re.findall(r"[A-Za-z0-9]+", text):
        base = _COIN_NAMES.get(word.lower()) or (word if word in _COINS else None)
        if base and base not in paired:
            symbols.append(f"{base}/{DEFAULT_QUOTE}")
            paired.add(base)
    return tuple(dict.fromkeys(symbols))


def _risk(text: str) -> dict[str, Decimal]:
    risk = {}
    for name, pattern in _PERCENT_OF.items():
        found = pattern.search(text)
        if found:
            risk[name] = Decimal(next(group for group in found.groups() if group is not None))
    return risk


def read_sentence(text: str) -> SentenceFacts:
    positions = _MAX_POSITIONS.search(text)
    return SentenceFacts(
        interval=_interval(text),
        periods=_periods(text),
        below=_first(_BELOW, text),
        above=_first(_ABOVE, text),
        multiple=_first(_MULTIPLE, text),
        stddev=_first(_STDDEV, text),
        symbols=_symbols(text),
        risk=_risk(text),
        max_positions=int(positions.group(1)) if positions else None,
        counts={unit.lower(): float(n) for n, unit in reversed(_COUNT.findall(text))},
        words=frozenset(re.findall(r"[a-z]+", text.lower())),
    )
