"""The public menu call: ``GET /restaurant/<id>/item``."""

from __future__ import annotations

import orjson
from flask import Blueprint, Response, request

from presto import __version__, menu
from presto.app import db_session
from presto.models import Restaurant
from presto.schemas import ItemSchema, MenuQuerySchema

bp = Blueprint("menu", __name__)

_item_schema = ItemSchema()
_query_schema = MenuQuerySchema()

# Clients and proxies may store the menu but must revalidate it (cheap: 304 by ETag).
MENU_CACHE_CONTROL = "public, no-cache"


def menu_etag(restaurant: Restaurant) -> str:
    """A strong ETag for the menu: its version, and presto's version for the JSON shape."""
    return f'"{restaurant.id}-{restaurant.menu_version}-{__version__}"'


@bp.get("/restaurant/<int:restaurant_id>/item")
def list_items(restaurant_id: int) -> Response:
    """The restaurant's menu: a JSON array of items with nested modifiers."""
    query = _query_schema.load(request.args)
    session = db_session()
    # Held while the menu loads, so load_menu finds it in the session without a query.
    restaurant = menu.get_restaurant(session, restaurant_id)
    etag = menu_etag(restaurant)
    if etag_matches(etag, request.headers.get("If-None-Match")):
        response = Response(status=304)
    else:
        loaded = menu.load_menu(session, restaurant_id, include_all=query["all"])
        body = orjson.dumps(_item_schema.dump(loaded.items, many=True))
        response = Response(body, mimetype="application/json")
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = MENU_CACHE_CONTROL
    return response


def etag_matches(etag: str, if_none_match: str | None) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak comparison, RFC 9110)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))
