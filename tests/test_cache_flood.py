"""End to end, default settings: a flood of menu calls with a new category each time is
answered from the warm menu without the database, fills the filtered calls' share of the
cache, and cannot push the warm menu out of it."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.http import request
from tests.helpers.server_process import running_presto
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.e2e

# Filtered entries of the demo menu take some 1.4 KB each, so 8,000 overflow the share of
# the default 64 MiB budget (8 MiB) and push older ones out; before the share, some 46,000
# pushed every menu out. PRESTO_TEST_FLOOD_READS=50000 runs the full flood.
FLOOD = int(os.environ.get("PRESTO_TEST_FLOOD_READS", "8000"))
CONNECTIONS = 32


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


async def flood(base: str) -> dict[int, int]:
    """`FLOOD` menu calls, each for a category never asked before; answers by status."""
    statuses: dict[int, int] = {}
    numbers = iter(range(FLOOD))

    async def client(session: aiohttp.ClientSession) -> None:
        for n in numbers:
            async with session.get(f"{base}/restaurant/1/item?category=flood-{n}") as answer:
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

        def warm_up() -> str:
            """Read the menu; `/metrics` once a read of it was a hit (on PostgreSQL, not
            before the worker's listener is connected)."""
            assert request(address, "GET", "/restaurant/1/item").status == 200
            return counted(address, lambda text: metric(text, hits) >= 1)

        warmed = wait_until(warm_up, 10, "the menu never became a cache hit")
        started = time.monotonic()
        statuses = asyncio.run(flood(base))
        seconds = time.monotonic() - started
        # The worker hands its counts over every half second: until every call is counted.
        before = wait_until(
            lambda: counted(address, lambda text: answered(text) >= answered(warmed) + FLOOD),
            10,
            "the flood's calls were not all counted",
        )
        warm = request(address, "GET", "/restaurant/1/item")
        after = wait_until(
            lambda: counted(address, lambda text: calls(text) > calls(before)),
            10,
            "the warm call was not counted",
        )

    print(f"{FLOOD} random categories in {seconds:.1f} s: {statuses}")
    # Each filtered from the warm menu on the event loop: none shed, none loaded.
    assert statuses == {200: FLOOD}
    assert metric(before, loads) == metric(warmed, loads)
    assert warm.status == 200
    # The filtered calls filled their share and pushed each other out...
    assert metric(before, "presto_menu_cache_evictions_total") > 0
    # ...but not the warm menu: a hit, with no database read.
    assert metric(after, hits) == metric(before, hits) + 1
    assert metric(after, loads) == metric(before, loads)
