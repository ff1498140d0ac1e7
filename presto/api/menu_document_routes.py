"""A restaurant's whole menu as one document: `GET|PUT /restaurant/<id>/menu`."""

from __future__ import annotations

from typing import Any

from flask import Response

from presto.api.blueprint import ApiBlueprint
from presto.api.conditional import etag_header, if_match, not_modified
from presto.api.session import db_session
from presto.schemas import MenuDocumentSchema
from presto.services import menu_documents

bp = ApiBlueprint("menu document", __name__, description="Export and import a whole menu at once.")

ResponseValue = Response | tuple[dict[str, Any], dict[str, str]]


@bp.route("/restaurant/<int:restaurant_id>/menu", methods=["GET"])
@bp.conditional(read=True)
@bp.response(200, MenuDocumentSchema)
@bp.problems(404)
def export_menu(restaurant_id: int) -> ResponseValue:
    """Export every item of the menu, in menu order, with modifiers by id."""
    document = menu_documents.export_menu(db_session(), restaurant_id)
    return not_modified(document.etag) or _document_response(document)


@bp.route("/restaurant/<int:restaurant_id>/menu", methods=["PUT"])
@bp.write()
@bp.conditional(read=False)
@bp.body(MenuDocumentSchema)
@bp.response(200, MenuDocumentSchema)
@bp.problems(404, 409)
def import_menu(document: dict[str, Any], restaurant_id: int) -> ResponseValue:
    """Replace the whole menu with the document's items, all or nothing.

    The document's ids only link its items to each other; the items get new ids, which
    the response shows.
    """
    imported = menu_documents.import_menu(
        db_session(), restaurant_id, document["items"], if_match()
    )
    return _document_response(imported)


def _document_response(
    document: menu_documents.MenuDocument,
) -> tuple[dict[str, Any], dict[str, str]]:
    return {"items": document.items}, etag_header(document.etag)
