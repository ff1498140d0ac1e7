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


def digits_up_to(limit: int) -> str:
    """A regular expression of the decimal numbers 1 to `limit` (leading zeros allowed).

    The range is in the expression, not checked after it matched: Werkzeug answers 405,
    not 404, when a path matched a rule's expression but its converter refused the value.
    """
    text = str(limit)
    choices = [f"[1-9][0-9]{{0,{len(text) - 2}}}"] if len(text) > 1 else []
    for position, digit in enumerate(text):
        rest = len(text) - position - 1
        if int(digit) > (1 if position == 0 else 0):
            low = "1" if position == 0 else "0"
            tail = f"[0-9]{{{rest}}}" if rest else ""
            choices.append(f"{text[:position]}[{low}-{int(digit) - 1}]{tail}")
    choices.append(text)
    return f"0*(?:{'|'.join(choices)})"


class IdConverter(IntegerConverter):
    """A row id: ASCII digits, 1 to `MAX_ID`."""

    regex = digits_up_to(MAX_ID)

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def id_parameter_schema(converter: IdConverter) -> dict[str, Any]:
    """How the OpenAPI document describes an id in a path."""
    return {"type": "integer", "minimum": converter.min, "maximum": converter.max}


def install(app: Flask, api: flask_smorest.Api) -> None:
    """Make `IdConverter` the `int` of `app`'s routes; call before registering them."""
    app.url_map.converters["int"] = IdConverter
    api.register_converter(IdConverter, id_parameter_schema)
