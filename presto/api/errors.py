"""Every error as an RFC 9457 problem: ``application/problem+json``, never HTML."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
from flask import Flask, Response, request
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from presto.errors import PrestoError

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


def problem(status: int, detail: str | None = None, **extra: Any) -> Response:
    """A problem response; ``type`` is about:blank, so ``title`` is the status phrase."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body.update(extra)
    return Response(orjson.dumps(body), status=status, mimetype=PROBLEM_JSON)


def register(app: Flask) -> None:
    """Install the handlers on ``app``."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ValidationError, _validation_error)
    app.register_error_handler(PrestoError, _presto_error)
    app.register_error_handler(Exception, _unexpected_error)


def _http_error(exc: HTTPException) -> Response:
    response = problem(exc.code or 500, exc.description)
    # Keep headers the status needs, such as Allow on 405.
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _validation_error(exc: ValidationError) -> Response:
    return problem(422, "The request is not valid.", errors=exc.normalized_messages())


def _presto_error(exc: PrestoError) -> Response:
    return problem(exc.status, exc.detail, **exc.extra)


def _unexpected_error(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return problem(500, "The server failed to answer this request.")
