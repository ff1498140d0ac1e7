"""Query strings: the menu call's filters and shape, a list's page, a menu import's mode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from webargs.fields import DelimitedList

from presto.schema_fields import QueryBoolean, Text
from presto.schemas.values import external_id_field
from presto.services.dietary import ALLERGENS, TAGS
from presto.services.limits import MAX_PAGE, MAX_PAGE_SIZE
from presto.storage.models import CATEGORY_LENGTH


class MenuQuerySchema(Schema):
    """Query string of `GET /restaurant/<id>/item`."""

    class Meta:
        unknown = RAISE

    # False (default): menu entries only. True: every item, modifier-only ones too.
    all = QueryBoolean(
        load_default=False,
        metadata={"description": "Also list modifier-only items (standalone false)."},
    )
    available = QueryBoolean(metadata={"description": "Only items whose availability is this."})
    category = Text(
        validate=validate.Length(1, CATEGORY_LENGTH),
        metadata={"description": "Only items of this category."},
    )
    at = fields.AwareDateTime(
        format="iso",
        validate=validate.Range(
            min=datetime(1970, 1, 1, tzinfo=UTC), max=datetime(9000, 1, 1, tzinfo=UTC)
        ),
        metadata={
            "description": "Show the menu as at this RFC 3339 time (with offset) instead "
            "of now: availability follows the schedules then."
        },
    )
    tags = DelimitedList(
        fields.String(validate=validate.OneOf(TAGS)),
        validate=validate.Length(min=1, max=len(TAGS)),
        metadata={"description": "Only items carrying every one of these tags (comma list)."},
    )
    exclude_allergens = DelimitedList(
        fields.String(validate=validate.OneOf(ALLERGENS)),
        validate=validate.Length(min=1, max=len(ALLERGENS)),
        metadata={
            "description": "Only items that contain none of these allergens, counting "
            "choices that a required group forces (comma list)."
        },
    )
    external_id = external_id_field("Only the item with this external id (`all` applies).")
    shape = fields.String(
        load_default="nested",
        validate=validate.OneOf(["nested", "normalized"]),
        metadata={
            "description": "nested (default): an array of items with modifiers nested. "
            "normalized: a NormalizedMenu object, each item once, modifiers by id; for very "
            "large menus."
        },
    )


class PageQuerySchema(Schema):
    """Query string of a list endpoint: which page, and how many entries a page holds."""

    class Meta:
        unknown = RAISE

    page = fields.Integer(load_default=1, validate=validate.Range(1, MAX_PAGE))
    page_size = fields.Integer(load_default=20, validate=validate.Range(1, MAX_PAGE_SIZE))


class MenuImportQuerySchema(Schema):
    """Query string of `PUT /restaurant/<id>/menu`."""

    class Meta:
        unknown = RAISE

    match = fields.String(
        validate=validate.OneOf(["external_id"]),
        metadata={
            "description": "external_id: a sync import. Items are matched to the stored ones "
            "by `external_id` and keep their ids; left out: the document replaces the menu."
        },
    )
    prune = QueryBoolean(
        metadata={
            "description": "With `match`: false keeps stored items the document leaves out "
            "(default true: they are deleted)."
        }
    )

    @validates_schema
    def _prune_needs_match(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "prune" in data and "match" not in data:
            raise ValidationError("Only with match=external_id.", "prune")
