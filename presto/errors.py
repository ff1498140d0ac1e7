"""Errors the service layer raises; presto.api.errors turns them into problem responses."""

from __future__ import annotations

from typing import Any


class PrestoError(Exception):
    """An error with an HTTP status and a human-readable detail."""

    status = 400
    title = "Bad Request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotFoundError(PrestoError):
    """The resource named in the request does not exist."""

    status = 404
    title = "Not Found"
