"""marshmallow schemas: the JSON shape of items, restaurants and menu documents, and what
requests may send.

An item's `modifiers` are items of the same shape, to any depth. The modifier graph is
shared (ketchup belongs to many items) and may, in bad data, hold a cycle, so
`ModifierList` serializes each distinct subtree once per dump, reuses it wherever it
appears again, drops a modifier that would repeat an item already on the path from the
top-level item (a cycle), and stops nesting at `MAX_MODIFIER_DEPTH` levels.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema

from presto.services.items import choices_rule_broken
from presto.services.limits import (
    MAX_ITEMS_PER_RESTAURANT,
    MAX_MODIFIER_DEPTH,
    MAX_MODIFIERS_PER_ITEM,
)
from presto.storage.models import (
    CATEGORY_LENGTH,
    DESCRIPTION_LENGTH,
    MAX_PRICE,
    NAME_LENGTH,
    Item,
)

log = logging.getLogger(__name__)


@dataclass
class _TreeState:
    """Book-keeping for one dump of an item tree."""

    # item id -> (serialized subtree, height); only subtrees that nothing was cut from.
    done: dict[int, tuple[dict[str, Any], int]] = field(default_factory=dict)
    path: list[int] = field(default_factory=list)
    on_path: set[int] = field(default_factory=set)
    # Set when anything below the subtree being serialized was cut (cycle or depth).
    cut: bool = False
    # Height of the subtree serialized last (0: an item without modifiers).
    height: int = 0


_tree_state: contextvars.ContextVar[_TreeState | None] = contextvars.ContextVar(
    "presto_tree_state", default=None
)


class ModifierList(fields.List):
    """`List(Nested(ItemSchema))` that serializes shared subtrees once and cuts cycles."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        state = _tree_state.get()
        if state is None or value is None:  # pragma: no cover - ItemSchema.dump sets it
            return super()._serialize(value, attr, obj, **kwargs)
        if len(state.path) >= MAX_MODIFIER_DEPTH:
            if value:
                state.cut = True
            state.height = 0
            return []
        state.path.append(obj.id)
        state.on_path.add(obj.id)
        result: list[dict[str, Any]] = []
        height = 0
        try:
            for modifier in value:
                if modifier.id in state.on_path:
                    log.warning(
                        "modifier cycle: item %s reaches item %s again; link left out",
                        obj.id,
                        modifier.id,
                    )
                    state.cut = True
                    continue
                done = state.done.get(modifier.id)
                # A finished subtree is reused only where it still fits under the depth cap.
                if done is not None and len(state.path) + done[1] <= MAX_MODIFIER_DEPTH:
                    dumped, child_height = done
                else:
                    cut_before, state.cut = state.cut, False
                    dumped = self.inner._serialize(modifier, attr, obj, **kwargs)
                    child_height = state.height
                    if not state.cut:
                        state.done[modifier.id] = (dumped, child_height)
                    state.cut = state.cut or cut_before
                result.append(dumped)
                height = max(height, child_height + 1)
        finally:
            state.path.pop()
            state.on_path.discard(obj.id)
        state.height = height
        return result


class ItemSchema(SQLAlchemyAutoSchema):
    """An item as the menu call returns it, with its modifiers nested to any depth."""

    class Meta:
        model = Item
        fields: tuple[str, ...] = (
            "id",
            "name",
            "description",
            "category",
            "price",
            "currency",
            "available",
            "standalone",
            "min_choices",
            "max_choices",
            "modifiers",
        )
        unknown = RAISE

    currency = fields.String(attribute="restaurant.currency", dump_only=True)
    modifiers: fields.Field = ModifierList(fields.Nested(lambda: ItemSchema()), dump_only=True)

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """Dump with fresh tree book-keeping unless a dump of a parent item is under way.

        A list of items shares that book-keeping, so an item that is both a menu entry
        and someone's modifier (fries, a side salad) is serialized once too.
        """
        if _tree_state.get() is not None:
            return super().dump(obj, many=many)
        state = _TreeState()
        token = _tree_state.set(state)
        try:
            if not (self.many if many is None else many):
                return super().dump(obj, many=False)
            result = []
            for item in obj:
                done = state.done.get(item.id)
                if done is None:
                    state.cut = False
                    dumped = super().dump(item, many=False)
                    if not state.cut:
                        state.done[item.id] = (dumped, state.height)
                    done = (dumped, state.height)
                result.append(done[0])
            return result
        finally:
            _tree_state.reset(token)


