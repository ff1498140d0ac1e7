"""Rules of the modifier graph, checked over a whole restaurant before any link is written.

The graph maps an item to its modifiers, in order. Two rules keep every menu call finite
and whole: no item reaches itself (a cycle), and no chain of links is longer than the
serializer nests (presto.schemas.MAX_MODIFIER_DEPTH). Both checks are iterative, so a deep
graph cannot exhaust the Python stack, and linear in items plus links.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from presto.errors import ConflictError
from presto.services.limits import MAX_MODIFIER_DEPTH

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


def check_graph(graph: Mapping[Node, Sequence[Node]], *, first: Node | None = None) -> None:
    """Raise `ConflictError` naming the path if the graph has a cycle or a too long chain.

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


def _arrows(path: Sequence[object]) -> str:
    return " -> ".join(str(node) for node in path)
