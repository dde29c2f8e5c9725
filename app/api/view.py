"""The GraphQL endpoint: authentication and the GraphQL-over-HTTP media types and statuses.

Strawberry answers everything as `application/json` with status 200. The GraphQL over HTTP
specification adds `application/graphql-response+json`, under which a request error (the
document does not parse or validate, so execution never starts) is answered with 400 and
no `data` entry, while a response that executed, even with field errors, stays 200. Clients
that accept only `application/json` keep the legacy behaviour. A client that accepts
neither gets 406, a mutation over GET gets 405, and a bad bearer token gets 401.

A request whose JSON this API will not take is a 400 naming the problem, never a crash
later on: a body that is not a JSON object (a number, a string, null), JSON that is not
Unicode (a lone surrogate, invalid UTF-8), NaN or Infinity (not JSON, and no database stores
them), or nesting deeper than `MAX_REQUEST_JSON_DEPTH`. Websocket messages are decoded by the
same `decode_json`; one it refuses is an invalid message to the subscription protocols.
"""

from __future__ import annotations

import json
from typing import Any

from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types import ExecutionResult

from app.api.context import Context
from app.api.ws_protocols import LegacyWSHandler, TransportWSHandler
from app.db.models import User
from app.domain.bounds import json_problem
from app.services.runtime import Runtime
from app.services.users import authenticate, bearer_token

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"
MAX_REQUEST_JSON_DEPTH = 64
JSON_WHITESPACE = b" \t\r\n"


class UnacceptableJSON(json.JSONDecodeError):
    """JSON that parses, or nearly, but that this API does not take; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)
        self.args = (message,)


def _no_constants(name: str) -> object:
    raise UnacceptableJSON(f"{name} is not a JSON number")


def negotiate(accept: str | None) -> str | None:
    """The response media type for an Accept header, or None when nothing acceptable.

    Past the specification's watershed (2025-01-01) a missing Accept header or a wildcard
    means `application/graphql-response+json`; a client listing only `application/json`
    gets the legacy media type and its always-200 statuses.
    """
    if not accept:
        return GRAPHQL_RESPONSE_JSON
    ranked = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, position, media.lower()))
    for _, _, media in sorted(ranked):
        if media in (GRAPHQL_RESPONSE_JSON, JSON):
            return media
        if media in ("*/*", "application/*"):
            return GRAPHQL_RESPONSE_JSON
    return None


def _is_request_error(result: ExecutionResult) -> bool:
    """Parse and validation errors carry no path: execution never started."""
    return (
        result.data is None
        and bool(result.errors)
        and all(error.path is None for error in result.errors or ())
    )


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: BaseSchema, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(schema, **kwargs)
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        media_type = negotiate(request.headers.get("accept"))
        wants_ide = request.method == "GET" and "text/html" in request.headers.get("accept", "")
        if media_type is None and not wants_ide:
            response: Response = self._error(406, "Not Acceptable: use " + JSON, JSON)
        else:
            request.state.media_type = media_type or JSON
            try:
                response = await self.run(request)
            except HTTPException as exc:
                response = self._error(exc.status_code, exc.reason, request.state.media_type)
        await response(scope, receive, send)

    @staticmethod
    def _error(status: int, message: str, media_type: str) -> Response:
        headers = {}
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="traders"'
        if status == 405:
            headers["Allow"] = "GET, POST"
        return JSONResponse(
            {"errors": [{"message": message}]}, status, headers, media_type=media_type
        )

    def decode_json(self, data: str | bytes) -> object:
        try:
            value = json.loads(data, parse_constant=_no_constants)
        except RecursionError:
            raise UnacceptableJSON(
                f"must not nest deeper than {MAX_REQUEST_JSON_DEPTH} levels"
            ) from None
        except json.JSONDecodeError:
            raise
        except ValueError as exc:  # invalid UTF-8, an integer of over 4,300 digits
            raise UnacceptableJSON(str(exc)) from None
        problem = json_problem(value, max_depth=MAX_REQUEST_JSON_DEPTH, storable=False)
        if problem is not None:
            raise UnacceptableJSON(problem)
        return value

    def parse_json(self, data: str | bytes) -> Any:
        try:
            return self.decode_json(data)
        except UnacceptableJSON as exc:
            raise HTTPException(400, f"Unacceptable JSON in the request: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise HTTPException(400, "Unable to parse request body as JSON") from exc

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        """A JSON body is a GraphQL request: an object (or a batch, an array, which this
        API does not enable); Strawberry would crash on any other JSON value."""
        if request.method == "POST" and JSON in (request.content_type or ""):
            body = await request.get_body()
            if body.lstrip(JSON_WHITESPACE)[:1] not in (b"{", b"["):
                raise HTTPException(
                    400,
                    'The request body must be a JSON object such as {"query": "{ me { name } }"}',
                )
        return await super().parse_http_body(request)

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        context = Context(request=request, runtime=self.runtime)
        if isinstance(request, Request):
            authorization = request.headers.get("authorization")
            if authorization is not None:
                token = bearer_token(authorization)
                context.user = await authenticate(token) if token else None
                if context.user is None:
                    raise HTTPException(401, "invalid or revoked bearer token")
        return context

    async def on_ws_connect(self, context: Context) -> None:
        params = context.connection_params or {}
        authorization = params.get("Authorization") or params.get("authorization")
        token = bearer_token(authorization) if isinstance(authorization, str) else None
        token = token or params.get("token")
        user: User | None = await authenticate(token) if isinstance(token, str) else None
        if user is None:
            raise ConnectionRejectionError({"message": "invalid or missing token"})
        context.user = user

    async def execute_single(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            return await super().execute_single(*args, **kwargs)
        except HTTPException as exc:
            if isinstance(exc.__cause__, InvalidOperationTypeError):
                raise HTTPException(405, exc.reason) from exc
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        response = await super().process_result(request, result)
        if request.state.media_type == GRAPHQL_RESPONSE_JSON and _is_request_error(result):
            request.state.request_error = True
            response.pop("data", None)
        return response

    async def run(self, request: Request | WebSocket, *args: Any, **kwargs: Any) -> Any:
        response = await super().run(request, *args, **kwargs)
        if isinstance(request, Request) and isinstance(response, Response):
            media_type = request.state.media_type
            if response.media_type == JSON and media_type == GRAPHQL_RESPONSE_JSON:
                response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
                if getattr(request.state, "request_error", False):
                    response.status_code = 400
        return response
