"""Modifier links as requests send them.

One vocabulary across presto: a *modifier* is an item offered inside another, its
*parent*; a *link* is one parent-modifier pair, `presto.storage.links.ModifierLink`; a
link's *terms* are the modifier's `price` in that parent (null: its own) and
`is_default`. Here: `ModifierLinkField` (one link in a body: an id, or an object with
terms), `modifier_link_list` (an ordered list of them), `ModifierLinksSchema` (the body of
`PUT .../modifiers`) and `modifier_link_doc` (the OpenAPI shape of one entry, written by
hand since the field takes two JSON types). Answers show links through
`presto.schemas.output`: `NestedModifiers`, `ModifierIdList`, `ModifierLinksWithTerms`.
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, pre_load, validate

from presto.schema_fields import StrictBoolean, StrictInteger
from presto.schemas.values import no_duplicates
from presto.services.limits import MAX_MODIFIERS_PER_ITEM
from presto.storage.links import ModifierLink
from presto.storage.models import MAX_ID, MAX_PRICE


class _LinkObjectSchema(Schema):
    """A link in its object form: `{"id", "price", "is_default"}`."""

    class Meta:
        unknown = RAISE

    id = StrictInteger(required=True)
    price = StrictInteger(allow_none=True, validate=validate.Range(0, MAX_PRICE))
    is_default = StrictBoolean()

    @post_load
    def _link(self, data: dict[str, Any], **_kwargs: Any) -> ModifierLink:
        return ModifierLink(data["id"], data.get("price"), data.get("is_default", False))


_link_object_schema = _LinkObjectSchema()


def modifier_link_doc(minimum: int) -> dict[str, Any]:
    """The OpenAPI shape of one modifier of a list: an id, or an object with its terms."""
    return {
        "oneOf": [
            {
                "type": "integer",
                "minimum": minimum,
                "maximum": MAX_ID,
                "description": "The modifier's id (its own price, not a default).",
            },
            {
                "type": "object",
                "required": ["id"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "integer", "minimum": minimum, "maximum": MAX_ID},
                    "price": {
                        "type": "integer",
                        "nullable": True,
                        "minimum": 0,
                        "maximum": MAX_PRICE,
                        "description": "Its price in this parent (minor units); null: its own.",
                    },
                    "is_default": {"type": "boolean", "description": "A pre-selected choice."},
                },
            },
        ]
    }


class ModifierLinkField(fields.Field):
    """A modifier in a parent's list: its id, or `{"id", "price", "is_default"}`.

    Loads as a `ModifierLink`; dumps as the bare id when the link has no terms, so a
    document without link terms reads as it always did.
    """

    def __init__(self, *, minimum: int = 1, **kwargs: Any) -> None:
        super().__init__(metadata=modifier_link_doc(minimum), **kwargs)
        self.minimum = minimum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            link = ModifierLink(value)
        elif isinstance(value, dict):
            link = _link_object_schema.load(value)
        else:
            raise ValidationError("Must be an item id or an object with id, price and is_default.")
        if not self.minimum <= link.modifier_id <= MAX_ID:
            raise ValidationError(f"Must be an id from {self.minimum} to {MAX_ID}.")
        return link

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value.price is None and not value.is_default:
            return value.modifier_id
        return {"id": value.modifier_id, "price": value.price, "is_default": value.is_default}


def _no_duplicate_links(links: list[ModifierLink]) -> None:
    no_duplicates([link.modifier_id for link in links])


def modifier_link_list(*, minimum: int = 1, **kwargs: Any) -> fields.List:
    """An ordered list of modifiers, each an id (from `minimum`) or an object with its
    terms."""
    return fields.List(
        ModifierLinkField(minimum=minimum),
        validate=[validate.Length(max=MAX_MODIFIERS_PER_ITEM), _no_duplicate_links],
        **kwargs,
    )


class ModifierLinksSchema(Schema):
    """The body of `PUT .../modifiers`: a JSON array of item ids (or of objects with an
    id, a `price` in this parent and `is_default`), in order.

    marshmallow loads objects, so the array is wrapped as `modifiers` on the way in and
    unwrapped on the way out; errors name the `modifiers` field.
    """

    class Meta:
        unknown = RAISE

    modifiers = modifier_link_list(required=True)

    @pre_load
    def _wrap(self, data: Any, **_kwargs: Any) -> dict[str, Any]:
        if not isinstance(data, list):
            raise ValidationError("The body must be a JSON array of item ids.", "modifiers")
        return {"modifiers": data}

    @post_load
    def _unwrap(self, data: dict[str, Any], **_kwargs: Any) -> list[ModifierLink]:
        modifiers: list[ModifierLink] = data["modifiers"]
        return modifiers
