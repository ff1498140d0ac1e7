"""Generated menus for the benchmark: many items, modifiers nested and shared.

A generated menu is `depth` layers of items. The first layer holds the menu entries;
every item of a layer has `fan_out` modifiers from the next layer, and each lower layer
is smaller than the one above, so every modifier is shared by several parents (the way
one "Choose your side" group serves every burger).
"""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from presto.storage.links import insert_links, link_rows
from presto.storage.models import Item, Restaurant

LAYER_NAMES = ("Dish", "Choice group", "Option", "Extra")


def layer_sizes(items: int, depth: int, fan_out: int) -> list[int]:
    """Items per layer: half of what is left on each layer, the rest on the last one."""
    if depth < 1 or items < depth * fan_out:
        raise ValueError(f"{items} items cannot fill {depth} layers with fan-out {fan_out}")
    sizes = []
    remaining = items
    for _ in range(depth - 1):
        size = max(fan_out, remaining // 2)
        sizes.append(size)
        remaining -= size
    if remaining < fan_out:
        raise ValueError(f"{items} items leave too few for the last of {depth} layers")
    sizes.append(remaining)
    return sizes


def generate_menu(session: Session, *, items: int = 2000, depth: int = 4, fan_out: int = 2) -> int:
    """Insert a restaurant with a generated menu of `items` items; returns its id.

    Each menu entry carries `fan_out ** (depth - 1)` items at the deepest level; the
    caller commits.
    """
    restaurant = Restaurant(name=f"Generated menu of {items} items", currency="USD")
    session.add(restaurant)
    session.flush()
    layers: list[list[Item]] = []
    position = itertools.count()
    for level, size in enumerate(layer_sizes(items, depth, fan_out)):
        name = LAYER_NAMES[min(level, len(LAYER_NAMES) - 1)]
        layer = [
            Item(
                restaurant_id=restaurant.id,
                name=f"{name} {n + 1}",
                description=f"{name} {n + 1} of a generated menu, for the benchmark.",
                category=f"Category {n % 12 + 1}" if level == 0 else None,
                price=(n * 37) % 2000 + (500 if level == 0 else 0),
                standalone=level == 0,
                # Middle layers are choice groups: pick one of their modifiers.
                min_choices=1 if 0 < level < depth - 1 else 0,
                max_choices=1 if 0 < level < depth - 1 else None,
                position=next(position),
            )
            for n in range(size)
        ]
        session.add_all(layer)
        layers.append(layer)
    session.flush()
    rows = [
        row
        for upper, lower in itertools.pairwise(layers)
        for n, parent in enumerate(upper)
        for row in link_rows(
            restaurant.id,
            parent.id,
            (lower[(n * fan_out + k) % len(lower)].id for k in range(fan_out)),
        )
    ]
    insert_links(session, rows)
    return restaurant.id
