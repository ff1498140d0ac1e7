"""A loaded menu's body: the menu call's JSON in the shape asked for, as the schemas define
it (`presto.schemas.output`, whose walk nests shared modifiers once and cuts cycles)."""

from __future__ import annotations

from typing import Any

import orjson

from presto.schemas.output import ItemSchema, NormalizedMenuSchema
from presto.services import menus

_item_schema = ItemSchema()
_normalized_schema = NormalizedMenuSchema()


def render_menu(loaded: menus.Menu, shape: str) -> bytes:
    """The menu call's body in the requested shape, as the schemas define it."""
    value: Any
    if shape == "normalized":
        value = _normalized_schema.dump(
            {
                "entries": [item.id for item in loaded.items],
                "items": menus.reachable_items(loaded.items),
            }
        )
    else:
        value = _item_schema.dump(loaded.items, many=True)
    return orjson.dumps(value)
