"""Bearer-key authorization of writes: reads are public, every write names a key."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request

from presto.api.session import db_session
from presto.errors import UnauthorizedError
from presto.services import keys
from presto.storage.models import ApiKey

View = TypeVar("View", bound=Callable[..., Any])

# Set on every view that `key_required` guards; a test checks each write route has it.
GUARDED = "_presto_key_required"

NEEDS_KEY = "This request needs an API key: Authorization: Bearer <key>."
NO_SCHEME = "The Authorization header has no scheme: send the API key as Bearer <key>."
NOT_BEARER = "The Authorization header's scheme is not Bearer: send the API key as Bearer <key>."


def missing_key_detail(authorization: str | None) -> str:
    """Why an `Authorization` value holds no bearer key, in words that say what to send:
    a lone word (the key without `Bearer`) and another scheme each get their own."""
    scheme, _, rest = (authorization or "").strip(" \t").partition(" ")
    if not scheme or scheme.lower() == "bearer":
        return NEEDS_KEY
    return NOT_BEARER if rest.strip(" \t") else NO_SCHEME


def current_key() -> ApiKey:
    """The live key of the request's `Authorization: Bearer` header, else 401."""
    authorization = request.headers.get("Authorization")
    token = keys.bearer_token(authorization)
    if token is None:
        raise UnauthorizedError(missing_key_detail(authorization))
    key = keys.authenticate(db_session(), token)
    if key is None:
        raise UnauthorizedError("The API key is unknown or revoked.", invalid_token=True)
    return key


def key_required(*, admin_only: bool = False) -> Callable[[View], View]:
    """Guard a view: its key must be an admin's, or its restaurant's unless `admin_only`.

    The restaurant is the view's `restaurant_id` argument; the check runs before the
    body is parsed, so an unauthorized caller learns nothing about what it sent.
    """

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            key = current_key()
            keys.check_scope(key, kwargs.get("restaurant_id"), admin_only=admin_only)
            g.api_key = key
            return view(*args, **kwargs)

        setattr(guarded, GUARDED, True)
        return cast(View, guarded)

    return decorator
