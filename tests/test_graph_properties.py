"""Property-based tests of the modifier graph rules, against simple in-memory models.

Random sequences of create, link, unlink and delete go through the HTTP API on both
backends; after each step the status must be the one the model predicts, and the menu
call must show exactly the model's trees. Example counts stay moderate so the suite
remains quick; hypothesis shrinks any failure to a short sequence.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.services.graph import find_cycle, longest_chain
from presto.services.limits import MAX_MODIFIER_DEPTH
from presto.storage.models import ApiKey, Restaurant
from tests.helpers.data import add_items, add_key, add_restaurant, bearer

# --- The graph functions themselves, against brute force -------------------------------

small_graphs = st.dictionaries(
    st.integers(0, 7), st.lists(st.integers(0, 7), max_size=4, unique=True), max_size=8
)


def reaches(graph: dict[int, list[int]], start: int, goal: int) -> bool:
    """Whether `goal` is reachable from `start` by one or more links."""
    seen: set[int] = set()
    stack = list(graph.get(start, []))
    while stack:
        node = stack.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, []))
    return False


def height(graph: dict[int, list[int]], node: int) -> int:
    """Links on the longest chain down from `node` (the graph has no cycle)."""
    return max((1 + height(graph, child) for child in graph.get(node, [])), default=0)


@settings(max_examples=300, deadline=None)
@given(small_graphs)
def test_find_cycle_agrees_with_reachability(graph: dict[int, list[int]]) -> None:
    cycle = find_cycle(graph)
    has_cycle = any(reaches(graph, node, node) for node in graph)
    assert (cycle is not None) == has_cycle
    if cycle is not None:
        assert cycle[0] == cycle[-1]
        for parent, child in itertools.pairwise(cycle):
            assert child in graph[parent]


@settings(max_examples=300, deadline=None)
@given(small_graphs)
def test_longest_chain_is_longest(graph: dict[int, list[int]]) -> None:
    if any(reaches(graph, node, node) for node in graph):
        return
    chain = longest_chain(graph)
    for parent, child in itertools.pairwise(chain):
        assert child in graph[parent]
    best = max((height(graph, node) for node in graph), default=0)
    assert len(chain) - 1 == best if graph else chain == []


# --- The API against a model of menus -----------------------------------------------------


@dataclass
class Model:
    """What the menus should be: per restaurant, its items and their ordered modifiers."""

    links: dict[int, dict[int, list[int]]] = field(default_factory=dict)

    def owner(self, item_id: int) -> int | None:
        return next((r for r, items in self.links.items() if item_id in items), None)

    def expected_link_status(self, restaurant: int, parent: int, children: list[int]) -> int:
        items = self.links[restaurant]
        if parent not in items:
            return 404
        if any(child not in items for child in children):
            return 422
        graph = {**items, parent: children}
        if any(child == parent or reaches(graph, child, parent) for child in children):
            return 409
        if max(height(graph, node) for node in graph) > MAX_MODIFIER_DEPTH:
            return 409
        return 200

    def tree(self, restaurant: int, item_id: int) -> dict[str, Any]:
        children = self.links[restaurant][item_id]
        return {"id": item_id, "modifiers": [self.tree(restaurant, c) for c in children]}


def shape(item: dict[str, Any]) -> dict[str, Any]:
    return {"id": item["id"], "modifiers": [shape(m) for m in item["modifiers"]]}


operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 1)),
        st.tuples(
            st.just("link"),
            st.integers(0, 1),
            st.integers(0, 11),
            st.lists(st.integers(0, 11), max_size=3, unique=True),
        ),
        st.tuples(st.just("unlink"), st.integers(0, 1), st.integers(0, 11)),
        st.tuples(st.just("delete"), st.integers(0, 1), st.integers(0, 11)),
    ),
    min_size=1,
    max_size=25,
)


def reset(engine: Engine) -> tuple[list[int], str, list[int]]:
    """Two restaurants with three items each, an admin key; returns ids and key."""
    with Session(engine) as session:
        session.execute(sa.delete(ApiKey))
        session.execute(sa.delete(Restaurant))
        restaurants = [add_restaurant(session, "One"), add_restaurant(session, "Two")]
        item_ids = [item for r in restaurants for item in add_items(session, r, ["A", "B", "C"])]
        session.commit()
        return restaurants, add_key(session), item_ids


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
def test_api_agrees_with_the_model(
    client: FlaskClient, engine: Engine, steps: list[tuple[Any, ...]]
) -> None:
    restaurants, admin, pool = reset(engine)
    key = bearer(admin)
    model = Model({r: {} for r in restaurants})
    for r, item_id in zip([restaurants[0]] * 3 + [restaurants[1]] * 3, pool, strict=True):
        model.links[r][item_id] = []

    for step in steps:
        kind, which = step[0], restaurants[step[1]]
        base = f"/restaurant/{which}/item"
        if kind == "create":
            response = client.post(base, json={"name": "New"}, headers=key)
            assert response.status_code == 201
            new_id = response.get_json()["id"]
            model.links[which][new_id] = []
            pool.append(new_id)
        elif kind in {"link", "unlink"}:
            parent = pool[step[2] % len(pool)]
            children = (
                list(dict.fromkeys(pool[i % len(pool)] for i in step[3])) if kind == "link" else []
            )
            expected = model.expected_link_status(which, parent, children)
            response = client.put(f"{base}/{parent}/modifiers", json=children, headers=key)
            assert response.status_code == expected, (step, response.get_json())
            if expected == 200:
                model.links[which][parent] = children
        else:
            target = pool[step[2] % len(pool)]
            response = client.delete(f"{base}/{target}", headers=key)
            if target in model.links[which]:
                assert response.status_code == 204
                del model.links[which][target]
                for children in model.links[which].values():
                    if target in children:
                        children.remove(target)
            else:
                assert response.status_code == 404

        for r in restaurants:
            menu = client.get(f"/restaurant/{r}/item?all=true")
            assert menu.status_code == 200
            assert [shape(item) for item in menu.get_json()] == [
                model.tree(r, item_id) for item_id in sorted(model.links[r])
            ]


# --- Concurrent writes -----------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_links_cannot_together_make_a_cycle(
    client: FlaskClient, session: Session, attempt: int
) -> None:
    restaurant_id = add_restaurant(session)
    a, b = add_items(session, restaurant_id, ["A", "B"])
    session.commit()
    key = bearer(add_key(session, restaurant_id))
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def put(parent: int, child: int) -> None:
        barrier.wait()
        response = client.put(
            f"/restaurant/{restaurant_id}/item/{parent}/modifiers", json=[child], headers=key
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=put, args=(a, b)),
        threading.Thread(target=put, args=(b, a)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409], attempt
    menu = client.get(f"/restaurant/{restaurant_id}/item").get_json()
    assert sum(len(item["modifiers"]) for item in menu) == 1
