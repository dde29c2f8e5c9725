"""API tokens: random bearer secrets of which only a SHA-256 digest is ever stored."""

import hashlib
import secrets

TOKEN_PREFIX = "trd_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
