"""The OpenAPI 3 document at `/openapi.json` and Swagger UI at `/docs`.

flask-smorest builds the document from the blueprints' marshmallow schemas. Swagger UI's
files come from the `swagger_ui_bundle` package and are served by presto itself under
`/docs/static/`, so the docs page loads nothing from elsewhere.
"""

from __future__ import annotations

import http
from typing import Any

import flask_smorest
from flask import Blueprint, Flask, Response, send_from_directory
from flask_smorest.pagination import PaginationMetadataSchema
from flask_smorest.utils import prepare_response
from marshmallow import Schema, fields
from swagger_ui_bundle import swagger_ui_path

from presto.api import idempotency
from presto.api.blueprint import BEARER_SCHEME
from presto.errors import PROBLEM_JSON
from presto.schemas.output import ItemSchema, NormalizedMenuSchema

SWAGGER_ASSETS = "/docs/static/"


class ProblemSchema(Schema):
    """An RFC 9457 problem, as every error response carries it."""

    type = fields.String(metadata={"description": "Always about:blank."})
    title = fields.String(metadata={"description": "The HTTP status phrase."})
    status = fields.Integer()
    detail = fields.String(metadata={"description": "What went wrong, for a person."})
    instance = fields.String(metadata={"description": "The request path."})
    errors = fields.Dict(
        metadata={"description": "422: the messages of each field at fault, by field name."}
    )
    cycle = fields.List(
        fields.Integer(), metadata={"description": "409: the item ids of a modifier cycle."}
    )
    path = fields.List(
        fields.Integer(), metadata={"description": "409: a chain of links nested too deep."}
    )
    etag = fields.String(metadata={"description": "412: the current entity tag."})
    item_id = fields.Integer(
        metadata={"description": "409: the item that already has the external id."}
    )
    restaurant_id = fields.Integer(
        metadata={"description": "409: the restaurant that already has the external id."}
    )
    index = fields.Integer(
        metadata={"description": "Batch changes (409, 422): the entry at fault, from 0."}
    )


class PrestoApi(flask_smorest.Api):
    """flask-smorest's `Api` whose documented errors are problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        # flask-smorest documents its error responses as application/json; presto's are
        # application/problem+json (presto.api.errors), so register them as such.
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 300 and status != 304:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "An error", "schema": self.ERROR_SCHEMA}
        prepare_response(default, self.spec, PROBLEM_JSON)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, default, lazy=True)

    def _register_pagination_header(self) -> None:
        # The header holds a JSON object; as a header `schema`, an object would mean
        # `key,value,...` (OpenAPI's "simple" style), which is not what is sent.
        self.spec.components.schema("PaginationMetadata", schema=PaginationMetadataSchema)
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "The page counts, as a JSON object.",
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/PaginationMetadata"}
                    }
                },
            },
        )


def create_api(app: Flask, version: str) -> PrestoApi:
    """Set up the OpenAPI document and docs page on `app`."""
    app.config.update(
        API_TITLE="presto",
        API_VERSION=version,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL=SWAGGER_ASSETS,
        API_SPEC_OPTIONS={
            "info": {
                "description": "Restaurant menus: public reads, writes with a bearer API key."
            },
        },
    )
    api = PrestoApi(app)
    _add_components(api)
    app.register_blueprint(assets)
    return api


def _add_components(api: PrestoApi) -> None:
    """The security scheme, headers, parameters and schemas that routes refer to."""
    components = api.spec.components
    components.security_scheme(
        BEARER_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "description": "A key made by `presto keys create`.",
        },
    )
    components.header(
        "ETag",
        {"description": "Entity tag of the returned version.", "schema": {"type": "string"}},
    )
    components.parameter(
        "IfMatch",
        "header",
        {
            "name": "If-Match",
            "description": "Change only if the current entity tag is one of these (else 412).",
            "schema": {"type": "string"},
        },
    )
    components.parameter(
        "IdempotencyKey",
        "header",
        {
            "name": "Idempotency-Key",
            "description": 'A Structured Field string naming this write, e.g. "8e03978e-40d5-'
            '43e8-bc93-6894a57f9324" (a bare token without quotes is taken too): a retry with '
            "the same key and request gets the first answer again (with `Idempotent-Replayed: "
            "true`) instead of writing twice; 409 while the first is in flight, 422 for the "
            "same key with another request. Kept 24 h (`--idempotency-retention`).",
            "schema": {"type": "string", "pattern": idempotency.KEY_PATTERN},
        },
    )
    components.parameter(
        "IfNoneMatch",
        "header",
        {
            "name": "If-None-Match",
            "description": "Answer 304 if the current entity tag is one of these.",
            "schema": {"type": "string"},
        },
    )
    # The menu call's two shapes (presto.api.menu_routes documents it as either).
    components.schema("Item", schema=ItemSchema)
    components.schema("NormalizedMenu", schema=NormalizedMenuSchema)


assets = Blueprint("docs_assets", __name__)


@assets.get(f"{SWAGGER_ASSETS}<path:filename>")
def swagger_asset(filename: str) -> Response:
    """A file of Swagger UI, from the swagger_ui_bundle package."""
    return send_from_directory(swagger_ui_path, filename, max_age=86400)
