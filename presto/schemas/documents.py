"""Menu documents: a restaurant's whole menu in one body (export, import), and what an
import answers."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from presto.schema_fields import StrictInteger
from presto.schemas.bodies import ItemCreateSchema
from presto.schemas.links import modifier_link_list
from presto.schemas.values import ObjectSchema
from presto.services.limits import MAX_ITEMS_PER_RESTAURANT
from presto.storage.models import MAX_ID


def _document_id(**kwargs: Any) -> StrictInteger:
    """An id naming an item within one menu document: 0 to `MAX_ID`, like an item id."""
    return StrictInteger(validate=validate.Range(0, MAX_ID), **kwargs)


class DocumentItemSchema(ItemCreateSchema):
    """An item of a menu document; `id` names it within the document only."""

    class Meta(ItemCreateSchema.Meta):
        exclude = ("position",)

    id = _document_id(required=True)
    # Left out: none (a sync import by external id: the item's stored ones).
    modifiers = modifier_link_list(minimum=0)


class MenuDocumentSchema(ObjectSchema):
    """A restaurant's whole menu: every item in menu order, modifiers by document id."""

    items = fields.List(
        fields.Nested(DocumentItemSchema),
        required=True,
        validate=validate.Length(max=MAX_ITEMS_PER_RESTAURANT),
    )

    @validates_schema
    def _references(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors: dict[int, dict[str, Any]] = {}
        ids: set[int] = set()
        external_ids: set[str] = set()
        for index, item in enumerate(data["items"]):
            if item["id"] in ids:
                errors[index] = {"id": [f"Id {item['id']} appears more than once."]}
            ids.add(item["id"])
            external_id = item.get("external_id")
            if external_id in external_ids:
                message = f"External id {external_id!r} appears more than once."
                errors.setdefault(index, {})["external_id"] = [message]
            if external_id is not None:
                external_ids.add(external_id)
        for index, item in enumerate(data["items"]):
            missing = {
                position: [f"No item of this document has id {link.modifier_id}."]
                for position, link in enumerate(item.get("modifiers", []))
                if link.modifier_id not in ids
            }
            if missing:
                errors.setdefault(index, {})["modifiers"] = missing
        if errors:
            raise ValidationError({"items": errors})


class MenuImportResultSchema(MenuDocumentSchema):
    """What an import answers: the menu as stored now, and what the import did to it."""

    created = fields.Integer(dump_only=True, metadata={"description": "Items created."})
    updated = fields.Integer(dump_only=True, metadata={"description": "Items matched and changed."})
    deleted = fields.Integer(dump_only=True, metadata={"description": "Items deleted."})
    unchanged = fields.Integer(
        dump_only=True, metadata={"description": "Items matched that already were so."}
    )
