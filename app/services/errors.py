"""Errors that use cases raise and the API turns into clear GraphQL errors."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.trader_rules import FieldError


class NotFoundError(LookupError):
    """The object does not exist, or belongs to someone else: the caller cannot tell which."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"{kind} not found")
        self.kind = kind


class InvalidInputError(ValueError):
    """One or more input fields are invalid; nothing was written."""

    def __init__(self, errors: Sequence[FieldError]) -> None:
        super().__init__("; ".join(str(error) for error in errors))
        self.errors = list(errors)


class BusyError(RuntimeError):
    """The request cannot be served now (the caller already has one in flight, or the work
    queue is full); nothing was done, and the same request may be sent again later."""
