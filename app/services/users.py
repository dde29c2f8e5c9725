"""Users and their API tokens: creation from the CLI, authentication of every request."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.core.tokens import hash_token, new_token
from app.db.models import ApiToken, User

NAME_LENGTH = User._meta.fields_map["name"].max_length  # type: ignore[attr-defined]


class UserExistsError(ValueError):
    pass


async def create_user(name: str) -> tuple[User, str]:
    """Create a user and its first token; the token is returned once and never stored."""
    name = name.strip()
    if not name:
        raise ValueError("name: must not be empty")
    if len(name) > NAME_LENGTH:
        raise ValueError(f"name: at most {NAME_LENGTH} characters")
    try:
        async with in_transaction():
            user = await User.create(name=name)
            token = await issue_token(user)
    except IntegrityError:
        raise UserExistsError(f"user {name!r} already exists") from None
    return user, token


async def issue_token(user: User, name: str = "default") -> str:
    token = new_token()
    await ApiToken.create(user=user, token_hash=hash_token(token), name=name)
    return token


async def authenticate(token: str) -> User | None:
    """The user owning this token, or None for an unknown or revoked token."""
    record = (
        await ApiToken.filter(token_hash=hash_token(token), revoked=False)
        .select_related("user")
        .first()
    )
    return record.user if record else None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, or None when absent."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
