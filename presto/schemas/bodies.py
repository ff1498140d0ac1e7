"""Write bodies: a restaurant, an item (new or changed), a batch of changes, a sold-out
state. `RestaurantSchema` is also what the restaurant calls answer."""

from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from presto.schema_fields import StrictBoolean, StrictInteger, Text
from presto.schemas.values import (
    Instant,
    ObjectSchema,
    WindowSchema,
    external_id_field,
    https_url,
    name_field,
    vocabulary,
)
from presto.services import schedules
from presto.services.dietary import ALLERGENS, TAGS
from presto.services.items import choices_rule_broken
from presto.services.limits import MAX_BATCH_CHANGES, MAX_MODIFIERS_PER_ITEM
from presto.storage.models import (
    CATEGORY_LENGTH,
    DESCRIPTION_LENGTH,
    IMAGE_URL_LENGTH,
    MAX_ID,
    MAX_PRICE,
)


class RestaurantSchema(ObjectSchema):
    """A restaurant; `currency` is the ISO 4217 code all its prices are in."""

    id = fields.Integer(dump_only=True)
    name = name_field(required=True)
    currency = fields.String(
        # `$` would let a trailing newline through; the length rules it out (and, unlike
        # `\Z`, the pattern is one an OpenAPI client's regular expressions understand).
        validate=[
            validate.Length(3, 3),
            validate.Regexp(r"^[A-Z]{3}$", error="Must be an ISO 4217 code such as USD."),
        ],
        metadata={"description": "ISO 4217 code; prices are in its minor unit. Default USD."},
    )
    timezone = Text(
        validate=validate.Length(1, 64),
        metadata={
            "description": "IANA time zone; item schedules are in its local time. Default UTC."
        },
    )
    external_id = external_id_field(
        "The restaurant's id in your own system; unique overall. Null: none.", allow_none=True
    )

    @validates_schema
    def _known_timezone(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "timezone" in data:
            error = schedules.timezone_error(data["timezone"])
            if error:
                raise ValidationError(error, "timezone")


class RestaurantPatchSchema(RestaurantSchema):
    """The restaurant fields a `PATCH` may change; every one is optional."""

    name = name_field()


class ItemPatchSchema(ObjectSchema):
    """The item fields a `PATCH` may change; every one is optional."""

    name = name_field()
    description = Text(validate=validate.Length(max=DESCRIPTION_LENGTH))
    category = Text(allow_none=True, validate=validate.Length(1, CATEGORY_LENGTH))
    price = StrictInteger(
        validate=validate.Range(0, MAX_PRICE),
        metadata={"description": "Integer minor units of the restaurant's currency."},
    )
    available = StrictBoolean()
    standalone = StrictBoolean(
        metadata={"description": "True for a menu entry, false for a modifier-only item."}
    )
    min_choices = StrictInteger(validate=validate.Range(0, MAX_MODIFIERS_PER_ITEM))
    max_choices = StrictInteger(
        allow_none=True,
        validate=validate.Range(0, MAX_MODIFIERS_PER_ITEM),
        metadata={"description": "Null: no upper limit."},
    )
    position = StrictInteger(
        validate=validate.Range(0, 1_000_000),
        metadata={"description": "Menu order (ties broken by id). Default: after the last."},
    )
    schedule = fields.List(
        fields.Nested(WindowSchema),
        validate=validate.Length(max=schedules.MAX_WINDOWS),
        metadata={"description": "Windows when the item is offered; [] (default): always."},
    )
    image_url = fields.String(
        allow_none=True,
        validate=[
            validate.Length(max=IMAGE_URL_LENGTH),
            https_url,
        ],
        metadata={"description": "Absolute https URL of a picture of the item."},
    )
    tags = vocabulary(TAGS, "Dietary tags")
    allergens = vocabulary(ALLERGENS, "EU allergens")
    calories = StrictInteger(
        allow_none=True,
        validate=validate.Range(0, 100_000),
        metadata={"description": "Energy in kcal; null: not stated."},
    )
    external_id = external_id_field(
        "The item's id in your own system (POS PLU, SKU); unique in the restaurant. Null: none.",
        allow_none=True,
    )
    sold_out_until = Instant(
        allow_none=True,
        metadata={
            "description": "Sold out until this RFC 3339 instant (whole seconds, rounded up); "
            "null: not sold out."
        },
    )

    @validates_schema
    def _min_not_above_max(self, data: dict[str, Any], **_kwargs: Any) -> None:
        broken = choices_rule_broken(data.get("min_choices"), data.get("max_choices"))
        if broken:
            raise ValidationError(broken, "max_choices")


class ItemCreateSchema(ItemPatchSchema):
    """A new item; only `name` is required."""

    name = name_field(required=True)


class BatchChangeSchema(ItemPatchSchema):
    """One change of a batch: the item by `id` or, without one, by `external_id`, and the
    fields to set."""

    id = StrictInteger(
        validate=validate.Range(1, MAX_ID),
        metadata={
            "description": "The item to change. Left out: the item whose `external_id` is "
            "given (which then names it rather than changing it)."
        },
    )

    @validates_schema
    def _names_an_item(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "id" not in data and data.get("external_id") is None:
            raise ValidationError("Name the item by `id` or `external_id`.", "id")


class BatchSchema(ObjectSchema):
    """The body of `PATCH /restaurant/<id>/items`: partial updates of many items."""

    items = fields.List(
        fields.Nested(BatchChangeSchema),
        required=True,
        validate=validate.Length(1, MAX_BATCH_CHANGES),
        metadata={"description": "The changes, applied in this order, all or nothing."},
    )


class SoldOutSchema(ObjectSchema):
    """The body of `PUT .../sold-out`: until when the item is sold out."""

    until = Instant(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "RFC 3339 instant with an offset when the item is offered again; "
            "null or left out: until further notice (9999-12-31T23:59:59+00:00)."
        },
    )
