"""Dietary tags and allergens: the vocabularies, and what an item unavoidably contains.

Tags say what an item is (`vegan`, `spicy`); allergens are the 14 the EU regulates
(Regulation (EU) No 1169/2011, Annex II). Both come from fixed vocabularies so that a
front end can show an icon for each and a filter means the same on every menu.

An item contains its own allergens and those it cannot be ordered without: a modifier
with `min_choices` > 0 is a required group (the guest must pick from it), so an allergen
that every choice of a required group contains is in the item that offers the group. The
rule applies at every depth; a group none of whose choices is left has none to force.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from presto.storage.models import Item

TAGS = (
    "vegetarian",
    "vegan",
    "pescatarian",
    "gluten_free",
    "dairy_free",
    "nut_free",
    "halal",
    "kosher",
    "organic",
    "spicy",
    "contains_alcohol",
    "contains_caffeine",
)

ALLERGENS = (
    "celery",
    "gluten",
    "crustaceans",
    "eggs",
    "fish",
    "lupin",
    "milk",
    "molluscs",
    "mustard",
    "nuts",
    "peanuts",
    "sesame",
    "soybeans",
    "sulphites",
)


def has_tags(item: Item, tags: Collection[str]) -> bool:
    """Whether the item carries every one of `tags`."""
    return all(tag in item.tags for tag in tags)


def unavoidable_allergens(item: Item, memo: dict[int, frozenset[str]]) -> frozenset[str]:
    """The item's allergens with those of its required groups' choices (see module doc).

    `memo` holds results by item id across calls of one menu; a modifier cycle in bad data
    counts the repeated item's own allergens only.
    """
    return _unavoidable(item, memo, set())


def _unavoidable(item: Item, memo: dict[int, frozenset[str]], path: set[int]) -> frozenset[str]:
    found = memo.get(item.id)
    if found is not None:
        return found
    if item.id in path:
        return frozenset(item.allergens)
    path.add(item.id)
    allergens = set(item.allergens)
    if item.min_choices > 0:
        allergens |= _in_every(item.modifiers, memo, path)
    for group in item.modifiers:
        if group.min_choices > 0 and group.id not in path:
            allergens |= _unavoidable(group, memo, path)
    path.discard(item.id)
    result = frozenset(allergens)
    memo[item.id] = result
    return result


def _in_every(choices: Sequence[Item], memo: dict[int, frozenset[str]], path: set[int]) -> set[str]:
    """The allergens every one of `choices` contains (none when there are no choices)."""
    if not choices:
        return set()
    common = set(_unavoidable(choices[0], memo, path))
    for choice in choices[1:]:
        common &= _unavoidable(choice, memo, path)
    return common


def free_of(item: Item, allergens: Collection[str], memo: dict[int, frozenset[str]]) -> bool:
    """Whether the item unavoidably contains none of `allergens`."""
    return not unavoidable_allergens(item, memo).intersection(allergens)
