"""Strawberry's two websocket protocol handlers, each with an outbox for shared results.

The protocols are Strawberry's, unchanged: connection init and authentication, subscribe
and complete (start and stop in graphql-ws), pings and keep-alives, errors. Each handler
adds what `app.api.broadcast` needs: one `Outbox` per connection, and around every
operation the `SubscriptionRequest` that tells the resolver where its results go and how
its protocol frames them.
"""

from __future__ import annotations

import json
from typing import Any

from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler

from app.api.broadcast import CURRENT_REQUEST, SubscriptionRequest
from app.api.context import Context
from app.api.outbox import Outbox


def _outbox(handler: Any) -> Outbox:
    """The outbox of either protocol's handler, on the connection it handles for our view
    (`app.api.view.GraphQLView`, which holds the runtime)."""
    websocket: ASGIWebSocketAdapter = handler.websocket
    runtime = handler.view.runtime
    return Outbox(
        websocket.ws.send,
        websocket.close,
        runtime.bus.broadcaster,
        capacity=runtime.settings.subscription_send_queue,
        max_dropped=runtime.settings.subscription_max_dropped,
    )


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws: results are `next` messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox = _outbox(self)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        prefix = f'{{"id":{json.dumps(operation.id)},"type":"next","payload":'
        CURRENT_REQUEST.set(
            SubscriptionRequest(
                operation.query,
                operation.variables,
                operation.operation_name,
                prefix,
                self.outbox,
            )
        )
        await super().run_operation(operation)

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.outbox.aclose()


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    """graphql-ws (subscriptions-transport-ws): results are `data` messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outbox = _outbox(self)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        prefix = f'{{"type":"data","id":{json.dumps(operation_id)},"payload":'
        CURRENT_REQUEST.set(
            SubscriptionRequest(query, variables, operation_name, prefix, self.outbox)
        )
        await super().handle_async_results(operation_id, query, operation_name, variables)

    async def cleanup(self) -> None:
        await super().cleanup()
        await self.outbox.aclose()
