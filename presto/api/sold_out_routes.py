"""Sold out ("86") until a time: `PUT|DELETE /restaurant/<id>/item/<item_id>/sold-out`,
and the same by external id, the calls a POS makes when stock runs out.

Each is one small write that loads no menu; the answer is the item's sold-out state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from presto.api.blueprint import ApiBlueprint
from presto.api.session import db_session
from presto.schemas.bodies import SoldOutSchema
from presto.schemas.output import SoldOutStateSchema
from presto.services import items, sold_out
from presto.storage.models import Item

bp = ApiBlueprint(
    "sold out", __name__, description="Mark an item sold out until a time, or offer it again."
)

_BY_ID = "/restaurant/<int:restaurant_id>/item/<int:item_id>/sold-out"
_BY_EXTERNAL_ID = "/restaurant/<int:restaurant_id>/item/external/<external_id>/sold-out"


@bp.route(_BY_ID, methods=["PUT"])
@bp.guarded_write()
@bp.body(SoldOutSchema)
@bp.response(200, SoldOutStateSchema)
@bp.documents_problems(404)
def mark_sold_out(body: dict[str, Any], restaurant_id: int, item_id: int) -> Item:
    """Mark an item sold out until `until` (left out or null: until further notice)."""
    return _set(restaurant_id, item_id, body["until"] or sold_out.UNTIL_FURTHER_NOTICE)


@bp.route(_BY_ID, methods=["DELETE"])
@bp.guarded_write()
@bp.response(200, SoldOutStateSchema)
@bp.documents_problems(404)
def clear_sold_out(restaurant_id: int, item_id: int) -> Item:
    """Offer a sold-out item again now."""
    return _set(restaurant_id, item_id, None)


@bp.route(_BY_EXTERNAL_ID, methods=["PUT"])
@bp.guarded_write()
@bp.body(SoldOutSchema)
@bp.response(200, SoldOutStateSchema)
@bp.documents_problems(404)
def mark_sold_out_by_external_id(
    body: dict[str, Any], restaurant_id: int, external_id: str
) -> Item:
    """Mark the item with this external id sold out until `until`."""
    item_id = items.find_by_external_id(db_session(), restaurant_id, external_id)
    return _set(restaurant_id, item_id, body["until"] or sold_out.UNTIL_FURTHER_NOTICE)


@bp.route(_BY_EXTERNAL_ID, methods=["DELETE"])
@bp.guarded_write()
@bp.response(200, SoldOutStateSchema)
@bp.documents_problems(404)
def clear_sold_out_by_external_id(restaurant_id: int, external_id: str) -> Item:
    """Offer the sold-out item with this external id again now."""
    item_id = items.find_by_external_id(db_session(), restaurant_id, external_id)
    return _set(restaurant_id, item_id, None)


def _set(restaurant_id: int, item_id: int, until: datetime | None) -> Item:
    return sold_out.set_sold_out(db_session(), restaurant_id, item_id, until)
