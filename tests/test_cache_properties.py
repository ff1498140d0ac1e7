"""Stateful property test of the menu cache and the fast path's single-flight loads.

Hypothesis interleaves menu calls (plain and gzip, hits and misses), loads that finish in
any order, readers that wait on another reader's load, writes that bump a generation,
entries that expire, and other menus that push entries out of a small budget. After
every step the cache's bookkeeping must add up and no reader may have got an error.

Both ways a miss is loaded are driven: from a published body (the published reader, as
on PostgreSQL's event-loop reads and SQLite's threads) and through the WSGI app.
"""

from __future__ import annotations

import asyncio
import gzip
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from presto.menus.representation import VALID_UNTIL_HEADER
from presto.serving.cache import CachedMenu, MenuCache, is_filtered
from presto.serving.fastpath import MenuFastPath
from presto.serving.generations import MenuGenerations
from presto.storage.published_menus import Published
from tests.helpers.responses import as_response

RESTAURANTS = st.sampled_from([1, 2, 3])
QUERIES = st.sampled_from(["", "all=true", "category=Sides", "category=Drinks"])
# A budget of a few entries, so that loads push each other out.
BUDGET = 3 * CachedMenu.of(0, '"m"', b"x" * 3000, ()).size
# The wall clock presto reads (`time.time`), set by the machine.
CLOCK = [0.0]
# Seconds a loaded menu holds before its schedule period ends.
PERIOD = 30


def menu_body(restaurant_id: int, generation: int, size: int) -> bytes:
    """A body that says which menu generation it shows, padded to `size` bytes."""
    head = f'[{{"restaurant":{restaurant_id},"generation":{generation}}}'.encode()
    return head + b" " * max(0, size - len(head) - 1) + b"]"


