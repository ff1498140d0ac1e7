"""marshmallow schemas: the JSON shape of items and the query string of the menu call.

An item's ``modifiers`` are items of the same shape, to any depth. The modifier graph is
shared (ketchup belongs to many items) and may, in bad data, hold a cycle, so
``ModifierList`` serializes each distinct subtree once per dump, reuses it wherever it
appears again, drops a modifier that would repeat an item already on the path from the
top-level item (a cycle), and stops nesting at ``MAX_MODIFIER_DEPTH`` levels.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

from marshmallow import RAISE, Schema, fields
from marshmallow_sqlalchemy import SQLAlchemyAutoSchema

from presto.models import Item

# Deepest nesting of modifiers below a top-level item in a response. Uber Eats allows 6
# levels; 8 leaves room while bounding the work a bad graph can cause.
MAX_MODIFIER_DEPTH = 8

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
    """``List(Nested(ItemSchema))`` that serializes shared subtrees once and cuts cycles."""

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
        fields = (
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
    modifiers = ModifierList(fields.Nested(lambda: ItemSchema()), dump_only=True)

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        """Dump with fresh tree book-keeping unless a dump of a parent item is under way."""
        if _tree_state.get() is not None:
            return super().dump(obj, many=many)
        token = _tree_state.set(_TreeState())
        try:
            return super().dump(obj, many=many)
        finally:
            _tree_state.reset(token)


class MenuQuerySchema(Schema):
    """Query string of ``GET /restaurant/<id>/item``."""

    class Meta:
        unknown = RAISE

    # False (default): menu entries only. True: every item, modifier-only ones too.
    all = fields.Boolean(load_default=False)
