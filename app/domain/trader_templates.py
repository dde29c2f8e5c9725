"""Complete traders that need no model, and how one is adapted to a sentence.

Six strategies every trading desk knows, each a whole trader (filter, strategy text, risk
settings, chart indicators, interval, the symbols it suits) whose numbers are parameters
with a range. Offline, `generateTrader` picks the template whose keywords the description
names most and sets the parameters the sentence states ("RSI under 25 on the 4h" gives the
RSI threshold and the interval), listing every change it made, so the user sees what was
read and what was assumed. A number outside a parameter's range is not used (the change
list says so); risk numbers are passed on as written, for the trader rules to accept or
reject, never clamped.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from app.domain.sentence import SentenceFacts
from app.domain.trader_spec import RISK_FIELDS, RiskSettings

MAJORS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT")
NAME_LENGTH = 80
Read = Callable[[SentenceFacts], float | None]


@dataclass(frozen=True, slots=True)
class TemplateParam:
    """A number of a template, its range, and how to read it from a sentence."""

    name: str
    label: str
    default: float
    minimum: float
    maximum: float
    read: Read
    integer: bool = True

    def accepts(self, value: float) -> bool:
        return self.minimum <= value <= self.maximum and (not self.integer or value == int(value))

    def shown(self, value: float) -> str:
        return str(int(value)) if self.integer else f"{value:g}"


@dataclass(frozen=True, slots=True)
class ChartIndicator:
    """An indicator to draw beside the trader's candles, in `klines(indicators:)` terms."""

    name: str
    params: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": [{"name": name, "value": value} for name, value in self.params.items()],
        }


@dataclass(frozen=True, slots=True)
class TraderDraft:
    """A complete trader that is not saved: a template's, a model's, or a user's edit."""

    name: str
    description: str
    interval: str
    symbols: tuple[str, ...]
    filter_code: str
    filter_description: tuple[str, ...]
    strategy_instructions: str
    indicators: tuple[ChartIndicator, ...]
    risk: RiskSettings

    def trader_fields(self) -> dict[str, object]:
        """The draft in the trader's vocabulary, as `TraderManager.create` takes it."""
        return {
            "name": self.name,
            "description": self.description,
            "interval": self.interval,
            "symbols": list(self.symbols),
            "filter_code": self.filter_code,
            "filter_description": list(self.filter_description),
            "filter_indicators": [indicator.as_json() for indicator in self.indicators],
            "strategy_instructions": self.strategy_instructions,
            **{name: getattr(self.risk, name) for name in RISK_FIELDS},
        }


@dataclass(frozen=True, slots=True)
class StrategyTemplate:
    key: str
    name: str
    summary: str
    code: str
    filter_description: tuple[str, ...]
    strategy_instructions: str
    interval: str
    symbols: tuple[str, ...]
    risk: RiskSettings
    params: tuple[TemplateParam, ...]
    indicators: tuple[tuple[str, Mapping[str, str]], ...]
    keywords: Mapping[str, int]

    def defaults(self) -> dict[str, float]:
        return {param.name: param.default for param in self.params}

    def render(self, values: Mapping[str, float] | None = None) -> TraderDraft:
        """The template as a trader, with `values` for its parameters (defaults otherwise)."""
        chosen = {**self.defaults(), **(values or {})}
        shown = {param.name: param.shown(chosen[param.name]) for param in self.params}

        def fill(text: str) -> str:
            return string.Template(text).substitute(shown)

        return TraderDraft(
            name=self.name,
            description=self.summary,
            interval=self.interval,
            symbols=self.symbols,
            filter_code=fill(self.code),
            filter_description=tuple(fill(line) for line in self.filter_description),
            strategy_instructions=fill(self.strategy_instructions),
            indicators=tuple(
                ChartIndicator(name, {key: float(fill(value)) for key, value in params.items()})
                for name, params in self.indicators
            ),
            risk=self.risk,
        )


def _period(name: str, index: int = 0, of: int = 1) -> Read:
    """The `index`-th number written with indicator `name`, when exactly `of` or more were."""

    def read(facts: SentenceFacts) -> float | None:
        numbers = sorted(facts.periods.get(name, ())) if of > 1 else facts.periods.get(name, ())
        return numbers[index] if len(numbers) >= of else None

    return read


