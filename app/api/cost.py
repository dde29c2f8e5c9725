"""Query cost: how much an operation would fetch, estimated from its document before it runs.

The depth and alias limits bound the shape of a document, not what it fetches: nested lists
multiply. `signals(first: 200) { nodes { trader { signals(first: 200) { nodes { trader {
signals(first: 200) ... } } } } } }` stays within 12 levels and asks for 8 million signals.
Strawberry (0.341) ships no cost extension, so this is one: a validation rule, made for each
operation with its variables, that refuses the document when its estimate is over the limit.
A refused operation is a request error (no resolver runs; 400 under the GraphQL-over-HTTP
media type).

The estimate counts the fields the operation can resolve. A field that takes a page size
(`first`, or `limit` for candles) makes every list field directly inside it (a connection's
`edges` and `nodes`, the candles of `klines`) repeat its selection that many times: the
argument's value, from the document or the variables, else its default. So sizes multiply
along the path, and each field costs the number of times it can be resolved. Lists without a
page size (the indicator outputs of a series, the catalog) are bounded by the server and count
once. A fragment costs the same wherever it is spread, so its cost is computed once per page
size: a document that spreads fragments exponentially is estimated in linear time (and
refused).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNamedType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
    get_nullable_type,
    is_input_type,
    type_from_ast,
    value_from_ast,
)
from graphql.language import VisitorAction
from graphql.pyutils import Undefined
from graphql.type import GraphQLInterfaceType, GraphQLObjectType
from strawberry.extensions import SchemaExtension

PAGE_SIZE_ARGUMENTS = ("first", "limit")
ERROR_CODE = "QUERY_TOO_COSTLY"


class QueryCost:
    """The estimated cost of one operation of a validated document."""

    def __init__(self, context: ValidationContext, variables: Mapping[str, Any]) -> None:
        self.context = context
        self.variables = dict(variables)
        self._fragments: dict[tuple[str, int | None], int] = {}
        self._expanding: set[str] = set()

    def of_operation(self, operation: OperationDefinitionNode) -> int:
        schema = self.context.schema
        for definition in operation.variable_definitions or ():
            name, default = definition.variable.name.value, definition.default_value
            variable_type = type_from_ast(schema, definition.type)
            if name not in self.variables and default and is_input_type(variable_type):
                self.variables[name] = value_from_ast(default, variable_type)
        root = schema.get_root_type(operation.operation)
        return 0 if root is None else self._selections(operation.selection_set, root, None)

    def _selections(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, page: int | None
    ) -> int:
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.context.schema.get_type(condition.name.value) if condition else parent
                if inner is not None:
                    total += self._selections(selection.selection_set, inner, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._fragment(selection.name.value, page)
        return total

    def _field(self, node: FieldNode, parent: GraphQLNamedType, page: int | None) -> int:
        definition = _field_definition(parent, node.name.value)
        if definition is None:  # __typename, introspection, or unknown (another rule says so)
            return 1
        repeat = page if page is not None and _is_list(definition) else 1
        if node.selection_set is None:
            return repeat
        inner = self._selections(
            node.selection_set, get_named_type(definition.type), self._page_size(node, definition)
        )
        return repeat * (1 + inner)

    def _fragment(self, name: str, page: int | None) -> int:
        key = (name, page)
        if key in self._fragments:
            return self._fragments[key]
        fragment = self.context.get_fragment(name)
        if fragment is None or name in self._expanding:  # unknown or cyclic: other rules say so
            return 0
        condition = self.context.schema.get_type(fragment.type_condition.name.value)
        if condition is None:
            return 0
        self._expanding.add(name)
        try:
            cost = self._selections(fragment.selection_set, condition, page)
        finally:
            self._expanding.discard(name)
        self._fragments[key] = cost
        return cost

    def _page_size(self, node: FieldNode, definition: GraphQLField) -> int | None:
        for name in PAGE_SIZE_ARGUMENTS:
            argument = definition.args.get(name)
            if argument is None:
                continue
            given = next((arg for arg in node.arguments or () if arg.name.value == name), None)
            value = Undefined
            if given is not None:
                value = value_from_ast(given.value, argument.type, self.variables)
            if not _is_int(value):
                value = argument.default_value
            return max(value, 0) if _is_int(value) else None
        return None


def _field_definition(parent: GraphQLNamedType, name: str) -> GraphQLField | None:
    if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return parent.fields.get(name)
    return None


def _is_list(definition: GraphQLField) -> bool:
    return isinstance(get_nullable_type(definition.type), GraphQLList)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def cost_rule(
    max_cost: int, variables: Mapping[str, Any], operation_name: str | None
) -> type[ValidationRule]:
    """A validation rule that refuses the operation to be run if it costs over `max_cost`."""

    class QueryCostRule(ValidationRule):
        def enter_operation_definition(
            self, node: OperationDefinitionNode, *_args: object
        ) -> VisitorAction:
            named = node.name.value if node.name else None
            if operation_name is None or named == operation_name:
                cost = QueryCost(self.context, variables).of_operation(node)
                if cost > max_cost:
                    self.report_error(
                        GraphQLError(
                            f"query cost {cost:,} is over the limit of {max_cost:,}: nested "
                            "lists multiply, so ask for fewer items (first, limit) or nest less",
                            node,
                            extensions={"code": ERROR_CODE, "cost": cost, "maxCost": max_cost},
                        )
                    )
            return self.SKIP

    return QueryCostRule


class QueryCostLimiter(SchemaExtension):
    """Adds the cost rule, made with the operation's variables, to the validation rules."""

    def __init__(self, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        rule = cost_rule(self.max_cost, context.variables or {}, context.operation_name)
        context.validation_rules = (*context.validation_rules, rule)
        yield
