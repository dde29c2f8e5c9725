"""Static validation of a trader's filter code, before it is saved or run.

A filter is the body of a Python function. It is untrusted, so it is checked against a
whitelist of syntax, names and attributes rather than a blacklist: anything not listed here
is refused, and every refusal names its line, column (both 1-based) and reason. The
sandbox still runs the accepted code with time and memory limits; this check removes the
ways out of the sandbox (imports, dunder attributes, frames, builtins lookups) and leaves
only the ways to waste time, which the sandbox stops.
"""

from __future__ import annotations

import ast
from collections.abc import Collection
from dataclasses import dataclass

from app.domain.indicators import INDICATORS
from app.domain.intervals import INTERVALS

MAX_CODE_LENGTH = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 40
FUNCTION_NAME = "screen"

INPUT_NAMES: tuple[str, ...] = ("timeframes", "candles", "ticker", "params", "symbol")

SAFE_BUILTIN_NAMES: frozenset[str] = frozenset(
    {
        "abs",
        "all",
        "any",
        "bool",
        "dict",
        "enumerate",
        "float",
        "int",
        "len",
        "list",
        "max",
        "min",
        "range",
        "reversed",
        "round",
        "set",
        "sorted",
        "str",
        "sum",
        "tuple",
        "zip",
    }
)

CANDLE_FIELDS: tuple[str, ...] = ("time", "open", "high", "low", "close", "volume")
TICKER_FIELDS: tuple[str, ...] = ("last", "change_pct", "quote_volume")

ALLOWED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        *CANDLE_FIELDS,
        *TICKER_FIELDS,
        *(output for spec in INDICATORS.values() for output in spec.outputs),
        # read-only array methods and properties
        "all",
        "any",
        "argmax",
        "argmin",
        "copy",
        "cumsum",
        "item",
        "max",
        "mean",
        "min",
        "ndim",
        "prod",
        "shape",
        "size",
        "std",
        "sum",
        "tolist",
        "var",
        # list, dict and str methods on the filter's own values
        "append",
        "count",
        "endswith",
        "extend",
        "get",
        "index",
        "items",
        "keys",
        "lower",
        "split",
        "startswith",
        "strip",
        "upper",
        "values",
    }
)

PLAIN_HELPER_NAMES: frozenset[str] = frozenset(
    {
        "crossed_above",
        "crossed_below",
        "isnan",
        "isfinite",
        "sqrt",
        "log",
        "exp",
        "floor",
        "ceil",
        "nan",
    }
)
HELPER_NAMES: frozenset[str] = frozenset(INDICATORS) | PLAIN_HELPER_NAMES

FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "breakpoint",
        "compile",
        "delattr",
        "dir",
        "eval",
        "exec",
        "getattr",
        "globals",
        "hasattr",
        "help",
        "input",
        "locals",
        "memoryview",
        "object",
        "open",
        "print",
        "setattr",
        "super",
        "type",
        "vars",
    }
)

FORBIDDEN_KEYWORDS: frozenset[str] = frozenset({"out", "where"})

_STATEMENT_REASONS: dict[type[ast.AST], str] = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.FunctionDef: "defining functions is not allowed",
    ast.AsyncFunctionDef: "defining functions is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ClassDef: "defining classes is not allowed",
    ast.While: "while loops are not allowed; use for with range()",
    ast.Try: "try/except is not allowed",
    ast.With: "with is not allowed",
    ast.AsyncWith: "with is not allowed",
    ast.AsyncFor: "async for is not allowed",
    ast.Await: "await is not allowed",
    ast.Global: "global is not allowed",
    ast.Nonlocal: "nonlocal is not allowed",
    ast.Delete: "del is not allowed",
    ast.Raise: "raise is not allowed",
    ast.Assert: "assert is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Match: "match is not allowed",
}

_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Module,
    ast.Expr,
    ast.Assign,
    ast.AugAssign,
    ast.Return,
    ast.If,
    ast.For,
    ast.Break,
    ast.Continue,
    ast.Pass,
    ast.BoolOp,
    ast.BinOp,
    ast.UnaryOp,
    ast.Compare,
    ast.Call,
    ast.IfExp,
    ast.Constant,
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.JoinedStr,
    ast.FormattedValue,
    ast.keyword,
    ast.Starred,
    ast.NamedExpr,
    ast.expr_context,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)


