"""Request bodies are bounded before they are read: 413 past `TRADERS_MAX_BODY_BYTES`.

Starlette reads a body whole when asked, and the GraphQL view asks for every POST, so any
client, with or without a token, could make the process buffer any amount (200 MiB was
read). This pure ASGI middleware answers 413 at once to a declared `Content-Length` over
the limit, without reading any of the body, and counts the bytes of a body sent without a
length (chunked): at the chunk that passes the limit it stops reading and answers 413.
Websocket messages are bounded by the server instead (`traders serve` sets uvicorn's
`ws_max_size` from the same setting).
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class _BodyTooLarge(Exception):
    """Raised out of `receive` into the application, caught again by the middleware."""


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and not declared.isdigit():
            await self._refuse(400, "malformed Content-Length header", scope, receive, send)
            return
        if declared is not None and int(declared) > self.max_bytes:
            await self._refuse(413, self._too_large(), scope, receive, send)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _BodyTooLarge:
            if started:  # the application answered before reading all: nothing more to say
                raise
            await self._refuse(413, self._too_large(), scope, receive, send)

    def _too_large(self) -> str:
        return f"request body over the limit of {self.max_bytes:,} bytes"

    @staticmethod
    async def _refuse(
        status: int, message: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        response = JSONResponse({"errors": [{"message": message}]}, status, {"Connection": "close"})
        await response(scope, receive, send)
