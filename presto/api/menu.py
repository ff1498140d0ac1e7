"""The public menu call: ``GET /restaurant/<id>/item``."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

from presto import menu
from presto.api.blueprint import ApiBlueprint
from presto.app import db_session
from presto.schemas import ItemSchema, MenuQuerySchema

bp = ApiBlueprint("menu", __name__, description="The public menu call.")

_item_schema = ItemSchema()


@bp.route("/restaurant/<int:restaurant_id>/item", methods=["GET"])
@bp.arguments(MenuQuerySchema, location="query")
@bp.response(200, ItemSchema(many=True))
@bp.problems(404)
def list_items(query: dict[str, Any], restaurant_id: int) -> Response:
    """The restaurant's menu: a JSON array of items with nested modifiers."""
    loaded = menu.load_menu(
        db_session(),
        restaurant_id,
        include_all=query["all"],
        available=query.get("available"),
        category=query.get("category"),
    )
    body = orjson.dumps(_item_schema.dump(loaded.items, many=True))
    return Response(body, mimetype="application/json")
