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
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

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
from webargs.fields import DelimitedList

from presto.errors import TooLargeToRenderError
from presto.schema_fields import QueryBoolean, StrictBoolean, StrictInteger, Text
from presto.services import graph, schedules
from presto.services.dietary import ALLERGENS, TAGS
from presto.services.items import choices_rule_broken
from presto.services.limits import (
    MAX_BATCH_CHANGES,
    MAX_ITEMS_PER_RESTAURANT,
    MAX_MODIFIER_DEPTH,
    MAX_MODIFIERS_PER_ITEM,
    MAX_PAGE,
    MAX_PAGE_SIZE,
)
from presto.services.menu_view import link_terms, shown_available, shown_sold_out
from presto.services.menus import modifier_graph
from presto.services.sold_out import UNTIL_FURTHER_NOTICE
from presto.storage.links import ModifierLink
from presto.storage.models import (
    CATEGORY_LENGTH,
    DESCRIPTION_LENGTH,
    EXTERNAL_ID_LENGTH,
    IMAGE_URL_LENGTH,
    MAX_ID,
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
                result.append(_in_context(dumped, link_terms(obj, modifier.id)))
                height = max(height, child_height + 1)
        finally:
            state.path.pop()
            state.on_path.discard(obj.id)
        state.height = height
        return result


def _in_context(dumped: dict[str, Any], terms: ModifierLink) -> dict[str, Any]:
    """A serialized modifier as its parent offers it: the link's price and default."""
    if terms.price is None and not terms.is_default:
        return dumped
    price = dumped["price"] if terms.price is None else terms.price
    return {**dumped, "price": price, "is_default": terms.is_default}


class WindowSchema(Schema):
    """A weekly window of an item's schedule, in the restaurant's local time."""

    class Meta:
        unknown = RAISE

    days = fields.List(
        fields.String(validate=validate.OneOf(schedules.DAYS)),
        required=True,
        validate=validate.Length(1, len(schedules.DAYS)),
        metadata={"description": "Days the window opens on: mon, tue, ... sun."},
    )
    start = fields.String(
        required=True, metadata={"description": "Local opening time HH:MM.", "example": "07:00"}
    )
    end = fields.String(
        required=True,
        metadata={
            "description": "Local closing time HH:MM (24:00: midnight); at or before start: "
            "the next day.",
            "example": "11:00",
        },
    )

    @validates_schema
    def _window(self, data: dict[str, Any], **_kwargs: Any) -> None:
        errors = schedules.window_errors(data)
        if errors:
            raise ValidationError(errors)


_HTTPS_URL = validate.URL(schemes={"https"}, require_tld=True)
# RFC 3986: no spaces or control characters in a URL; anything else is percent-encoded.
_URL_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def _https_url(value: str) -> None:
    """An absolute https URL with a host name, in URL characters only."""
    try:
        if not _URL_CHARACTERS.fullmatch(value):
            raise ValidationError("")
        _HTTPS_URL(value)
    except ValidationError as error:
        raise ValidationError("Must be an absolute https URL.") from error


def _vocabulary(words: tuple[str, ...], what: str) -> fields.List:
    """A list of distinct words of a fixed vocabulary."""
    return fields.List(
        fields.String(validate=validate.OneOf(words)),
        validate=[validate.Length(max=len(words)), _no_duplicates],
        metadata={"description": f"{what}: any of {', '.join(words)}."},
    )


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _printable(value: str) -> None:
    if not value.isprintable():
        raise ValidationError("Must be printable characters only (no control characters).")


def external_id_field(description: str, **kwargs: Any) -> fields.String:
    """An integrator's own key of a row (a POS PLU, SKU or GUID): 1 to
    `EXTERNAL_ID_LENGTH` printable characters, not blank."""
    return Text(
        validate=[validate.Length(1, EXTERNAL_ID_LENGTH), _printable, _not_blank],
        metadata={"description": description},
        **kwargs,
    )


class Instant(fields.AwareDateTime):
    """An RFC 3339 instant with an offset, from 1970 to `UNTIL_FURTHER_NOTICE`, kept to the
    whole second rounded up (the unit of the menu's validity and its `ETag`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            format="iso",
            validate=validate.Range(min=datetime(1970, 1, 1, tzinfo=UTC), max=UNTIL_FURTHER_NOTICE),
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        instant: datetime = super()._deserialize(value, attr, data, **kwargs)
        if instant.microsecond and instant < UNTIL_FURTHER_NOTICE:
            instant = instant.replace(microsecond=0) + timedelta(seconds=1)
        return instant.astimezone(UTC)


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
            "is_default",
            "available",
            "standalone",
            "min_choices",
            "max_choices",
            "schedule",
            "image_url",
            "tags",
            "allergens",
            "calories",
            "external_id",
            "sold_out",
            "sold_out_until",
            "modifiers",
        )
        unknown = RAISE

    currency = fields.String(attribute="restaurant.currency", dump_only=True)
    price = fields.Integer(
        dump_only=True,
        metadata={"description": "Minor units; in a modifier, its price in this parent."},
    )
    is_default = fields.Constant(
        False,
        dump_only=True,
        metadata={
            "type": "boolean",
            "description": "A pre-selected choice of its parent; false at top level.",
        },
    )
    available = fields.Function(
        shown_available,
        dump_only=True,
        metadata={
            "type": "boolean",
            "description": "The item's flag, not sold out and, if it has a schedule, inside "
            "a window now (or at `at`).",
        },
    )
    schedule = fields.List(fields.Nested(WindowSchema), dump_only=True)
    image_url = fields.String(dump_only=True, allow_none=True)
    tags = fields.List(fields.String(validate=validate.OneOf(TAGS)), dump_only=True)
    allergens = fields.List(fields.String(validate=validate.OneOf(ALLERGENS)), dump_only=True)
    calories = fields.Integer(dump_only=True, allow_none=True)
    external_id = fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The item's id in the integrator's system; null: none."},
    )
    sold_out = fields.Function(
        shown_sold_out,
        dump_only=True,
        metadata={
            "type": "boolean",
            "description": "Sold out now (or at `at`): `sold_out_until` is later; then "
            "`available` is false.",
        },
    )
    sold_out_until = fields.AwareDateTime(
        format="iso",
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "The instant a sold-out item is offered again (9999-12-31T23:59:59"
            "+00:00: until further notice); null: not sold out."
        },
    )
    modifiers: fields.Field = ModifierList(fields.Nested(lambda: ItemSchema()), dump_only=True)
    # False where modifiers are ids, not nested items: nothing to expand.
    nests_modifiers: ClassVar[bool] = True

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """Dump with fresh tree book-keeping unless a dump of a parent item is under way.

        A list of items shares that book-keeping, so an item that is both a menu entry
        and someone's modifier (fries, a side salad) is serialized once too.
        """
        if _tree_state.get() is not None:
            return super().dump(obj, many=many)
        many = self.many if many is None else many
        if self.nests_modifiers:
            _check_renderable(list(obj) if many else [obj])
        state = _TreeState()
        token = _tree_state.set(state)
        try:
            if not many:
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


def _check_renderable(entries: list[Item]) -> None:
    """Refuse (`TooLargeToRenderError`) to nest more than `MAX_MENU_OBJECTS` item objects,
    whatever the database holds: writes keep menus within it, plain SQL may not."""
    try:
        graph.check_renderable(modifier_graph(entries), [item.id for item in entries])
    except TooLargeToRenderError as error:
        log.warning("restaurant %s: not rendered: %s", entries[0].restaurant_id, error.detail)
        raise


class ModifierIds(fields.List):
    """An item's modifiers as their ids, in order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Integer(), **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return [modifier.id for modifier in value]


class ModifierTerms(fields.Field):
    """The links of an item whose price or default differ from the modifier's own."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        found = []
        for modifier in obj.modifiers:
            terms = link_terms(obj, modifier.id)
            if terms.price is not None or terms.is_default:
                price = modifier.price if terms.price is None else terms.price
                found.append({"id": modifier.id, "price": price, "is_default": terms.is_default})
        return found


class NormalizedItemSchema(ItemSchema):
    """An item of the normalized menu: its modifiers by id instead of nested."""

    class Meta(ItemSchema.Meta):
        fields: tuple[str, ...] = (*ItemSchema.Meta.fields, "modifier_terms")

    modifiers = ModifierIds(
        dump_only=True, metadata={"description": "Ids of the modifiers, in order."}
    )
    nests_modifiers = False
    modifier_terms = ModifierTerms(
        attribute="id",
        dump_only=True,
        metadata={
            "description": "Modifiers whose `price` (effective) or `is_default` in this item "
            "differ from the modifier's own.",
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "price": {"type": "integer"},
                    "is_default": {"type": "boolean"},
                },
            },
        },
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


def _name(*, required: bool = False) -> fields.String:
    """A restaurant's or an item's name: 1 to `NAME_LENGTH` characters, not blank."""
    return Text(required=required, validate=[validate.Length(1, NAME_LENGTH), _not_blank])


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

    name = _name()


class ItemPatchSchema(Schema):
    """The item fields a `PATCH` may change; every one is optional."""

    class Meta:
        unknown = RAISE

    name = _name()
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
            _https_url,
        ],
        metadata={"description": "Absolute https URL of a picture of the item."},
    )
    tags = _vocabulary(TAGS, "Dietary tags")
    allergens = _vocabulary(ALLERGENS, "EU allergens")
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

    name = _name(required=True)


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


class BatchSchema(Schema):
    """The body of `PATCH /restaurant/<id>/items`: partial updates of many items."""

    class Meta:
        unknown = RAISE

    items = fields.List(
        fields.Nested(BatchChangeSchema),
        required=True,
        validate=validate.Length(1, MAX_BATCH_CHANGES),
        metadata={"description": "The changes, applied in this order, all or nothing."},
    )


class BatchEntrySchema(Schema):
    """One change's item after a batch."""

    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    version = fields.Integer(metadata={"description": "The item's version after the batch."})
    changed = fields.Boolean(metadata={"description": "False: it already had those values."})


class BatchResultSchema(Schema):
    """What a batch did: each change's item, in order, and the menu version it left."""

    menu_version = fields.Integer()
    updated = fields.Function(
        lambda outcome: sum(entry.changed for entry in outcome.items),
        metadata={"type": "integer", "description": "Items the batch changed."},
    )
    unchanged = fields.Function(
        lambda outcome: sum(not entry.changed for entry in outcome.items),
        metadata={"type": "integer", "description": "Items that already had those values."},
    )
    items = fields.List(fields.Nested(BatchEntrySchema))


class LinkSchema(Schema):
    """A modifier with its terms in one parent."""

    class Meta:
        unknown = RAISE

    id = StrictInteger(required=True)
    price = StrictInteger(allow_none=True, validate=validate.Range(0, MAX_PRICE))
    is_default = StrictBoolean()

    @post_load
    def _link(self, data: dict[str, Any], **_kwargs: Any) -> ModifierLink:
        return ModifierLink(data["id"], data.get("price"), data.get("is_default", False))


_link_schema = LinkSchema()


def link_doc(minimum: int) -> dict[str, Any]:
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


class ModifierRef(fields.Field):
    """A modifier in a parent's list: its id, or `{"id", "price", "is_default"}`.

    Loads as a `ModifierLink`; dumps as the bare id when the link has no terms, so a
    document without link terms reads as it always did.
    """

    def __init__(self, *, minimum: int = 1, **kwargs: Any) -> None:
        super().__init__(metadata=link_doc(minimum), **kwargs)
        self.minimum = minimum

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            link = ModifierLink(value)
        elif isinstance(value, dict):
            link = _link_schema.load(value)
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
    _no_duplicates([link.modifier_id for link in links])


def _modifier_refs(*, minimum: int = 1, **kwargs: Any) -> fields.List:
    """An ordered list of modifiers, each an id (from `minimum`) or an object with its
    terms."""
    return fields.List(
        ModifierRef(minimum=minimum),
        validate=[validate.Length(max=MAX_MODIFIERS_PER_ITEM), _no_duplicate_links],
        **kwargs,
    )


class ModifierIdsSchema(Schema):
    """The body of `PUT .../modifiers`: a JSON array of item ids (or of objects with an
    id, a `price` in this parent and `is_default`), in order.

    marshmallow loads objects, so the array is wrapped as `modifiers` on the way in and
    unwrapped on the way out; errors name the `modifiers` field.
    """

    class Meta:
        unknown = RAISE

    modifiers = _modifier_refs(required=True)

    @pre_load
    def _wrap(self, data: Any, **_kwargs: Any) -> dict[str, Any]:
        if not isinstance(data, list):
            raise ValidationError("The body must be a JSON array of item ids.", "modifiers")
        return {"modifiers": data}

    @post_load
    def _unwrap(self, data: dict[str, Any], **_kwargs: Any) -> list[ModifierLink]:
        modifiers: list[ModifierLink] = data["modifiers"]
        return modifiers


def _document_id(**kwargs: Any) -> StrictInteger:
    """An id naming an item within one menu document: 0 to `MAX_ID`, like an item id."""
    return StrictInteger(validate=validate.Range(0, MAX_ID), **kwargs)


class DocumentItemSchema(ItemCreateSchema):
    """An item of a menu document; `id` names it within the document only."""

    class Meta(ItemCreateSchema.Meta):
        exclude = ("position",)

    id = _document_id(required=True)
    # Left out: none (a sync import by external id: the item's stored ones).
    modifiers = _modifier_refs(minimum=0)


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


class SoldOutSchema(Schema):
    """The body of `PUT .../sold-out`: until when the item is sold out."""

    class Meta:
        unknown = RAISE

    until = Instant(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "RFC 3339 instant with an offset when the item is offered again; "
            "null or left out: until further notice (9999-12-31T23:59:59+00:00)."
        },
    )


class SoldOutStateSchema(Schema):
    """What a sold-out call answers: the item's sold-out state, without loading the menu."""

    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    sold_out = fields.Function(shown_sold_out, metadata={"type": "boolean"})
    sold_out_until = fields.AwareDateTime(format="iso", allow_none=True)


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


class MenuImportResultSchema(MenuDocumentSchema):
    """What an import answers: the menu as stored now, and what the import did to it."""

    created = fields.Integer(dump_only=True, metadata={"description": "Items created."})
    updated = fields.Integer(dump_only=True, metadata={"description": "Items matched and changed."})
    deleted = fields.Integer(dump_only=True, metadata={"description": "Items deleted."})
    unchanged = fields.Integer(
        dump_only=True, metadata={"description": "Items matched that already were so."}
    )


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
