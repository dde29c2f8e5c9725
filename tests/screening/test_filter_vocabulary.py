"""Every name of the filter language runs inside a real worker process, as documented.

The uses below are checked against the validator's own registries (builtins, helpers,
attributes, indicators): a name added there without a use here fails the first test, and
each use must run without failure and match in a real worker. The documentation must name
exactly the same builtins, methods and helpers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.domain.filter_validation import (
    ALLOWED_ATTRIBUTES,
    CANDLE_FIELDS,
    PLAIN_HELPER_NAMES,
    SAFE_BUILTIN_NAMES,
    TICKER_FIELDS,
    parse_filter,
)
from app.domain.indicators import INDICATORS, IndicatorSpec
from app.engine.feeds.simulated import SimulatedFeed
from app.engine.klines import KlineStore
from app.engine.sandbox import FilterJob, FilterSandbox
from app.engine.sandbox.namespace import PLAIN_HELPERS
from app.engine.screening import ticker_values
from tests.screening.conftest import SYMBOLS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "filters.md").read_text()

# Each use is a filter body, or an expression that must be true (then `return` is added).
BUILTIN_USES = {
    "abs": "abs(-candles.close[-1]) == candles.close[-1]",
    "all": "all(candles.close > 0)",
    "any": "any(candles.volume >= 0)",
    "bool": "bool(candles.close[-1])",
    "dict": "dict(a=1)['a'] == 1",
    "enumerate": "list(enumerate('ab'))[1] == (1, 'b')",
    "float": "float(candles.close[-1]) == candles.close[-1]",
    "int": "int(candles.time[-1]) == candles.time[-1]",
    "len": "len(candles.close) == 300",
    "list": "list(candles.close[-2:])[-1] == candles.close[-1]",
    "max": "max(candles.high) == candles.high.max()",
    "min": "min(candles.low) == candles.low.min()",
    "range": "list(range(2)) == [0, 1]",
    "reversed": "list(reversed(candles.close[-2:]))[0] == candles.close[-1]",
    "round": "round(candles.close[-1], 2) == round(float(candles.close[-1]), 2)",
    "set": "len(set([1, 1, 2])) == 2",
    "sorted": "sorted(candles.close[-3:])[0] == candles.close[-3:].min()",
    "str": "str(candles.close).startswith('[') and str(candles.time > 0).endswith(']')",
    "sum": "sum(candles.volume[-3:]) >= 0",
    "tuple": "tuple([1]) == (1,)",
    "zip": "list(zip([1], [2])) == [(1, 2)]",
}
METHOD_USES = {
    "all": "(candles.close > 0).all()",
    "any": "(candles.close > 0).any()",
    "argmax": "candles.high[candles.high.argmax()] == candles.high.max()",
    "argmin": "candles.low[candles.low.argmin()] == candles.low.min()",
    "copy": "candles.close.copy()[-1] == candles.close[-1]",
    "cumsum": "abs(candles.volume.cumsum()[-1] / candles.volume.sum() - 1) < 1e-9",
    "item": "candles.close[-1:].item() == candles.close[-1]",
    "max": "candles.high.max() >= candles.high[-1] and candles.time.max() == candles.time[-1]",
    "mean": "candles.low.min() <= candles.close.mean() <= candles.high.max()",
    "min": "candles.low.min() <= candles.low[-1] and (candles.close > 0).min()",
    "ndim": "candles.close.ndim == 1",
    "prod": "(candles.close[-3:] / candles.close[-3:]).prod() == 1",
    "shape": "candles.close.shape == (300,)",
    "size": "candles.close.size == 300",
    "std": "candles.close.std() > 0 and rsi(candles)[-20:].std() >= 0",
    "sum": "candles.volume.sum() > 0 and (candles.close > 0).sum() == 300",
    "tolist": "candles.close.tolist()[-1] == candles.close[-1]",
    "var": "abs(candles.close.var() / candles.close.std() ** 2 - 1) < 1e-9",
    "append": "x = []\nx.append(1)\nreturn x == [1]",
    "count": "[1, 1].count(1) == 2 and 'aa'.count('a') == 2",
    "endswith": "symbol.endswith('/USDT')",
    "extend": "x = [1]\nx.extend([2])\nreturn x == [1, 2]",
    "get": "params.get('interval') == '1h' and params.get('other') is None",
    "index": "[3, 4].index(4) == 1",
    "items": "('interval', '1h') in params.items()",
    "keys": "'interval' in params.keys()",
    "lower": "'A'.lower() == 'a'",
    "split": "symbol.split('/')[1] == 'USDT'",
    "startswith": "symbol.startswith(symbol[:3])",
    "strip": "' x '.strip() == 'x'",
    "upper": "'a'.upper() == 'A'",
    "values": "'1h' in params.values()",
}
PLAIN_HELPER_USES = {
    "crossed_above": "crossed_above([1, 3], 2) and crossed_above([0, 2], candles.open[:2] * 0 + 1)",
    "crossed_below": "crossed_below([3, 1], 2) and not crossed_below(candles.close, candles.close)",
    "isnan": "isnan(nan) and not isnan(candles.close[-1])",
    "isfinite": "isfinite(candles.close[-1]) and not isfinite(nan)",
    "sqrt": "sqrt(4) == 2",
    "log": "abs(log(exp(1)) - 1) < 1e-12",
    "exp": "exp(0) == 1",
    "floor": "floor(1.5) == 1",
    "ceil": "ceil(1.5) == 2",
    "nan": "nan != nan",
}
# numpy's lazily imported paths beyond one call per method: printing, scalars, other dtypes
NUMPY_PATHS = {
    "str of a list of arrays": "len(str([candles.close, candles.time])) > 0",
    "f-string of an array": "len(f'{candles.close}') > 0 and f'{candles.close[-1]:.2f}' != ''",
    "methods of a scalar": "candles.close[-1].max() == candles.close[-1].mean()",
    "methods of an empty slice": "isnan(candles.close[:0].mean()) and candles.close[:0].sum() == 0",
    "methods on an int series": "candles.time.mean() > 0 and candles.time.std() > 0",
    "keyword arguments of a method": "candles.close.std(ddof=1) > candles.close.std(ddof=0)",
}


def _indicator_use(spec: IndicatorSpec) -> str:
    """Call by position and by name (the same memoised result), on two timeframes, and read
    every output."""
    positional = "".join(f", {param.default!r}" for param in spec.params)
    named = "".join(f", {param.name}={param.default!r}" for param in spec.params)
    checks = ["a is b"]
    for output in spec.outputs:
        read = "" if spec.outputs == ("value",) else f".{output}"
        size = "len(candles.close)" if spec.per_candle else "1000"
        checks.append(f"0 < len(a{read}) <= {size} and len(c{read}) > 0")
    return (
        f"a = {spec.name}(candles{positional})\n"
        f"b = {spec.name}(candles{named})\n"
        f"c = {spec.name}(timeframes['4h'])\n"
        f"return {' and '.join(checks)}"
    )


def _body(use: str) -> str:
    return use if "\n" in use else f"return {use}"


USES = {
    **{f"builtin {name}": _body(use) for name, use in BUILTIN_USES.items()},
    **{f"attribute {name}": _body(use) for name, use in METHOD_USES.items()},
    **{f"helper {name}": _body(use) for name, use in PLAIN_HELPER_USES.items()},
    **{f"numpy {name}": _body(use) for name, use in NUMPY_PATHS.items()},
    **{f"indicator {name}": _indicator_use(spec) for name, spec in INDICATORS.items()},
    **{
        f"attribute {name}": f"return len(candles.{name}) == 300 and len(timeframes['4h'].{name})"
        for name in CANDLE_FIELDS
    },
    **{
        f"attribute {name}": f"return isnan(ticker.{name}) or ticker.{name} == ticker.{name}"
        for name in TICKER_FIELDS
    },
}


def test_every_name_the_validator_accepts_has_a_use_here() -> None:
    outputs = {output for spec in INDICATORS.values() for output in spec.outputs}
    assert set(BUILTIN_USES) == SAFE_BUILTIN_NAMES
    assert set(PLAIN_HELPER_USES) == PLAIN_HELPER_NAMES == set(PLAIN_HELPERS)
    fields = {*CANDLE_FIELDS, *TICKER_FIELDS}
    assert set(METHOD_USES) | outputs | fields == ALLOWED_ATTRIBUTES
    assert set(METHOD_USES) <= ALLOWED_ATTRIBUTES - fields


async def test_every_builtin_helper_method_and_indicator_runs_in_a_worker(
    sandbox: FilterSandbox, store: KlineStore, feed: SimulatedFeed
) -> None:
    jobs = []
    for name, code in USES.items():
        program = parse_filter(code, "1h")
        jobs.append(
            FilterJob(name, code, "1h", tuple(SYMBOLS), program.timeframes, {"interval": "1h"})
        )
    tickers = {s: v for s, t in feed.tickers().items() if (v := ticker_values(t)) is not None}

    outcomes = await sandbox.run(jobs, store, tickers)

    for name, code in USES.items():
        outcome = outcomes[name]
        assert outcome.failure is None, (name, code, outcome.failure)
        assert len(outcome.matches) == len(SYMBOLS), (name, code)
    for name in INDICATORS:
        labels = outcomes[f"indicator {name}"].matches[0].indicators
        assert {label.split("(")[0] for label in labels} == {f"1h.{name}", f"4h.{name}"}


def _code_spans(text: str) -> list[str]:
    return re.findall(r"`([^`]+)`", text)


def _section(start: str, end: str) -> str:
    return DOC[DOC.index(start) : DOC.index(end, DOC.index(start))]


def test_the_documentation_names_exactly_the_builtins_methods_and_helpers() -> None:
    builtins_section = _section("### Builtins", "## What a filter cannot do")
    spans = _code_spans(builtins_section)
    assert set(spans[0].split()) == SAFE_BUILTIN_NAMES
    assert {word for span in spans[1:] for word in span.split()} == set(METHOD_USES)

    helpers = _section("Other helpers:", "### Builtins")
    assert {span.split("(")[0] for span in _code_spans(helpers)} == PLAIN_HELPER_NAMES

    table = _section("| helper | parameters", "Parameters are checked")
    rows = [line.split("|")[1] for line in table.splitlines()[2:] if line.startswith("|")]
    assert {name for row in rows for name in _code_spans(row)} == set(INDICATORS)


@pytest.mark.parametrize(
    "code",
    [
        "x = [y := c for c in candles.close[-3:]]\nreturn y == candles.close[-1]",
        "return [[a + b for b in range(a)] for a in range(3)][2] == [2, 3]",
        "x = [1]\nreturn [x for x in x] == [1]",
        "return {k: v for k, v in params.items()}['interval'] == '1h'",
    ],
)
async def test_names_of_comprehensions_resolve_where_python_resolves_them(
    code: str, sandbox: FilterSandbox, store: KlineStore
) -> None:
    program = parse_filter(code, "1h")
    job = FilterJob("c", code, "1h", ("BTC/USDT",), program.timeframes, {"interval": "1h"})

    outcome = (await sandbox.run([job], store, {}))["c"]

    assert outcome.failure is None and len(outcome.matches) == 1, outcome