class ModifierIds(fields.List):
    """An item's modifiers as their ids, in order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Integer(), **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return [modifier.id for modifier in value]


class NormalizedItemSchema(ItemSchema):
    """An item of the normalized menu: its modifiers by id instead of nested."""

    modifiers = ModifierIds(
        dump_only=True, metadata={"description": "Ids of the modifiers, in order."}
    )


class NormalizedMenuSchema(Schema):
    """The menu call with `shape=normalized`: each item once, modifiers by reference."""

    entries = fields.List(
        fields.Integer(),
        metadata={"description": "Ids of the menu entries, in menu order."},
    )
    items = fields.List(
        fields.Nested(NormalizedItemSchema),
        metadata={"description": "Every entry and every item reachable from them, once."},
    )


class ItemDetailSchema(ItemSchema):
    """One item as its own resource: the menu call's shape plus its menu position."""

    class Meta(ItemSchema.Meta):
        fields: tuple[str, ...] = (*ItemSchema.Meta.fields, "position")


class MenuQuerySchema(Schema):
    """Query string of `GET /restaurant/<id>/item`."""

    class Meta:
        unknown = RAISE

    # False (default): menu entries only. True: every item, modifier-only ones too.
    all = fields.Boolean(
        load_default=False,
        metadata={"description": "Also list modifier-only items (standalone false)."},
    )
    available = fields.Boolean(metadata={"description": "Only items whose availability is this."})
    category = fields.String(
        validate=validate.Length(1, CATEGORY_LENGTH),
        metadata={"description": "Only items of this category."},
    )
    shape = fields.String(
        load_default="nested",
        validate=validate.OneOf(["nested", "normalized"]),
        metadata={
            "description": "nested (default): an array of items with modifiers nested. "
            "normalized: a NormalizedMenu object, each item once, modifiers by id; for very "
            "large menus."
        },
    )


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _name(*, required: bool = False) -> fields.String:
    """A restaurant's or an item's name: 1 to `NAME_LENGTH` characters, not blank."""
    return fields.String(required=required, validate=[validate.Length(1, NAME_LENGTH), _not_blank])


def _no_duplicates(values: list[Any]) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValidationError(f"{value} appears more than once.")
        seen.add(value)


class RestaurantSchema(Schema):
    """A restaurant; `currency` is the ISO 4217 code all its prices are in."""

    class Meta:
        unknown = RAISE

    id = fields.Integer(dump_only=True)
    name = _name(required=True)
    currency = fields.String(
        validate=validate.Regexp(r"^[A-Z]{3}\Z", error="Must be an ISO 4217 code such as USD."),
        metadata={"description": "ISO 4217 code; prices are in its minor unit. Default USD."},
    )


class RestaurantPatchSchema(RestaurantSchema):
    """The restaurant fields a `PATCH` may change; every one is optional."""

    name = _name()