def _first_of(facts: SentenceFacts, *units: str) -> float | None:
    """A count the sentence writes before one of `units` ("after 5 candles")."""
    return next((facts.counts[unit] for unit in units if unit in facts.counts), None)


def _risk(stop: str, take: str) -> RiskSettings:
    return RiskSettings(
        stop_loss=Decimal(stop),
        take_profit=Decimal(take),
        max_positions=3,
        position_size_percent=Decimal(10),
        max_drawdown=Decimal(20),
    )


TEMPLATES: dict[str, StrategyTemplate] = {
    template.key: template
    for template in (
        StrategyTemplate(
            key="rsi_mean_reversion",
            name="RSI mean reversion",
            summary="Buys oversold dips: RSI under a threshold, expecting a bounce to the mean.",
            code=(
                "r = rsi(candles, $period)\n"
                "return r[-1] < $threshold, 'long', ($threshold - r[-1]) / $threshold"
            ),
            filter_description=("RSI($period) under $threshold (oversold)",),
            strategy_instructions=(
                "Mean reversion: enter long on oversold readings (RSI($period) under "
                "$threshold) when price is not in free fall; prefer setups near support and "
                "above the 200 EMA; skip when volume dries up. Exit into strength near the "
                "mean."
            ),
            interval="1h",
            symbols=MAJORS,
            risk=_risk("3", "6"),
            params=(
                TemplateParam("period", "RSI period", 14, 2, 100, _period("rsi")),
                TemplateParam(
                    "threshold", "RSI threshold", 30, 5, 50, lambda f: f.below, integer=False
                ),
            ),
            indicators=(("rsi", {"period": "$period"}), ("ema", {"period": "200"})),
            keywords={"rsi": 3, "oversold": 2, "mean": 1, "reversion": 2, "dip": 1, "dips": 1},
        ),
        StrategyTemplate(
            key="ema_crossover_trend",
            name="EMA crossover trend",
            summary="Follows trends: the fast EMA crossing above the slow one.",
            code=(
                "fast = ema(candles, $fast)\n"
                "slow = ema(candles, $slow)\n"
                "return crossed_above(fast, slow) and candles.close[-1] > slow[-1]"
            ),
            filter_description=("EMA($fast) crosses above EMA($slow)", "close above EMA($slow)"),
            strategy_instructions=(
                "Trend following: enter long when EMA($fast) crosses above EMA($slow) with "
                "price above both; confirm with rising volume and an ADX showing a trend; avoid "
                "choppy ranges where the averages keep crossing."
            ),
            interval="4h",
            symbols=MAJORS,
            risk=_risk("4", "12"),
            params=(
                TemplateParam("fast", "fast EMA", 20, 2, 200, _period("ema", 0, of=2)),
                TemplateParam("slow", "slow EMA", 50, 3, 400, _period("ema", 1, of=2)),
            ),
            indicators=(("ema", {"period": "$fast"}), ("ema", {"period": "$slow"})),
            keywords={
                "ema": 3,
                "crossover": 2,
                "cross": 2,
                "golden": 2,
                "trend": 1,
                "moving": 1,
                "average": 1,
            },
        ),
        StrategyTemplate(
            key="bollinger_squeeze_breakout",
            name="Bollinger squeeze breakout",
            summary="Trades volatility expansion: a close above the upper band after a squeeze.",
            code=(
                "b = bbands(candles, $period, $stddev)\n"
                "width = (b.upper - b.lower) / b.middle\n"
                "widths = [width[i] for i in range(-$lookback, -1)]\n"
                "squeezed = widths[-1] <= min(widths) * 1.2\n"
                "return squeezed and candles.close[-1] > b.upper[-1]"
            ),
            filter_description=(
                "Bollinger bands($period, $stddev) at their narrowest of $lookback candles",
                "close breaks above the upper band",
            ),
            strategy_instructions=(
                "Volatility breakout: after the bands squeeze to their narrowest in $lookback "
                "candles, enter long on a close above the upper band with volume above average; "
                "invalid if price falls back inside the bands."
            ),
            interval="1h",
            symbols=MAJORS,
            risk=_risk("3", "9"),
            params=(
                TemplateParam("period", "band period", 20, 5, 200, _period("bbands")),
                TemplateParam(
                    "stddev", "band width", 2.0, 0.5, 5.0, lambda f: f.stddev, integer=False
                ),
                TemplateParam(
                    "lookback",
                    "squeeze lookback",
                    20,
                    5,
                    200,
                    lambda f: _first_of(f, "candles", "bars"),
                ),
            ),
            indicators=(("bbands", {"period": "$period", "stddev": "$stddev"}),),
            keywords={"bollinger": 3, "squeeze": 3, "bands": 2, "breakout": 1, "volatility": 1},
        ),
        StrategyTemplate(
            key="volume_spike_momentum",
            name="Volume spike momentum",
            summary="Rides bursts of interest: a green candle on a multiple of average volume.",
            code=(
                "average = volume_sma(candles, $period)\n"
                "spike = candles.volume[-1] >= $multiple * average[-2]\n"
                "green = candles.close[-1] > candles.open[-1]\n"
                "moved = pct_change(candles, 1)[-1] >= $change\n"
                "return spike and green and moved, 'long', candles.volume[-1] / average[-2]"
            ),
            filter_description=(
                "volume at least $multiple x its $period-candle average",
                "a green candle up at least $change%",
            ),
            strategy_instructions=(
                "Momentum: enter long when a candle closes green on at least $multiple times "
                "its average volume; prefer breakouts from a range; exit quickly if the next "
                "candles give the move back."
            ),
            interval="15m",
            symbols=(),
            risk=_risk("2", "5"),
            params=(
                TemplateParam(
                    "multiple", "volume multiple", 3.0, 1.5, 20, lambda f: f.multiple, integer=False
                ),
                TemplateParam("period", "volume average", 20, 5, 200, _period("volume_sma")),
                TemplateParam(
                    "change", "minimum move %", 1.0, 0.1, 20, lambda f: f.above, integer=False
                ),
            ),
            indicators=(("volume_sma", {"period": "$period"}),),
            keywords={"volume": 3, "spike": 2, "surge": 2, "momentum": 2, "pump": 1},
        ),
        StrategyTemplate(
            key="macd_divergence",
            name="MACD divergence",
            summary="Catches exhausted selling: price makes a lower low, MACD a higher one.",
            code=(
                "m = macd(candles, $fast, $slow, $signal)\n"
                "recent_low = min(candles.low[-$window:])\n"
                "earlier_low = min(candles.low[-2 * $window:-$window])\n"
                "recent_macd = min(m.macd[-$window:])\n"
                "earlier_macd = min(m.macd[-2 * $window:-$window])\n"
                "turning = m.hist[-1] > m.hist[-2]\n"
                "return recent_low < earlier_low and recent_macd > earlier_macd and turning"
            ),
            filter_description=(
                "price makes a lower low over $window candles",
                "MACD($fast, $slow, $signal) makes a higher low (bullish divergence)",
                "the histogram turns up",
            ),
            strategy_instructions=(
                "Bullish divergence: enter long when price makes a lower low but MACD makes a "
                "higher low and the histogram turns up; stronger at support; invalid below the "
                "new low."
            ),
            interval="1h",
            symbols=MAJORS,
            risk=_risk("3", "8"),
            params=(
                TemplateParam("fast", "MACD fast", 12, 2, 100, _period("macd", 0, of=3)),
                TemplateParam("slow", "MACD slow", 26, 3, 200, _period("macd", 1, of=3)),
                TemplateParam("signal", "MACD signal", 9, 1, 100, _period("macd", 2, of=3)),
                TemplateParam(
                    "window",
                    "swing window",
                    10,
                    3,
                    100,
                    lambda f: _first_of(f, "candles", "bars"),
                ),
            ),
            indicators=(("macd", {"fast": "$fast", "slow": "$slow", "signal": "$signal"}),),
            keywords={"macd": 3, "divergence": 3, "histogram": 1},
        ),
        StrategyTemplate(
            key="vwap_reclaim",
            name="VWAP reclaim",
            summary="Buys strength returning: a close back above VWAP after closes below it.",
            code=(
                "v = vwap(candles, $period)\n"
                "below = all(candles.close[i] < v[i] for i in range(-$lookback - 1, -1))\n"
                "return below and candles.close[-1] > v[-1]"
            ),
            filter_description=(
                "$lookback closes below VWAP",
                "then a close back above it",
            ),
            strategy_instructions=(
                "VWAP reclaim: enter long when price closes back above VWAP after $lookback "
                "closes below it, ideally on rising volume; invalid on a close back under VWAP."
            ),
            interval="15m",
            symbols=MAJORS,
            risk=_risk("1.5", "3"),
            params=(
                TemplateParam("period", "VWAP period (0: per day)", 0, 0, 500, _period("vwap")),
                TemplateParam(
                    "lookback",
                    "closes below",
                    3,
                    1,
                    50,
                    lambda f: _first_of(f, "candles", "bars", "closes"),
                ),
            ),
            indicators=(("vwap", {"period": "$period"}),),
            keywords={"vwap": 3, "reclaim": 3, "weighted": 1},
        ),
    )
}
DEFAULT_TEMPLATE = "rsi_mean_reversion"


