"""Restaurants: `/restaurant` and `/restaurant/<id>`."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for

from presto.api.blueprint import PAGINATION_HEADER, ApiBlueprint, pagination_metadata
from presto.api.conditional import etag_header, if_match, not_modified
from presto.api.session import db_session
from presto.schemas.bodies import RestaurantPatchSchema, RestaurantSchema
from presto.schemas.queries import PageQuerySchema
from presto.services import restaurants
from presto.services.etags import restaurant_etag
from presto.storage.models import Restaurant

bp = ApiBlueprint("restaurants", __name__, description="Restaurants and their currencies.")

ResponseValue = Response | tuple[Restaurant, dict[str, str]] | tuple[Restaurant, int, Any]


@bp.route("/restaurant", methods=["GET"])
@bp.arguments(PageQuerySchema, location="query")
@bp.response(200, RestaurantSchema(many=True), headers={PAGINATION_HEADER: "PAGINATION"})
def list_restaurants(query: dict[str, int]) -> tuple[list[Restaurant], dict[str, str]]:
    """List restaurants in id order, a page at a time (`X-Pagination` has the totals)."""
    number, size = query["page"], query["page_size"]
    page = restaurants.list_restaurants(db_session(), offset=(number - 1) * size, limit=size)
    return page.restaurants, {PAGINATION_HEADER: pagination_metadata(number, size, page.total)}


@bp.route("/restaurant", methods=["POST"])
@bp.guarded_write(admin_only=True)
@bp.body(RestaurantSchema)
@bp.response(201, RestaurantSchema)
@bp.documents_problems(409)
def create_restaurant(fields: dict[str, Any]) -> ResponseValue:
    """Create a restaurant with an empty menu (admin key only)."""
    restaurant = restaurants.create_restaurant(db_session(), fields)
    location = url_for("restaurants.get_restaurant", restaurant_id=restaurant.id)
    return restaurant, 201, {"Location": location, **etag_header(restaurant_etag(restaurant))}


@bp.route("/restaurant/<int:restaurant_id>", methods=["GET"])
@bp.documents_conditional(read=True)
@bp.response(200, RestaurantSchema)
@bp.documents_problems(404)
def get_restaurant(restaurant_id: int) -> ResponseValue:
    """One restaurant."""
    restaurant = restaurants.get_restaurant(db_session(), restaurant_id)
    tag = restaurant_etag(restaurant)
    return not_modified(tag) or (restaurant, etag_header(tag))


@bp.route("/restaurant/<int:restaurant_id>", methods=["PATCH"])
@bp.guarded_write()
@bp.documents_conditional(read=False)
@bp.body(RestaurantPatchSchema)
@bp.response(200, RestaurantSchema)
@bp.documents_problems(404, 409)
def update_restaurant(changes: dict[str, Any], restaurant_id: int) -> ResponseValue:
    """Change a restaurant's name or currency."""
    restaurant = restaurants.update_restaurant(db_session(), restaurant_id, changes, if_match())
    return restaurant, etag_header(restaurant_etag(restaurant))


@bp.route("/restaurant/<int:restaurant_id>", methods=["DELETE"])
@bp.guarded_write(admin_only=True)
@bp.documents_conditional(read=False)
@bp.response(204)
@bp.documents_problems(404)
def delete_restaurant(restaurant_id: int) -> Response:
    """Delete a restaurant with its whole menu and its keys (admin key only)."""
    restaurants.delete_restaurant(db_session(), restaurant_id, if_match())
    return Response(status=204)
