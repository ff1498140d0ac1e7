"""The public menu call: `GET /restaurant/<id>/item`."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response

from presto.api.blueprint import ApiBlueprint
from presto.api.conditional import etag_header, not_modified
from presto.api.session import db_session
from presto.schemas import ItemSchema, MenuQuerySchema, NormalizedMenuSchema
from presto.services import menus, restaurants
from presto.services.etags import menu_call_etag

bp = ApiBlueprint("menu", __name__, description="The public menu call.")

_item_schema = ItemSchema()
_normalized_schema = NormalizedMenuSchema()

# Clients and proxies may keep the menu but must revalidate it: a 304 by ETag is cheap.
MENU_CACHE_CONTROL = "public, no-cache"
# Either shape the call answers with: nested (the default) or normalized.
MENU_CALL_SCHEMA = {
    "oneOf": [
        {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        {"$ref": "#/components/schemas/NormalizedMenu"},
    ]
}


@bp.route("/restaurant/<int:restaurant_id>/item", methods=["GET"])
@bp.arguments(MenuQuerySchema, location="query")
@bp.response(
    200,
    description="The menu entries with nested modifiers; with shape=normalized, a "
    "NormalizedMenu object instead.",
)
@bp.doc(responses={200: {"content": {"application/json": {"schema": MENU_CALL_SCHEMA}}}})
@bp.conditional(read=True)
@bp.problems(404)
def list_items(query: dict[str, Any], restaurant_id: int) -> Response:
    """The restaurant's menu: a JSON array of items with nested modifiers."""
    session = db_session()
    # Held while the menu loads, so load_menu finds it in the session without a query.
    restaurant = restaurants.get_restaurant(session, restaurant_id)
    tag = menu_call_etag(restaurant)
    response = not_modified(tag)
    if response is None:
        loaded = menus.load_menu(
            session,
            restaurant_id,
            include_all=query["all"],
            available=query.get("available"),
            category=query.get("category"),
        )
        if query["shape"] == "normalized":
            data = _normalized_schema.dump(
                {
                    "entries": [item.id for item in loaded.items],
                    "items": menus.reachable_items(loaded.items),
                }
            )
        else:
            data = _item_schema.dump(loaded.items, many=True)
        body = orjson.dumps(data)
        response = Response(body, mimetype="application/json", headers=etag_header(tag))
    response.headers["Cache-Control"] = MENU_CACHE_CONTROL
    return response