class ItemPatchSchema(Schema):
    """The item fields a `PATCH` may change; every one is optional."""

    class Meta:
        unknown = RAISE

    name = _name()
    description = fields.String(validate=validate.Length(max=DESCRIPTION_LENGTH))
    category = fields.String(allow_none=True, validate=validate.Length(1, CATEGORY_LENGTH))
    price = fields.Integer(
        strict=True,
        validate=validate.Range(0, MAX_PRICE),
        metadata={"description": "Integer minor units of the restaurant's currency."},
    )
    available = fields.Boolean()
    standalone = fields.Boolean(
        metadata={"description": "True for a menu entry, false for a modifier-only item."}
    )
    min_choices = fields.Integer(strict=True, validate=validate.Range(0, MAX_MODIFIERS_PER_ITEM))
    max_choices = fields.Integer(
        strict=True,
        allow_none=True,
        validate=validate.Range(0, MAX_MODIFIERS_PER_ITEM),
        metadata={"description": "Null: no upper limit."},
    )
    position = fields.Integer(
        strict=True,
        validate=validate.Range(0, 1_000_000),
        metadata={"description": "Menu order (ties broken by id). Default: after the last."},
    )

    @validates_schema
    def _min_not_above_max(self, data: dict[str, Any], **_kwargs: Any) -> None:
        broken = choices_rule_broken(data.get("min_choices"), data.get("max_choices"))
        if broken:
            raise ValidationError(broken, "max_choices")


class ItemCreateSchema(ItemPatchSchema):
    """A new item; only `name` is required."""

    name = _name(required=True)


class ModifierIdsSchema(Schema):
    """The body of `PUT .../modifiers`: a JSON array of item ids, in order.

    marshmallow loads objects, so the array is wrapped as `modifiers` on the way in and
    unwrapped on the way out; errors name the `modifiers` field.
    """

    class Meta:
        unknown = RAISE

    modifiers = fields.List(
        fields.Integer(strict=True),
        required=True,
        validate=[validate.Length(max=MAX_MODIFIERS_PER_ITEM), _no_duplicates],
    )

    @pre_load
    def _wrap(self, data: Any, **_kwargs: Any) -> dict[str, Any]:
        if not isinstance(data, list):
            raise ValidationError("The body must be a JSON array of item ids.", "modifiers")
        return {"modifiers": data}

    @post_load
    def _unwrap(self, data: dict[str, Any], **_kwargs: Any) -> list[int]:
        modifiers: list[int] = data["modifiers"]
        return modifiers


class DocumentItemSchema(ItemCreateSchema):
    """An item of a menu document; `id` names it within the document only."""

    class Meta(ItemCreateSchema.Meta):
        exclude = ("position",)

    id = fields.Integer(required=True, strict=True)
    modifiers = fields.List(
        fields.Integer(strict=True),
        load_default=list,
        validate=[validate.Length(max=MAX_MODIFIERS_PER_ITEM), _no_duplicates],
        metadata={"description": "Ids of this document's items, in order."},
    )


class MenuDocumentSchema(Schema):
    """A restaurant's whole menu: every item in menu order, modifiers by document id."""

    class Meta:
        unknown = RAISE

    items = fields.List(
        fields.Nested(DocumentItemSchema),
        required=True,
        validate=validate.Length(max=MAX_ITEMS_PER_RESTAURANT),
    )

    @validates_schema
    def _references(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors: dict[int, dict[str, Any]] = {}
        ids: set[int] = set()
        for index, item in enumerate(data["items"]):
            if item["id"] in ids:
                errors[index] = {"id": [f"Id {item['id']} appears more than once."]}
            ids.add(item["id"])
        for index, item in enumerate(data["items"]):
            missing = {
                position: [f"No item of this document has id {modifier_id}."]
                for position, modifier_id in enumerate(item["modifiers"])
                if modifier_id not in ids
            }
            if missing:
                errors.setdefault(index, {})["modifiers"] = missing
        if errors:
            raise ValidationError({"items": errors})


class HealthSchema(Schema):
    """The answer of `/healthz` and `/readyz` when all is well."""

    status = fields.String(metadata={"description": "`alive` or `ready`."})
    database = fields.String(metadata={"description": "`/readyz`: `ok`."})
    schema = fields.String(metadata={"description": "`/readyz`: the migration revision."})


class LandingSchema(Schema):
    """What `GET /` says: which service this is and where to read more."""

    service = fields.String()
    version = fields.String()
    links = fields.Dict(keys=fields.String(), values=fields.String())
