"""How failures reach a GraphQL client: known errors get a code, the rest are masked.

A masked error is logged with its traceback on the server and answered with a generic
message, so that no internal detail (a query, a path, a key) ever reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from app.services.errors import BusyError, InvalidInputError, NotFoundError
from app.services.generation import GenerationFailedError
from app.services.market import EngineUnavailableError

logger = logging.getLogger(__name__)


class AuthenticationRequiredError(PermissionError):
    def __init__(self) -> None:
        super().__init__("authentication required: send Authorization: Bearer <token>")


def _extensions(original: Exception) -> dict[str, Any] | None:
    if isinstance(original, InvalidInputError):
        return {
            "code": "BAD_USER_INPUT",
            "fields": [{"field": e.field, "message": e.message} for e in original.errors],
        }
    if isinstance(original, NotFoundError):
        return {"code": "NOT_FOUND"}
    if isinstance(original, AuthenticationRequiredError):
        return {"code": "UNAUTHENTICATED"}
    if isinstance(original, EngineUnavailableError):
        return {"code": "ENGINE_UNAVAILABLE"}
    if isinstance(original, BusyError):
        return {"code": "TOO_MANY_REQUESTS"}
    if isinstance(original, GenerationFailedError):
        return {"code": "GENERATION_FAILED", "problems": original.problems}
    return None


class ApiErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(error_message="Internal server error")

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        return [self._translate(error) for error in errors]

    def _translate(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        if original is None or isinstance(original, GraphQLError):
            return error
        extensions = _extensions(original)
        if extensions is None:
            logger.error("unexpected error in %s", error.path, exc_info=original)
            return self.anonymise_error(error)
        return GraphQLError(
            message=str(original),
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )
