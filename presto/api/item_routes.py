"""Items of a restaurant's menu: `/restaurant/<id>/item/<item_id>` and its modifiers.

The list, `GET /restaurant/<id>/item`, is the public menu call in presto.api.menu_routes.
"""

from __future__ import annotations

from typing import Any

from flask import Response, url_for

from presto.api.blueprint import PARSER, ApiBlueprint
from presto.api.conditional import etag_header, if_match, not_modified
from presto.api.session import db_session
from presto.schemas.bodies import ItemCreateSchema, ItemPatchSchema
from presto.schemas.links import ModifierLinksSchema, modifier_link_doc
from presto.schemas.output import ItemDetailSchema
from presto.services import items
from presto.services.items import ItemTree
from presto.services.limits import MAX_MODIFIERS_PER_ITEM
from presto.storage.links import ModifierLink
from presto.storage.models import Item

bp = ApiBlueprint("items", __name__, description="Items, and the modifiers linked to them.")

ResponseValue = Response | tuple[Item, dict[str, str]] | tuple[Item, int, dict[str, str]]

_modifier_links = ModifierLinksSchema()


@bp.route("/restaurant/<int:restaurant_id>/item", methods=["POST"])
@bp.guarded_write()
@bp.body(ItemCreateSchema)
@bp.response(201, ItemDetailSchema)
@bp.documents_problems(404, 409)
def create_item(fields: dict[str, Any], restaurant_id: int) -> ResponseValue:
    """Add an item (without modifiers) to the restaurant's menu."""
    tree = items.create_item(db_session(), restaurant_id, fields)
    location = url_for("items.get_item", restaurant_id=restaurant_id, item_id=tree.item.id)
    return tree.item, 201, {"Location": location, **etag_header(tree.etag)}


@bp.route("/restaurant/<int:restaurant_id>/item/<int:item_id>", methods=["GET"])
@bp.documents_conditional(read=True)
@bp.response(200, ItemDetailSchema)
@bp.documents_problems(404)
def get_item(restaurant_id: int, item_id: int) -> ResponseValue:
    """One item with its modifiers nested to any depth."""
    tree = items.get_item(db_session(), restaurant_id, item_id)
    return not_modified(tree.etag) or _item_response(tree)


@bp.route("/restaurant/<int:restaurant_id>/item/external/<external_id>", methods=["GET"])
@bp.documents_conditional(read=True)
@bp.response(200, ItemDetailSchema)
@bp.documents_problems(404)
def get_item_by_external_id(restaurant_id: int, external_id: str) -> ResponseValue:
    """One item named by its external id, with its modifiers nested to any depth."""
    session = db_session()
    item_id = items.find_by_external_id(session, restaurant_id, external_id)
    tree = items.get_item(session, restaurant_id, item_id)
    return not_modified(tree.etag) or _item_response(tree)


@bp.route("/restaurant/<int:restaurant_id>/item/<int:item_id>", methods=["PATCH"])
@bp.guarded_write()
@bp.documents_conditional(read=False)
@bp.body(ItemPatchSchema)
@bp.response(200, ItemDetailSchema)
@bp.documents_problems(404, 409)
def update_item(changes: dict[str, Any], restaurant_id: int, item_id: int) -> ResponseValue:
    """Change some of an item's fields."""
    tree = items.update_item(db_session(), restaurant_id, item_id, changes, if_match())
    return _item_response(tree)


@bp.route("/restaurant/<int:restaurant_id>/item/<int:item_id>", methods=["DELETE"])
@bp.guarded_write()
@bp.documents_conditional(read=False)
@bp.response(204)
@bp.documents_problems(404)
def delete_item(restaurant_id: int, item_id: int) -> Response:
    """Delete an item; it leaves the modifiers of every item that had it."""
    items.delete_item(db_session(), restaurant_id, item_id, if_match())
    return Response(status=204)


@bp.route("/restaurant/<int:restaurant_id>/item/<int:item_id>/modifiers", methods=["PUT"])
@bp.guarded_write()
@bp.documents_conditional(read=False)
@bp.doc(
    requestBody={
        "required": True,
        "description": "Items of the same restaurant, in the order guests see them: each "
        "an id, or an object with the id, its price in this item and whether it is a default.",
        "content": {
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": modifier_link_doc(1),
                    "maxItems": MAX_MODIFIERS_PER_ITEM,
                    "uniqueItems": True,
                }
            }
        },
    }
)
@bp.response(200, ItemDetailSchema)
@bp.documents_problems(400, 404, 409, 413, 415, 422)
def set_modifiers(restaurant_id: int, item_id: int) -> ResponseValue:
    """Set an item's modifiers and their order; no link may close a cycle."""
    links: list[ModifierLink] = PARSER.parse(_modifier_links, location="json")
    tree = items.set_modifiers(db_session(), restaurant_id, item_id, links, if_match())
    return _item_response(tree)


def _item_response(tree: ItemTree) -> tuple[Item, dict[str, str]]:
    return tree.item, etag_header(tree.etag)
