"""Subscriptions that share their work: a document's result is computed once per event.

Executing a subscription document for every subscriber and every event is what limits
broadcast: a hundred clients of one account, or a thousand charts of one market, would each
run the same GraphQL execution and JSON encoding of the same event. Instead, every
websocket subscription joins the broadcaster's fanout of its document (the query text, the
operation name and the variables): for each event one of them hears, the document is
executed once and encoded once, and the encoded result goes into the outbox of each member
that hears it, framed as its protocol's result message (`next` for graphql-transport-ws,
`data` for graphql-ws), with its own operation id.

Strawberry keeps the protocols: it accepts the connection, authenticates it, validates the
document and runs the subscription resolver, which checks the caller's rights exactly as
before and then joins (`subscribe`). Only the result messages of shared events bypass its
per-subscriber execution. Who hears what is the `Audience` the resolver gives, checked per
member: sharing a document never shares events between users (members are kept by owner,
see `app.core.events.Fanout`).

Subscription event types are built from the event alone (no context, no database), and
their fields resolve synchronously: that is what makes one execution right for every
subscriber. A subscription that is not a websocket operation (the schema used directly,
or a transport without one) listens on its own queue and is executed as Strawberry does.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import aclosing
from contextvars import ContextVar
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any, Never, Protocol, TypeVar

from graphql import ExecutionResult, GraphQLSchema, parse

from app.api.errors import ApiErrors
from app.api.executor import SubscriptionExecutor
from app.api.outbox import Outbox
from app.api.types import Info
from app.core.events import Audience, Event

log = logging.getLogger(__name__)

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")

# Failures to convert an event's payload: the event is skipped, the subscription goes on.
CONVERSION_ERRORS = (ValueError, TypeError, ArithmeticError)


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """One websocket operation as its protocol handler received it, and where its results
    go: `prefix` opens the protocol's result message, up to the payload."""

    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    prefix: str
    outbox: Outbox

    @property
    def key(self) -> tuple[str, str | None, str]:
        variables = json.dumps(self.variables or {}, sort_keys=True, separators=(",", ":"))
        return (self.query, self.operation_name, variables)

    def send(self, payload: str) -> None:
        self.outbox.put(f"{self.prefix}{payload}}}")


# Set by the websocket protocol handlers (`app.api.ws_protocols`) around each operation.
CURRENT_REQUEST: ContextVar[SubscriptionRequest | None] = ContextVar(
    "subscription_request", default=None
)


# What a subscription makes of an event: its result type, or None when the event is not for
# it (a market event of another symbol, a repeat); a payload that does not convert raises.
Convert = Callable[[Event], T | None]


class SharedDocument:
    """A subscription document with its variables, executed once per event it is given;
    `payload` is the JSON of the result message's payload, or None to skip the event."""

    def __init__(
        self, schema: GraphQLSchema, request: SubscriptionRequest, convert: Convert[Any]
    ) -> None:
        built = SubscriptionExecutor.build(
            schema,
            parse(request.query),
            raw_variable_values=request.variables,
            operation_name=request.operation_name,
        )
        if isinstance(built, list):  # Strawberry validated this very document already
            raise ValueError(f"subscription document does not execute: {built}")
        self._executor = built
        self._convert = convert
        self._errors = ApiErrors()

    def payload(self, event: Event) -> str | None:
        value = _converted(self._convert, event)
        if value is None:
            return None
        result = self._executor.build_per_event_executor(value).execute_operation(False)
        if not isinstance(result, ExecutionResult):
            if isawaitable(result):
                result.close()  # type: ignore[attr-defined]
            log.error("subscription result of event %s is not immediate: skipped", event.id)
            return None
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            errors = self._errors._process_errors(result.errors)
            payload["errors"] = [error.formatted for error in errors]
        return json.dumps(payload, separators=(",", ":"))


def _converted(convert: Convert[T], event: Event) -> T | None:
    """`convert(event)`; an event whose payload does not convert (say, a value a newer
    process introduced) is logged and skipped, like a lost event."""
    try:
        return convert(event)
    except CONVERSION_ERRORS as exc:
        log.warning("skipped event %s (%s): %r", event.id, event.type, exc)
        return None


class Results(Protocol[T_co]):
    """A subscription's result stream, closed when the subscription ends."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def __anext__(self) -> T_co: ...

    async def aclose(self) -> None: ...


class _Joined:
    """The result stream of a websocket subscription that joined its document's fanout:
    it yields nothing itself (results go straight to the outbox) and lasts until closed."""

    def __init__(self, leave: Callable[[], None]) -> None:
        self._leave = leave
        self._closed = asyncio.Event()

    def __aiter__(self) -> _Joined:
        return self

    async def __anext__(self) -> Never:
        try:
            await self._closed.wait()
        finally:
            self._leave()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._leave()
        self._closed.set()


async def _queued(
    info: Info, types: Iterable[str], audience: Audience, convert: Convert[T]
) -> AsyncGenerator[T, None]:
    listening = info.context.runtime.bus.listen(audience.owner_id, types, audience.trader_id)
    async with aclosing(listening) as events:
        async for event in events:
            converted = _converted(convert, event)
            if converted is not None:
                yield converted


def subscribe(
    info: Info, types: Iterable[str], audience: Audience, convert: Convert[T]
) -> Results[T]:
    """The results of a subscription to the events of `types` that `audience` hears, each
    converted to the subscription's type by `convert`."""
    request = CURRENT_REQUEST.get()
    if request is None:
        return _queued(info, types, audience, convert)
    schema = info._raw_info.schema

    def preparation() -> Callable[[Event], str | None]:
        return SharedDocument(schema, request, convert).payload

    broadcaster = info.context.runtime.bus.broadcaster
    return _Joined(broadcaster.join(request.key, types, preparation, audience, request.send))
