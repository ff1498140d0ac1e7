"""Batch changes: `PATCH /restaurant/<id>/items`, many items' partial updates at once."""

from __future__ import annotations

from typing import Any

from presto.api.blueprint import ApiBlueprint
from presto.api.conditional import etag_header, if_match
from presto.api.session import db_session
from presto.schemas.bodies import BatchSchema
from presto.schemas.output import BatchResultSchema
from presto.services import batch
from presto.services.etags import menu_version_etag

bp = ApiBlueprint("batch", __name__, description="Change many items in one transaction.")


@bp.route("/restaurant/<int:restaurant_id>/items", methods=["PATCH"])
@bp.guarded_write()
@bp.documents_conditional(read=False)
@bp.body(BatchSchema)
@bp.response(200, BatchResultSchema)
@bp.documents_problems(404, 409, 422)
def change_items(body: dict[str, Any], restaurant_id: int) -> tuple[Any, dict[str, str]]:
    """Apply partial updates to many items, all or nothing: one transaction, one new menu
    version (`If-Match` takes the menu document's `ETag`)."""
    outcome = batch.apply_batch(db_session(), restaurant_id, body["items"], if_match())
    return outcome, etag_header(menu_version_etag(outcome.menu_version))
