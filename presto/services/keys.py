"""API keys: made and revoked from the command line, checked on every write.

A key is `presto_` and 43 characters of `secrets.token_urlsafe(32)`: 256 random bits.
Only its SHA-256 is stored, and the request's key is looked up by its hash. With that
much entropy a salted, slow hash would add nothing; a key is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from presto.errors import ForbiddenError, NotFoundError
from presto.services.restaurants import get_restaurant
from presto.storage.models import KEY_PREFIX_LENGTH, ApiKey

KEY_START = "presto_"


@dataclass(frozen=True)
class NewKey:
    """A key just made: its row and the secret itself, which is not stored anywhere."""

    row: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    """The hex SHA-256 under which a key is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(session: Session, *, restaurant_id: int | None = None) -> NewKey:
    """Make a key for one restaurant, or an admin key when `restaurant_id` is None."""
    if restaurant_id is not None:
        get_restaurant(session, restaurant_id)
    secret = KEY_START + secrets.token_urlsafe(32)
    row = ApiKey(
        prefix=secret[:KEY_PREFIX_LENGTH],
        key_hash=hash_key(secret),
        admin=restaurant_id is None,
        restaurant_id=restaurant_id,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.commit()
    return NewKey(row, secret)


def revoke_key(session: Session, key_id: int) -> ApiKey:
    """Revoke the key from now on; revoking it again changes nothing."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFoundError(f"Key {key_id} does not exist.")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        session.commit()
    return row


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, revoked ones too, in the order they were made."""
    return list(session.scalars(sa.select(ApiKey).order_by(ApiKey.id)))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, read as Werkzeug reads it
    (the scheme in any case, spaces and tabs around the token ignored); None for any other
    value. The API and the write limit both use it, so that every spelling of one key's
    header is that key."""
    if not authorization:
        return None
    scheme, _, rest = authorization.strip(" \t").partition(" ")
    token = rest.strip(" \t")
    if scheme.lower() != "bearer" or not token or "=" in token.rstrip("="):
        return None
    return token


def authenticate(session: Session, secret: str) -> ApiKey | None:
    """The live key with this secret, or None if it is unknown or revoked."""
    if not secret.startswith(KEY_START):
        return None
    return session.scalars(
        sa.select(ApiKey).where(ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None))
    ).one_or_none()


def check_scope(key: ApiKey, restaurant_id: int | None, *, admin_only: bool = False) -> None:
    """Raise `ForbiddenError` unless the key may write to this restaurant (or route)."""
    if key.admin:
        return
    if admin_only or restaurant_id is None:
        raise ForbiddenError("Only an admin key may do this.")
    if key.restaurant_id != restaurant_id:
        raise ForbiddenError(f"This key may only change restaurant {key.restaurant_id}.")
