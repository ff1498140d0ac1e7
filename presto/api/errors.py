"""Every error as an RFC 9457 problem: `application/problem+json`, never HTML.

`register` runs after flask-smorest has installed its own `HTTPException` handler,
and replaces it: webargs' parse errors (malformed JSON, invalid fields) reach presto's
handler as `HTTPException` with the messages in `exc.data`.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from marshmallow import ValidationError
from marshmallow.exceptions import SCHEMA
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from presto.errors import PROBLEM_JSON, DatabaseUnavailableError, PrestoError, problem_document
from presto.schemas.values import NOT_AN_OBJECT

log = logging.getLogger(__name__)


def problem(status: int, detail: str | None = None, **extra: Any) -> Response:
    """A problem response about the current request."""
    body = problem_document(status, detail, request.path, **extra)
    return Response(body, status=status, mimetype=PROBLEM_JSON)


def register(app: Flask) -> None:
    """Install the handlers on `app`."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(PrestoError, _presto_error)
    app.register_error_handler(IntegrityError, _integrity_error)
    app.register_error_handler(OperationalError, _database_unavailable)
    app.register_error_handler(InterfaceError, _database_unavailable)
    app.register_error_handler(Exception, _unexpected_error)


# webargs names where a message came from; presto's errors name only the field.
_LOCATIONS = {"json", "query", "querystring", "view_args", "path", "headers"}


def _http_error(exc: HTTPException) -> Response:
    data: dict[str, Any] = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if exc.code == 400 and messages is not None:
        response = problem(400, "The body is not valid JSON.")
    elif exc.code == 422 and isinstance(messages, dict):
        response = _invalid(_by_field(messages))
    else:
        response = problem(exc.code or 500, exc.description)
    # Keep headers the status needs, such as Allow on 405.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _validation_error(exc: ValidationError) -> Response:
    return _invalid(exc.normalized_messages())


def _invalid(errors: dict[str, Any]) -> Response:
    """A 422 naming each field at fault; a body that is no JSON object says so instead."""
    if errors == {SCHEMA: [NOT_AN_OBJECT]}:
        return problem(422, "The body must be a JSON object.")
    fields = {name: _unwrapped(messages) for name, messages in errors.items()}
    return problem(422, "The request is not valid.", errors=fields)


def _unwrapped(errors: Any) -> Any:
    """marshmallow's `{"_schema": [messages]}` for a nested value that is no object, as
    the messages themselves: `{"items": {"0": ["Must be a JSON object."]}}`."""
    if not isinstance(errors, dict):
        return errors
    if list(errors) == [SCHEMA]:
        return errors[SCHEMA]
    return {key: _unwrapped(value) for key, value in errors.items()}


def _by_field(messages: dict[str, Any]) -> dict[str, Any]:
    """webargs' `{location: {field: messages}}` as `{field: messages}`."""
    fields: dict[str, Any] = {}
    for location, errors in messages.items():
        if location in _LOCATIONS and isinstance(errors, dict):
            fields.update(errors)
        else:
            fields[location] = errors
    return fields


def _presto_error(exc: PrestoError) -> Response:
    response = problem(exc.status, exc.detail, **exc.extra)
    response.headers.update(exc.headers())
    return response


def _integrity_error(exc: IntegrityError) -> Response:
    # The service layer checks the rules first; a constraint that still fires means a
    # concurrent change got in between, and the transaction was rolled back.
    log.warning("constraint violated on %s %s: %s", request.method, request.path, exc.orig)
    return problem(409, "The change conflicts with the data as it now stands.")


def _database_unavailable(exc: OperationalError | InterfaceError) -> Response:
    # Lost or refused connections, a statement over `statement_timeout`, a locked SQLite
    # file: the request may well succeed later, so 503 with `Retry-After`, not 500.
    log.warning("database error on %s %s: %s", request.method, request.path, exc.orig)
    return _presto_error(
        DatabaseUnavailableError("The database cannot answer now; try again shortly.")
    )


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "The server failed to answer this request.")
