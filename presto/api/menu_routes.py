"""The public menu call: `GET /restaurant/<id>/item`."""

from __future__ import annotations

import time
from typing import Any

from flask import Response, request

from presto.api.blueprint import ApiBlueprint
from presto.api.conditional import etag_header, not_modified
from presto.api.content_coding import PREFER_GZIP, accepts_gzip
from presto.api.session import db_session
from presto.menus.publishing import current_menu
from presto.menus.rendering import render_menu
from presto.menus.representation import (
    MENU_HEADERS,
    VALID_UNTIL_HEADER,
    gzip_etag,
    published_variant,
)
from presto.schemas.queries import MenuQuerySchema
from presto.services import menus, restaurants
from presto.services.etags import current_menu_call_etag, menu_call_etag
from presto.services.menu_view import MenuFilter
from presto.storage.published_menus import Published

bp = ApiBlueprint("menu", __name__, description="The public menu call.")

# Either shape the call answers with: nested (the default) or normalized.
MENU_CALL_SCHEMA = {
    "oneOf": [
        {"type": "array", "items": {"$ref": "#/components/schemas/Item"}},
        {"$ref": "#/components/schemas/NormalizedMenu"},
    ]
}


@bp.route("/restaurant/<int:restaurant_id>/item", methods=["GET"])
@bp.arguments(MenuQuerySchema(), location="query")
@bp.response(
    200,
    description="The menu entries with nested modifiers; with shape=normalized, a "
    "NormalizedMenu object instead.",
)
@bp.doc(responses={200: {"content": {"application/json": {"schema": MENU_CALL_SCHEMA}}}})
@bp.documents_conditional(read=True)
@bp.documents_problems(404)
def list_items(query: dict[str, Any], restaurant_id: int) -> Response:
    """The restaurant's menu: a JSON array of items with nested modifiers."""
    session = db_session()
    variant = published_variant(query)
    if variant is not None:
        return _published_menu(current_menu(session, restaurant_id, variant))
    # Held while the menu loads, so load_menu finds it in the session without a query.
    restaurant = restaurants.get_restaurant(session, restaurant_id)
    at = query.get("at")
    if at is None and request.if_none_match:
        still = current_menu_call_etag(restaurant, request.if_none_match.as_set(True), time.time())
        if still is not None:
            return _menu_headers(Response(status=304, headers=etag_header(still)))
    loaded = menus.load_menu(
        session,
        restaurant_id,
        menu_filter=MenuFilter(
            query["all"],
            query.get("available"),
            query.get("category"),
            query.get("tags", ()),
            query.get("exclude_allergens", ()),
            query.get("external_id"),
        ),
        at=at,
    )
    tag = menu_call_etag(loaded.restaurant, loaded.valid_until)
    # The async layer's cache answers gzip clients with its own tag for those bytes.
    response = not_modified(tag, gzip_etag(tag)) or Response(
        render_menu(loaded, query["shape"]),
        mimetype="application/json",
        headers=etag_header(tag),
    )
    if at is not None:
        response.headers[VALID_UNTIL_HEADER] = "0"
    elif loaded.valid_until is not None:
        response.headers[VALID_UNTIL_HEADER] = str(int(loaded.valid_until.timestamp()))
    return _menu_headers(response)


def _published_menu(published: Published) -> Response:
    """The menu call from its published bytes: 304 for either tag, the gzip bytes to a
    client that accepts them (and to the warm path, which keeps both), else the body."""
    tag = published.etag
    gzip_tag = gzip_etag(tag)
    response = not_modified(tag, gzip_tag)
    if response is None and (
        request.environ.get(PREFER_GZIP) or accepts_gzip(request.headers.get("Accept-Encoding", ""))
    ):
        response = Response(
            published.body_gzip,
            mimetype="application/json",
            headers={**etag_header(gzip_tag), "Content-Encoding": "gzip"},
        )
    elif response is None:
        response = Response(published.body(), mimetype="application/json", headers=etag_header(tag))
    if published.valid_until is not None:
        response.headers[VALID_UNTIL_HEADER] = str(published.valid_until)
    return _menu_headers(response)


def _menu_headers(response: Response) -> Response:
    for name, value in MENU_HEADERS:
        response.headers[name] = value
    return response
