"""End to end, default settings: a flood of menu calls with a new category each time, and
one with a new order of allergens no item has each time, are answered from the warm menu
without the database (but, once, the normalized menu of every item the allergen filters
need), cache nothing under their query strings and push nothing out."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from presto.serving.cache import ENTRY_OVERHEAD
from presto.serving.menu_filters import index_menu
from presto.storage.compression import compress_fast
from tests.helpers.http import request
from tests.helpers.server_process import running_presto
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.e2e

# Before the filtered share, some 46,000 new categories pushed every menu out of the
# default 64 MiB budget. PRESTO_TEST_FLOOD_READS=50000 runs the full flood.
FLOOD = int(os.environ.get("PRESTO_TEST_FLOOD_READS", "8000"))
CONNECTIONS = 32
# Allergens no demo item contains: excluding them keeps the whole menu, and each order of
# them is a new query string (before answers were shared, each was cached: some 4 KB, so
# 3,000 overflowed the filtered share of the default budget).
ABSENT_ALLERGENS = ("celery", "crustaceans", "fish", "lupin", "molluscs", "mustard", "peanuts")
KEEPING_FLOOD = 3000


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, name
    return float(match.group(1))


def metrics(address: tuple[str, int]) -> str:
    return request(address, "GET", "/metrics").body.decode()


def counted(address: tuple[str, int], enough: Callable[[str], bool]) -> str:
    """`/metrics` if it shows `enough`, else ""."""
    text = metrics(address)
    return text if enough(text) else ""


def calls(text: str) -> float:
    """Menu calls answered from memory or not."""
    return metric(text, "presto_menu_cache_hits_total") + metric(
        text, "presto_menu_cache_misses_total"
    )


def answered(text: str) -> float:
    """Requests answered, over every route and status."""
    return sum(
        float(value)
        for value in re.findall(r"^presto_http_requests_total\{.*\} (\S+)$", text, re.MULTILINE)
    )


def new_categories() -> list[str]:
    """`FLOOD` query strings, each a category never asked before (no item has it)."""
    return [f"category=flood-{n}" for n in range(FLOOD)]


def new_orders() -> list[str]:
    """`KEEPING_FLOOD` query strings excluding the absent allergens, each in a new order."""
    orders = itertools.permutations(ABSENT_ALLERGENS)
    return [
        f"exclude_allergens={','.join(order)}" for order in itertools.islice(orders, KEEPING_FLOOD)
    ]


async def flood(base: str, query_strings: list[str]) -> dict[int, int]:
    """A menu call with each query string; answers by status."""
    statuses: dict[int, int] = {}
    queries = iter(query_strings)

    async def client(session: aiohttp.ClientSession) -> None:
        for query in queries:
            async with session.get(f"{base}/restaurant/1/item?{query}") as answer:
                await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(CONNECTIONS)))
    return statuses


@pytest.mark.slow
def test_random_categories_leave_the_warm_menu_a_hit(db_url: str, tmp_path: Path) -> None:
    with running_presto(db_url, tmp_path) as presto:
        address, base = presto.address, presto.url
        hits, loads = "presto_menu_cache_hits_total", "presto_menu_load_duration_seconds_count"
        evictions, cached = "presto_menu_cache_evictions_total", "presto_menu_cache_bytes"

        def warm_up() -> str:
            """Read the menu; `/metrics` once a read of it was a hit (on PostgreSQL, not
            before the worker's listener is connected)."""
            assert request(address, "GET", "/restaurant/1/item").status == 200
            return counted(address, lambda text: metric(text, hits) >= 1)

        def after_flood(before: str, query_strings: list[str]) -> tuple[dict[int, int], str]:
            """The flood's answers by status; `/metrics` once every call is counted (the
            worker hands its counts over every half second)."""
            started = time.monotonic()
            statuses = asyncio.run(flood(base, query_strings))
            seconds = time.monotonic() - started
            print(f"{len(query_strings)} calls in {seconds:.1f} s: {statuses}")
            total = answered(before) + len(query_strings)
            text = wait_until(
                lambda: counted(address, lambda text: answered(text) >= total),
                10,
                "the flood's calls were not all counted",
            )
            return statuses, text

        warmed = wait_until(warm_up, 10, "the menu never became a cache hit")
        statuses, categories = after_flood(warmed, new_categories())
        statuses_kept, orders = after_flood(categories, new_orders())
        warm = request(address, "GET", "/restaurant/1/item")
        after = wait_until(
            lambda: counted(address, lambda text: calls(text) > calls(orders)),
            10,
            "the warm call was not counted",
        )

    # Each filtered from the warm menu on the event loop: none shed, none loaded but, once,
    # the normalized menu of every item that says what each item contains.
    assert statuses == {200: FLOOD}
    assert statuses_kept == {200: KEEPING_FLOOD}
    assert metric(categories, loads) == metric(warmed, loads)
    assert metric(orders, loads) == metric(categories, loads) + 1
    # The new categories kept no item: none cached under its query string, nothing pushed
    # out; the cache grew by the warm menu's index and its one answer that keeps nothing.
    assert metric(categories, evictions) == metric(warmed, evictions) == 0
    empty_answer = ENTRY_OVERHEAD + len(compress_fast(b"[]")) + len(b"[]")  # kept plain too
    grown = index_menu(warm.body).size + empty_answer
    assert metric(categories, cached) == metric(warmed, cached) + grown
    # The orders kept the whole menu: each answered with the menu's own bytes, none
    # cached under its query string, nothing pushed out; the cache grew by the one menu
    # they read.
    assert metric(orders, evictions) == 0
    assert metric(orders, cached) > metric(categories, cached)
    # And the warm menu is a hit, with no database read.
    assert warm.status == 200
    assert metric(after, hits) == metric(orders, hits) + 1
    assert metric(after, loads) == metric(orders, loads)