class FastPathMachine(RuleBasedStateMachine):
    """A worker's fast path with every load held until a rule lets it finish."""

    published = False

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.cache = MenuCache(BUDGET)
        self.generations = MenuGenerations()
        CLOCK[0] = 1_800_000_000.0
        # Loads waiting for an answer: (restaurant id, future of the body size).
        self.loads: list[tuple[int, asyncio.Future[int]]] = []
        self.readers: list[tuple[asyncio.Task[web.StreamResponse], int, bool]] = []
        reader = self._read_published if self.published else None
        self.fast_path = MenuFastPath(self.cache, self.generations, reader=reader)

    def teardown(self) -> None:
        tasks = [task for task, _, _ in self.readers]
        for task in tasks:
            task.cancel()

        async def cancelled() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)

        self.loop.run_until_complete(cancelled())
        self.loop.close()
        self.generations.close()

    # The database behind the fast path: each load answers when a rule says so.

    async def _answer_size(self, restaurant_id: int) -> tuple[int, int]:
        waiting: asyncio.Future[int] = self.loop.create_future()
        self.loads.append((restaurant_id, waiting))
        size = await waiting
        # The database shows the menu as it is when the load reads it.
        return self.generations.get(restaurant_id), size

    async def _read_published(self, restaurant_id: int, variant: str) -> Published | None:
        generation, size = await self._answer_size(restaurant_id)
        if size == 0:
            return None  # no current published body: Flask answers
        body = menu_body(restaurant_id, generation, size)
        valid_until = int(CLOCK[0]) + PERIOD
        return Published(
            generation, f"m{generation}", 0, valid_until, gzip.compress(body), len(body)
        )

    async def _wsgi(self, request: web.BaseRequest) -> web.StreamResponse:
        restaurant_id = int(request.path.split("/")[2])
        generation, size = await self._answer_size(restaurant_id)
        headers = {
            "ETag": f'"m{generation}"',
            "Content-Type": "application/json",
            VALID_UNTIL_HEADER: str(CLOCK[0] + PERIOD),
        }
        return web.Response(body=menu_body(restaurant_id, generation, size), headers=headers)

    async def _call(self, request: web.BaseRequest) -> web.StreamResponse:
        return await self.fast_path.handle(request, self._wsgi)

    def _settle(self) -> None:
        for _ in range(5):
            self.loop.run_until_complete(asyncio.sleep(0))

    # Rules: what happens to a worker, in any order.

    @rule(restaurant_id=RESTAURANTS, query=QUERIES, wants_gzip=st.booleans())
    def menu_call(self, restaurant_id: int, query: str, wants_gzip: bool) -> None:
        path = f"/restaurant/{restaurant_id}/item" + (f"?{query}" if query else "")
        headers = {"Accept-Encoding": "gzip"} if wants_gzip else {}
        request = make_mocked_request("GET", path, headers=headers)
        task = self.loop.create_task(self._call(request))
        self.readers.append((task, self.generations.get(restaurant_id), wants_gzip))
        self._settle()

    @precondition(lambda self: bool(self.loads))
    @rule(data=st.data(), size=st.sampled_from([0, 200, 3000, 9000, 2 * BUDGET]))
    def finish_a_load(self, data: st.DataObject, size: int) -> None:
        index = data.draw(st.integers(0, len(self.loads) - 1))
        _, waiting = self.loads.pop(index)
        waiting.set_result(size)
        self._settle()

    @rule(restaurant_id=RESTAURANTS)
    def write(self, restaurant_id: int) -> None:
        self.generations.bump(restaurant_id)

    @rule(seconds=st.sampled_from([0.5, 60.0]))
    def time_passes(self, seconds: float) -> None:
        CLOCK[0] += seconds

    @rule(restaurant_id=st.integers(10, 14), size=st.sampled_from([1000, 3000, 9000]))
    def another_menu_is_cached(self, restaurant_id: int, size: int) -> None:
        headers = (("Content-Type", "application/json"), ("ETag", '"m0"'))
        entry = CachedMenu.of(0, '"m0"', menu_body(restaurant_id, 0, size), headers)
        self.cache.put((restaurant_id, ""), entry)

    # What must hold after every step.

    @invariant()
    def no_reader_got_an_error(self) -> None:
        for task, started_at, wants_gzip in [r for r in self.readers if r[0].done()]:
            response = as_response(task.result())  # raises what the reader got
            assert response.status == 200
            body = response.body
            assert isinstance(body, bytes)
            if wants_gzip and response.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            # Never a menu older than the one current when the call came in.
            assert int(body.split(b'"generation":')[1].split(b"}")[0]) >= started_at
        self.readers = [r for r in self.readers if not r[0].done()]

    @invariant()
    def the_bytes_add_up(self) -> None:
        entries = self.cache._entries
        assert self.cache.bytes == sum(entry.size for entry in entries.values())
        assert self.cache.plain_bytes == sum(len(e.plain or b"") for e in entries.values())
        assert self.cache.bytes <= self.cache.max_bytes

    @invariant()
    def filtered_entries_stay_within_their_share(self) -> None:
        filtered = {k: e for k, e in self.cache._entries.items() if is_filtered(k)}
        assert set(self.cache._filtered) == set(filtered)
        assert self.cache.filtered_bytes == sum(entry.size for entry in filtered.values())
        assert self.cache.filtered_bytes <= self.cache.max_filtered_bytes

    @invariant()
    def every_plain_key_is_an_entry_with_plain_bytes(self) -> None:
        plain_keys = set(self.cache._plain)
        assert plain_keys == {k for k, e in self.cache._entries.items() if e.plain is not None}


class PublishedFastPathMachine(FastPathMachine):
    published = True


@pytest.mark.parametrize(
    "machine", [FastPathMachine, PublishedFastPathMachine], ids=["wsgi", "published"]
)
def test_cache_and_single_flight_loads_hold_their_invariants(
    machine: type[FastPathMachine], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(time, "time", lambda: CLOCK[0])
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=150,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
