"""A restaurant's whole menu as one document: `GET|PUT /restaurant/<id>/menu`."""

from __future__ import annotations

from typing import Any

from flask import Response

from presto.api.blueprint import ApiBlueprint
from presto.api.conditional import etag_header, if_match, not_modified
from presto.api.session import db_session
from presto.schemas.documents import MenuDocumentSchema, MenuImportResultSchema
from presto.schemas.queries import MenuImportQuerySchema
from presto.services import menu_documents, menu_sync
from presto.services.menu_documents import ImportCounts

bp = ApiBlueprint("menu document", __name__, description="Export and import a whole menu at once.")

ResponseValue = Response | tuple[dict[str, Any], dict[str, str]]


@bp.route("/restaurant/<int:restaurant_id>/menu", methods=["GET"])
@bp.documents_conditional(read=True)
@bp.response(200, MenuDocumentSchema)
@bp.documents_problems(404)
def export_menu(restaurant_id: int) -> ResponseValue:
    """Export every item of the menu, in menu order, with modifiers by id."""
    document = menu_documents.export_menu(db_session(), restaurant_id)
    return not_modified(document.etag) or _document_response(document)


@bp.route("/restaurant/<int:restaurant_id>/menu", methods=["PUT"])
@bp.guarded_write()
@bp.documents_conditional(read=False)
@bp.arguments(MenuImportQuerySchema(), location="query")
@bp.body(MenuDocumentSchema)
@bp.response(200, MenuImportResultSchema)
@bp.documents_problems(404, 409)
def import_menu(
    query: dict[str, Any], document: dict[str, Any], restaurant_id: int
) -> ResponseValue:
    """Replace the whole menu with the document's items, all or nothing; with
    `match=external_id`, bring the stored menu in line with it instead.

    Replacing, the document's ids only link its items to each other and the items get new
    ids. Matching, stored items keep their ids, and a document equal to the stored menu
    changes nothing. The response shows the menu as stored and counts what changed.
    """
    session = db_session()
    if "match" in query:
        counts: ImportCounts = menu_sync.sync_menu(
            session, restaurant_id, document["items"], if_match(), prune=query.get("prune", True)
        )
    else:
        counts = menu_documents.import_menu(session, restaurant_id, document["items"], if_match())
    document_now = menu_documents.export_menu(session, restaurant_id)
    return {"items": document_now.items, **_counts(counts)}, etag_header(document_now.etag)


def _counts(counts: ImportCounts) -> dict[str, int]:
    """The counts an import answers with."""
    return {
        "created": counts.created,
        "updated": counts.updated,
        "deleted": counts.deleted,
        "unchanged": counts.unchanged,
    }


def _document_response(
    document: menu_documents.MenuDocument,
) -> tuple[dict[str, Any], dict[str, str]]:
    return {"items": document.items}, etag_header(document.etag)
