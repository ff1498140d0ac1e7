"""Errors the service layer raises, and the RFC 9457 problem document every error becomes
(presto.api.errors in Flask, presto.serving.handler before Flask runs)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import orjson

PROBLEM_JSON = "application/problem+json"


def problem_document(status: int, detail: str | None, instance: str, **extra: Any) -> bytes:
    """The encoded problem; `type` is about:blank, so `title` is the status phrase."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = instance
    body.update(extra)
    try:
        # Field errors of list items are keyed by index, an int.
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        # A field name the client sent may hold a lone surrogate, which UTF-8 cannot carry.
        return orjson.dumps(_without_surrogates(body), option=orjson.OPT_NON_STR_KEYS)


def _without_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by `?`."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_without_surrogates(key): _without_surrogates(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_without_surrogates(item) for item in value]
    return value


class PrestoError(Exception):
    """An error with an HTTP status and a human-readable detail."""

    status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """HTTP headers the error response must carry."""
        return {}


class NotFoundError(PrestoError):
    """The resource named in the request does not exist."""

    status = 404


class UnauthorizedError(PrestoError):
    """No API key, or one that is unknown or revoked."""

    status = 401

    def __init__(self, detail: str, *, invalid_token: bool = False) -> None:
        super().__init__(detail)
        self.invalid_token = invalid_token

    def headers(self) -> dict[str, str]:
        """The challenge of RFC 6750: a bearer key, and whether the one sent was bad."""
        challenge = 'Bearer realm="presto"'
        if self.invalid_token:
            challenge += ', error="invalid_token"'
        return {"WWW-Authenticate": challenge}


class ForbiddenError(PrestoError):
    """A valid API key whose scope does not cover the resource."""

    status = 403


class ConflictError(PrestoError):
    """The change would break a rule of the menu as it now stands (a cycle, a limit)."""

    status = 409


class PreconditionFailedError(PrestoError):
    """`If-Match` names a version other than the current one."""

    status = 412


class ServiceUnavailableError(PrestoError):
    """presto cannot serve now: its database does not answer, or its schema is behind."""

    status = 503


class RetryLaterError(ServiceUnavailableError):
    """A request that lost a race it may win when sent again after `Retry-After`."""

    retry_after_seconds = 1

    def headers(self) -> dict[str, str]:
        """RFC 9110 `Retry-After`: when the request is worth sending again."""
        return {"Retry-After": str(self.retry_after_seconds)}


class DatabaseUnavailableError(RetryLaterError):
    """The database cannot be reached now; the client may try again after `Retry-After`."""


class MenuTooLargeError(PrestoError):
    """The write would let a nested menu hold more item objects than presto renders
    (`MAX_MENU_OBJECTS`): the request asks for what the service will not hold."""

    status = 422


class TooLargeToRenderError(PrestoError):
    """A stored menu nests more item objects than presto renders: its links were written
    around the checks of the API (plain SQL), so the fault is the server's data."""

    status = 500


class UnprocessableError(PrestoError):
    """A request well formed but not applicable to the data as it stands (an entry of a batch
    naming no item); `errors` says where, as a schema's field errors do."""

    status = 422
