"""Rules of the modifier graph, checked over a whole restaurant before any link is written.

The graph maps an item to its modifiers, in order. Three rules keep every menu call finite
and whole: no item reaches itself (a cycle), no chain of links is longer than the
serializer nests (presto.services.limits.MAX_MODIFIER_DEPTH), and the nested menu holds at most
`MAX_MENU_OBJECTS` item objects (shared subtrees multiply: a rule on items and links alone
lets a small graph nest millions). The checks are iterative, so a deep graph cannot exhaust
the Python stack, and linear in items plus links.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from presto.errors import ConflictError, MenuTooLargeError, TooLargeToRenderError
from presto.services.limits import MAX_MENU_OBJECTS, MAX_MODIFIER_DEPTH

Node = TypeVar("Node", bound=Hashable)

_NEW, _OPEN, _DONE = 0, 1, 2


def find_cycle(
    graph: Mapping[Node, Sequence[Node]], *, first: Node | None = None
) -> list[Node] | None:
    """A path that returns to its start, `[a, b, ..., a]`, or None if there is none.

    The search starts at `first` if given (the item whose links just changed), so a
    cycle through it is named from it.
    """
    state: dict[Node, int] = {}
    roots = itertools.chain([] if first is None else [first], graph)
    for root in roots:
        if state.get(root, _NEW) != _NEW:
            continue
        # Depth-first, with an explicit stack of (node, index of its next child).
        path: list[Node] = [root]
        stack: list[tuple[Node, int]] = [(root, 0)]
        state[root] = _OPEN
        while stack:
            node, index = stack[-1]
            children = graph.get(node, ())
            if index == len(children):
                stack.pop()
                path.pop()
                state[node] = _DONE
                continue
            stack[-1] = (node, index + 1)
            child = children[index]
            child_state = state.get(child, _NEW)
            if child_state == _OPEN:
                return [*path[path.index(child) :], child]
            if child_state == _NEW:
                state[child] = _OPEN
                path.append(child)
                stack.append((child, 0))
    return None


def longest_chain(graph: Mapping[Node, Sequence[Node]]) -> list[Node]:
    """The items of a longest chain of links (one item when there are no links).

    The graph must be free of cycles (see `find_cycle`).
    """
    height: dict[Node, int] = {}
    next_on_chain: dict[Node, Node] = {}
    for root in graph:
        if root in height:
            continue
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if node in height:
                continue
            children = graph.get(node, ())
            if expanded or not children:
                best = 0
                for child in children:
                    if height[child] + 1 > best:
                        best = height[child] + 1
                        next_on_chain[node] = child
                height[node] = best
                continue
            stack.append((node, True))
            stack.extend((child, False) for child in children if child not in height)
    if not height:
        return []
    node = max(height, key=lambda candidate: height[candidate])
    chain = [node]
    while node in next_on_chain:
        node = next_on_chain[node]
        chain.append(node)
    return chain


def nested_sizes(
    graph: Mapping[Node, Sequence[Node]], *, depth: int = MAX_MODIFIER_DEPTH
) -> dict[Node, int]:
    """How many item objects each item's nested rendering holds: itself and, down to
    `depth` levels, each modifier again wherever it appears.

    Counted a level at a time from memoized sizes, so the work is items plus links per
    level whatever the copies, and a graph no deeper than `depth` settles early. A cycle in
    bad data is counted as the depth cap cuts it: never less than the renderer writes, and
    exactly that for a graph `check_graph` accepts.
    """
    sizes = dict.fromkeys(graph, 1)
    for _ in range(depth):
        deeper = {
            node: 1 + sum(sizes.get(child, 1) for child in children)
            for node, children in graph.items()
        }
        if deeper == sizes:
            break
        sizes = deeper
    return sizes


@dataclass(frozen=True)
class Expansion(Generic[Node]):
    """The item objects a nested response would hold, and its largest entry's share."""

    objects: int
    largest: Node | None
    largest_objects: int

    @classmethod
    def of(cls, sizes: Mapping[Node, int], entries: Iterable[Node]) -> Expansion[Node]:
        """The expansion of a response listing `entries`, each nested to its size."""
        objects, largest, largest_objects = 0, None, 0
        seen: set[Node] = set()
        for entry in entries:
            if entry in seen:
                continue
            seen.add(entry)
            size = sizes.get(entry, 1)
            objects += size
            if size > largest_objects:
                largest, largest_objects = entry, size
        return cls(objects, largest, largest_objects)

    def past_limit(self) -> bool:
        """More objects than presto writes or renders."""
        return self.objects > MAX_MENU_OBJECTS

    def problem_extra(self) -> dict[str, object]:
        """The fields a problem about this expansion carries."""
        return {
            "item": self.largest,
            "item_objects": self.largest_objects,
            "menu_objects": self.objects,
            "max_menu_objects": MAX_MENU_OBJECTS,
        }


def check_expansion(
    graph: Mapping[Node, Sequence[Node]], *, first: Node | None = None, new_items: int = 0
) -> None:
    """Raise `MenuTooLargeError` if the nested menu with `all=true` (every item of
    `graph`, and `new_items` items without modifiers about to be added) would hold more
    than `MAX_MENU_OBJECTS` item objects; it names the item whose subtree is largest, and
    `first` (the item whose links changed) among equals."""
    entries = itertools.chain([] if first is None else [first], graph)
    expansion = Expansion.of(nested_sizes(graph), entries)
    expansion = replace(expansion, objects=expansion.objects + new_items)
    if expansion.past_limit():
        raise MenuTooLargeError(
            f"The nested menu would hold {expansion.objects:,} item objects, more than "
            f"{MAX_MENU_OBJECTS:,}: item {expansion.largest} alone nests "
            f"{expansion.largest_objects:,} (modifiers shared by many parents repeat "
            "under each).",
            **expansion.problem_extra(),
        )


def check_renderable(graph: Mapping[Node, Sequence[Node]], entries: Sequence[Node]) -> None:
    """Raise `TooLargeToRenderError` if a nested response of `entries` would hold more
    than `MAX_MENU_OBJECTS` item objects, whatever the database holds: the renderer's
    guard behind the writes' `check_expansion`."""
    expansion = Expansion.of(nested_sizes(graph), entries)
    if expansion.past_limit():
        raise TooLargeToRenderError(
            f"This response would nest {expansion.objects:,} item objects, more than the "
            f"{MAX_MENU_OBJECTS:,} presto renders (item {expansion.largest} alone nests "
            f"{expansion.largest_objects:,}); the menu's links were changed around presto's "
            "checks. `shape=normalized` lists each item once.",
            **expansion.problem_extra(),
        )


def check_graph(graph: Mapping[Node, Sequence[Node]], *, first: Node | None = None) -> None:
    """Raise `ConflictError` naming the path if the graph has a cycle or a too long chain,
    and `MenuTooLargeError` if its nested menu would hold too many item objects.

    `first`: the item whose links changed; a cycle through it is named from it.
    """
    cycle = find_cycle(graph, first=first)
    if cycle is not None:
        raise ConflictError(
            f"The modifiers would form a cycle: {_arrows(cycle)}.", cycle=list(cycle)
        )
    chain = longest_chain(graph)
    if len(chain) - 1 > MAX_MODIFIER_DEPTH:
        raise ConflictError(
            f"The modifiers would nest {len(chain) - 1} levels deep, more than "
            f"{MAX_MODIFIER_DEPTH}: {_arrows(chain)}.",
            path=list(chain),
        )
    check_expansion(graph, first=first)


def _arrows(path: Sequence[object]) -> str:
    return " -> ".join(str(node) for node in path)
