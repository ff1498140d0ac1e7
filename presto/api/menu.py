"""The public menu call: ``GET /restaurant/<id>/item``."""

from __future__ import annotations

import orjson
from flask import Blueprint, Response, request

from presto import menu
from presto.app import db_session
from presto.schemas import ItemSchema, MenuQuerySchema

bp = Blueprint("menu", __name__)

_item_schema = ItemSchema()
_query_schema = MenuQuerySchema()


@bp.get("/restaurant/<int:restaurant_id>/item")
def list_items(restaurant_id: int) -> Response:
    """The restaurant's menu: a JSON array of items with nested modifiers."""
    query = _query_schema.load(request.args)
    loaded = menu.load_menu(db_session(), restaurant_id, include_all=query["all"])
    body = orjson.dumps(_item_schema.dump(loaded.items, many=True))
    return Response(body, mimetype="application/json")