@dataclass(frozen=True, slots=True)
class Adapted:
    """A template set to a sentence: the draft, which template, and every change made."""

    template: StrategyTemplate
    draft: TraderDraft
    changes: tuple[str, ...]


def choose_template(facts: SentenceFacts) -> tuple[StrategyTemplate, int]:
    """The template whose keywords the sentence names most, with its score (0: none did,
    the default template is taken)."""
    scored = [
        (sum(weight for word, weight in t.keywords.items() if word in facts.words), index, t)
        for index, t in enumerate(TEMPLATES.values())
    ]
    score, _, best = max(scored, key=lambda item: (item[0], -item[1]))
    return (best, score) if score else (TEMPLATES[DEFAULT_TEMPLATE], 0)


def adapt(description: str, facts: SentenceFacts) -> Adapted:
    """The closest template with what the sentence states, and the list of changes."""
    template, score = choose_template(facts)
    changes = [
        f"template: {template.name}"
        + ("" if score else " (the description names no known strategy; the default was used)")
    ]
    values = template.defaults()
    for param in template.params:
        found = param.read(facts)
        if found is None or found == param.default:
            continue
        if param.accepts(found):
            values[param.name] = found
            changes.append(f"{param.label}: {param.shown(param.default)} -> {param.shown(found)}")
        else:
            changes.append(
                f"{param.label}: {found:g} is outside [{param.shown(param.minimum)}, "
                f"{param.shown(param.maximum)}]; kept {param.shown(param.default)}"
            )
    draft = template.render(values)
    if values != template.defaults() or facts.interval:
        draft = replace(draft, name=_name(template, values, facts))
    draft = replace(draft, description=description.strip() or template.summary)
    if facts.interval and facts.interval != draft.interval:
        changes.append(f"interval: {draft.interval} -> {facts.interval}")
        draft = replace(draft, interval=facts.interval)
    if facts.symbols:
        changes.append(f"symbols: {', '.join(facts.symbols)}")
        draft = replace(draft, symbols=facts.symbols)
    stated: dict[str, Any] = {**facts.risk, "max_positions": facts.max_positions}
    risk_changes = {
        name: value
        for name, value in stated.items()
        if value is not None and value != getattr(draft.risk, name)
    }
    for name, value in risk_changes.items():
        changes.append(f"{name}: {getattr(draft.risk, name)} -> {value}")
    if risk_changes:
        draft = replace(draft, risk=replace(draft.risk, **risk_changes))
    return Adapted(template, draft, tuple(changes))


def _name(template: StrategyTemplate, values: Mapping[str, float], facts: SentenceFacts) -> str:
    shown = ", ".join(param.shown(values[param.name]) for param in template.params)
    name = f"{template.name} ({shown})"
    if facts.interval:
        name += f" {facts.interval}"
    return name[:NAME_LENGTH]
