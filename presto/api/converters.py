"""The `int` converter of every route: an id in a path is 1 to `MAX_ID`, ASCII digits only.

Werkzeug's own `int` matches any Unicode digit and any size: `/restaurant/%D9%A1` (an
Arabic-Indic one) named restaurant 1, and an id past the column's range reached the
database (a 500 on PostgreSQL). A path segment that cannot be an id matches no route: 404,
before any query.
"""

from __future__ import annotations

from typing import Any

import flask_smorest
from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from presto.storage.models import MAX_ID


class IdConverter(IntegerConverter):
    """A row id: ASCII digits, 1 to `MAX_ID`."""

    regex = r"[0-9]{1,10}"

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def id_parameter_schema(converter: IdConverter) -> dict[str, Any]:
    """How the OpenAPI document describes an id in a path."""
    return {"type": "integer", "minimum": converter.min, "maximum": converter.max}


def install(app: Flask, api: flask_smorest.Api) -> None:
    """Make `IdConverter` the `int` of `app`'s routes; call before registering them."""
    app.url_map.converters["int"] = IdConverter
    api.register_converter(IdConverter, id_parameter_schema)