@dataclass(frozen=True, slots=True)
class FilterError:
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class FilterProgram:
    """Accepted filter code and what it reads: the timeframes to ship, the helpers it calls."""

    code: str
    timeframes: frozenset[str]
    helpers: frozenset[str]


class FilterValidationError(ValueError):
    def __init__(self, errors: list[FilterError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = errors


def _error(node: ast.AST, message: str) -> FilterError:
    return FilterError(getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1, message)


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _names(node: ast.AST) -> list[ast.Name]:
    return [name for name in ast.walk(node) if isinstance(name, ast.Name)]


def _scopes(tree: ast.AST) -> tuple[set[str], dict[int, set[str]]]:
    """The names the filter binds in its own scope, and for each name read inside a
    comprehension the loop variables visible there. A comprehension's loop variables exist
    only inside it (its first iterable is evaluated outside); `:=` binds in the filter's
    scope even inside a comprehension."""
    loop_targets: set[int] = set()
    visible: dict[int, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, _COMPREHENSIONS):
            continue
        targets = [name for generator in node.generators for name in _names(generator.target)]
        loop_targets.update(id(name) for name in targets)
        outside = {id(name) for name in _names(node.generators[0].iter)}
        for name in _names(node):
            if id(name) not in outside:
                visible.setdefault(id(name), set()).update(target.id for target in targets)
    bound = {
        node.id
        for node in _names(tree)
        if isinstance(node.ctx, ast.Store) and id(node) not in loop_targets
    }
    return bound, visible


class _Checker:
    def __init__(self, tree: ast.Module, helpers: Collection[str]) -> None:
        self.helpers = frozenset(helpers)
        self.reserved = SAFE_BUILTIN_NAMES | self.helpers | frozenset(INPUT_NAMES)
        self.locals, self.comprehension_names = _scopes(tree)
        self.errors: list[FilterError] = []
        self.timeframes: set[str] = set()
        self.helpers_used: set[str] = set()
        self.timeframe_subscripts: set[int] = set()

    def check(self, tree: ast.Module) -> None:
        pending: list[tuple[ast.AST, int]] = [(tree, 0)]
        count = 0
        while pending:
            node, depth = pending.pop()
            count += 1
            if count > MAX_NODES:
                self.errors.append(_error(node, f"the filter is longer than {MAX_NODES} nodes"))
                return
            if depth > MAX_DEPTH:
                self.errors.append(_error(node, f"expressions nest deeper than {MAX_DEPTH}"))
                return
            if self._check_node(node):
                pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
        if not any(isinstance(node, ast.Return) for node in ast.walk(tree)):
            self.errors.append(FilterError(1, 1, "the filter must return whether it matches"))

    def _check_node(self, node: ast.AST) -> bool:
        """Record what is wrong with `node`; False when its children need no checking."""
        reason = _STATEMENT_REASONS.get(type(node))
        if reason is not None:
            self.errors.append(_error(node, reason))
            return False
        if not isinstance(node, _ALLOWED_NODES):
            self.errors.append(_error(node, f"{type(node).__name__} is not allowed"))
            return False
        if isinstance(node, ast.Name):
            self._check_name(node)
        elif isinstance(node, ast.Attribute):
            self._check_attribute(node)
        elif isinstance(node, ast.Subscript):
            self._check_subscript(node)
        elif isinstance(node, ast.keyword):
            self._check_keyword(node)
        return True

    def _check_name(self, node: ast.Name) -> None:
        name = node.id
        if name.startswith("_"):
            self.errors.append(_error(node, f"names starting with '_' are not allowed: {name}"))
        elif name in FORBIDDEN_NAMES:
            self.errors.append(_error(node, f"'{name}' is not allowed"))
        elif isinstance(node.ctx, ast.Store):
            if name in self.reserved:
                self.errors.append(_error(node, f"cannot assign to the built-in name '{name}'"))
        elif name in self.helpers:
            self.helpers_used.add(name)
        elif name == "timeframes" and id(node) not in self.timeframe_subscripts:
            self.errors.append(
                _error(node, "timeframes must be indexed with a literal interval, e.g. ['1h']")
            )
        elif (
            name not in self.reserved
            and name not in self.locals
            and name not in self.comprehension_names.get(id(node), ())
        ):
            self.errors.append(_error(node, f"unknown name '{name}'"))

    def _check_attribute(self, node: ast.Attribute) -> None:
        if node.attr.startswith("_"):
            self.errors.append(
                _error(node, f"attributes starting with '_' are not allowed: {node.attr}")
            )
        elif node.attr not in ALLOWED_ATTRIBUTES:
            self.errors.append(_error(node, f"attribute '{node.attr}' is not allowed"))
        elif not isinstance(node.ctx, ast.Load):
            self.errors.append(_error(node, "changing attributes is not allowed"))

    def _check_subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.errors.append(_error(node, "assigning to items is not allowed"))
        if isinstance(node.value, ast.Name) and node.value.id == "timeframes":
            self.timeframe_subscripts.add(id(node.value))
            key = node.slice
            if isinstance(key, ast.Constant) and key.value in INTERVALS:
                self.timeframes.add(str(key.value))
            else:
                self.errors.append(
                    _error(node, f"timeframes must be indexed with one of {', '.join(INTERVALS)}")
                )

    def _check_keyword(self, node: ast.keyword) -> None:
        if node.arg is None:
            self.errors.append(_error(node, "**keyword unpacking is not allowed"))
        elif node.arg in FORBIDDEN_KEYWORDS:
            self.errors.append(_error(node, f"the keyword argument '{node.arg}' is not allowed"))


def parse_filter(
    code: str, interval: str | None = None, helpers: Collection[str] = HELPER_NAMES
) -> FilterProgram:
    """Accept `code` or raise `FilterValidationError` listing every problem found.

    `interval` is the trader's own interval, always shipped to the filter as `candles`;
    `helpers` are the names of the functions and constants the filter may use.
    """
    if len(code) > MAX_CODE_LENGTH:
        raise FilterValidationError(
            [FilterError(1, 1, f"the filter is longer than {MAX_CODE_LENGTH} characters")]
        )
    try:
        tree = ast.parse(code, filename="<filter>", mode="exec")
    except SyntaxError as exc:
        raise FilterValidationError(
            [FilterError(exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")]
        ) from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise FilterValidationError([FilterError(1, 1, f"cannot parse: {exc}")]) from None
    checker = _Checker(tree, helpers)
    checker.check(tree)
    if checker.errors:
        raise FilterValidationError(sorted(set(checker.errors), key=lambda e: (e.line, e.column)))
    try:
        compile(_wrapped(tree), "<filter>", "exec")
    except SyntaxError as exc:  # what only the compiler sees: `break` outside a loop, ...
        raise FilterValidationError(
            [FilterError(exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")]
        ) from None
    except (ValueError, MemoryError, RecursionError) as exc:
        raise FilterValidationError([FilterError(1, 1, f"cannot compile: {exc}")]) from None
    timeframes = set(checker.timeframes)
    if interval is not None:
        timeframes.add(interval)
    return FilterProgram(code, frozenset(timeframes), frozenset(checker.helpers_used))


def validate_filter_code(code: str) -> list[FilterError]:
    """The errors in `code`, empty when it is acceptable (for checks before a save)."""
    try:
        parse_filter(code)
    except FilterValidationError as exc:
        return exc.errors
    return []


def filter_module(code: str) -> ast.Module:
    """The filter body wrapped in `def screen(timeframes, candles, ticker, params, symbol)`.

    Line and column numbers stay those of the user's code, so runtime errors point at it.
    """
    return _wrapped(ast.parse(code, filename="<filter>", mode="exec"))


def _wrapped(tree: ast.Module) -> ast.Module:
    arguments = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg=name) for name in INPUT_NAMES],
        kwonlyargs=[],
        kw_defaults=[],
        defaults=[],
    )
    function = ast.FunctionDef(
        name=FUNCTION_NAME,
        args=arguments,
        body=tree.body or [ast.Pass()],
        decorator_list=[],
        returns=None,
        lineno=1,
        col_offset=0,
    )
    return ast.fix_missing_locations(ast.Module(body=[function], type_ignores=[]))
