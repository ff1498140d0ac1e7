"""The blueprint class of every API resource: request parsing and OpenAPI documentation.

flask-smorest parses requests with webargs and documents each view from the decorators
it carries. `ApiBlueprint` adds what presto needs on top: query strings that reject
unknown parameters, 415 for a body that is not JSON, bearer-key guards on writes, and the
problem responses and conditional-request headers each route can answer with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any, TypeVar

import flask
import flask_smorest
from marshmallow import Schema
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import UnsupportedMediaType

from presto.api import auth, idempotency
from presto.api.json_body import parse_json_body

View = TypeVar("View", bound=Callable[..., Any])

# Name of the bearer-key security scheme in the OpenAPI document.
BEARER_SCHEME = "bearerKey"
# Keys of presto's own entries in a view's flask-smorest doc info.
_CONDITIONAL = "presto_conditional"
_IDEMPOTENT = "presto_idempotent"


class RequestParser(FlaskParser):
    """webargs' Flask parser, strict about query strings and content types."""

    # None: each schema's own `unknown` (RAISE) decides, so a misspelt parameter is a 422.
    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {  # noqa: RUF012 (as in webargs)
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
    }

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req):
            raise UnsupportedMediaType("The body must be JSON, sent as application/json.")
        if not req.get_data(cache=True):
            # webargs would read an empty body as no fields at all; it is not JSON.
            abort(400, messages={"json": ["The body is empty."]})
        return parse_json_body(req.get_data(cache=True))


PARSER = RequestParser()


# The header of a list endpoint's page counts: a JSON object, as flask-smorest sends it.
PAGINATION_HEADER = "X-Pagination"


def pagination_metadata(page: int, page_size: int, total: int) -> str:
    """The `X-Pagination` value: totals, first, last, previous and next page, as JSON.

    presto reads `page` and `page_size` with its own bounded schema (`PageQuerySchema`)
    rather than flask-smorest's, whose `page` has no maximum; the object is the one
    flask-smorest's pagination sends (and documents as `PAGINATION`), key for key.
    """
    metadata: dict[str, int] = {"total": total}
    if total == 0:
        metadata["total_pages"] = 0
        return json.dumps(metadata)
    last = (total - 1) // page_size + 1
    metadata.update(total_pages=last, first_page=1, last_page=last)
    if page <= last:
        metadata["page"] = page
        if page > 1:
            metadata["previous_page"] = page - 1
        if page < last:
            metadata["next_page"] = page + 1
    return json.dumps(metadata)


class ApiBlueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint with presto's parser and documentation helpers."""

    ARGUMENTS_PARSER = PARSER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepare_doc_cbks.append(self._prepare_conditional_doc)
        self._prepare_doc_cbks.append(self._prepare_idempotency_doc)

    def documents_problems(self, *statuses: int) -> Callable[[View], View]:
        """Document the problem responses a view can answer with."""

        def decorator(view: View) -> View:
            for status in statuses:
                view = self.alt_response(status, HTTPStatus(status).name)(view)
            return view

        return decorator

    def body(self, schema: type[Schema] | Schema, **kwargs: Any) -> Callable[[View], View]:
        """Parse the JSON body with `schema` into the view's first argument."""

        def decorator(view: View) -> View:
            view = self.documents_problems(400, 413, 415)(view)
            result: View = self.arguments(schema, **kwargs)(view)
            return result

        return decorator

    def guarded_write(self, *, admin_only: bool = False) -> Callable[[View], View]:
        """Guard a view with a bearer key (presto.api.auth), honour `Idempotency-Key` on it
        (presto.api.idempotency), and document both."""

        def decorator(view: View) -> View:
            view = self.documents_problems(401, 403, 409, 422)(view)
            view = self.doc(security=[{BEARER_SCHEME: []}])(view)
            docs = dict(getattr(view, "_apidoc", {}))
            docs[_IDEMPOTENT] = True
            view._apidoc = docs  # type: ignore[attr-defined]
            return auth.key_required(admin_only=admin_only)(idempotency.idempotent(view))

        return decorator

    def documents_conditional(self, *, read: bool) -> Callable[[View], View]:
        """Document `If-None-Match` (a read) or `If-Match` (a write) and `ETag`."""

        def decorator(view: View) -> View:
            docs = dict(getattr(view, "_apidoc", {}))
            docs[_CONDITIONAL] = "read" if read else "write"
            view._apidoc = docs  # type: ignore[attr-defined]
            return view

        return decorator

    @staticmethod
    def _prepare_conditional_doc(
        doc: dict[str, Any], doc_info: dict[str, Any], **_kwargs: Any
    ) -> dict[str, Any]:
        kind = doc_info.get(_CONDITIONAL)
        if kind is None:
            return doc
        doc.setdefault("parameters", []).append("IfNoneMatch" if kind == "read" else "IfMatch")
        responses = doc.setdefault("responses", {})
        if kind == "read":
            responses[304] = "NOT_MODIFIED"
        else:
            responses[412] = "PRECONDITION_FAILED"
        for status, response in responses.items():
            if isinstance(response, dict) and str(status) in {"200", "201"}:
                response.setdefault("headers", {})["ETag"] = "ETag"
        return doc

    @staticmethod
    def _prepare_idempotency_doc(
        doc: dict[str, Any], doc_info: dict[str, Any], **_kwargs: Any
    ) -> dict[str, Any]:
        if doc_info.get(_IDEMPOTENT):
            doc.setdefault("parameters", []).append("IdempotencyKey")
        return doc
