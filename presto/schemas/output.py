"""What answers hold: the item as the menu call and the item resources return it, the
normalized menu, and the results of a batch and of a sold-out call.

An item's `modifiers` are items of the same shape, to any depth. The modifier graph is
shared (ketchup belongs to many items) and may, in bad data, hold a cycle, so
`NestedModifiers` (the rendering walk) serializes each distinct subtree once per dump,
reuses it wherever it appears again, drops a modifier that would repeat an item already on
the path from the top-level item (a cycle), and stops nesting at `MAX_MODIFIER_DEPTH`
levels. The
normalized shape lists modifiers as ids (`ModifierIdList`) and the links whose terms
differ from the modifier's own (`ModifierLinksWithTerms`); see `presto.schemas.links` for
the words.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from marshmallow import RAISE, Schema, fields, validate
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema

from presto.errors import TooLargeToRenderError
from presto.schemas.values import WindowSchema
from presto.services import graph
from presto.services.dietary import ALLERGENS, TAGS
from presto.services.limits import MAX_MODIFIER_DEPTH
from presto.services.menu_view import link_terms, shown_available, shown_sold_out
from presto.services.menus import modifier_graph
from presto.storage.links import ModifierLink
from presto.storage.models import ITEM_FIELDS, Item

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


class NestedModifiers(fields.List):
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


# What an answer shows beside the fields an item's writer sets (`ITEM_FIELDS`), placed
# after the written field named here: the item's keys in the order every answer has them.
_SHOWN_AFTER = {"price": ("currency", "is_default"), "external_id": ("sold_out",)}
ITEM_KEYS: tuple[str, ...] = (
    "id",
    *(key for name in ITEM_FIELDS for key in (name, *_SHOWN_AFTER.get(name, ()))),
    "modifiers",
)


class ItemSchema(SQLAlchemyAutoSchema):
    """An item as the menu call returns it, with its modifiers nested to any depth."""

    class Meta:
        model = Item
        fields: tuple[str, ...] = ITEM_KEYS
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
    modifiers: fields.Field = NestedModifiers(fields.Nested(lambda: ItemSchema()), dump_only=True)
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


class ModifierIdList(fields.List):
    """An item's modifiers as their ids, in order."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(fields.Integer(), **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        return [modifier.id for modifier in value]


class ModifierLinksWithTerms(fields.Field):
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

    modifiers = ModifierIdList(
        dump_only=True, metadata={"description": "Ids of the modifiers, in order."}
    )
    nests_modifiers = False
    modifier_terms = ModifierLinksWithTerms(
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


class SoldOutStateSchema(Schema):
    """What a sold-out call answers: the item's sold-out state, without loading the menu."""

    id = fields.Integer()
    external_id = fields.String(allow_none=True)
    sold_out = fields.Function(shown_sold_out, metadata={"type": "boolean"})
    sold_out_until = fields.AwareDateTime(format="iso", allow_none=True)
