"""Memory with the menu cache full: resident memory of each worker against a baseline.

Several generated restaurants are read through every variant of the menu call (`?all=`,
`?available=`, `?category=`), so the distinct cacheable responses add up to well over
the cache's byte budget. Each is requested over new connections until every worker has
answered it twice: the first answer of a worker stores it, the second comes from its
cache unless it was pushed out meanwhile. Then each worker's `VmRSS` is read. The same
run with the cache off (`--cache-bytes 0`) is the baseline: the interpreter, the app, and
whatever serializing those responses left the allocator holding.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp

from presto.bench.generated_menus import generate_menu
from presto.storage.engine import create_schema, drop_schema, make_engine, make_sessionmaker

# Categories of a generated menu's entries (presto.bench.generated_menus).
GENERATED_CATEGORIES = 12
# Answers each worker gives to each URL: one to store it, one to be served from the cache.
ANSWERS_PER_WORKER = 2
# Requests to spend on reaching every worker with one URL before giving up.
MAX_ATTEMPTS = 100


class WorkersUnreached(RuntimeError):
    """New connections kept landing on some workers only."""


@dataclass(frozen=True)
class MemoryDrive:
    """What reading every URL cost: distinct responses and their bytes, and requests."""

    urls: int
    distinct_bytes: int
    requests: int
    errors: int


def prepare_restaurants(database_url: str, *, restaurants: int, items: int) -> list[int]:
    """Replace the database's contents with `restaurants` generated menus; their ids."""
    engine = make_engine(database_url, pool_size=1)
    try:
        drop_schema(engine)
        create_schema(engine)
        with make_sessionmaker(engine)() as session, session.begin():
            return [generate_menu(session, items=items) for _ in range(restaurants)]
    finally:
        engine.dispose()


def menu_paths(restaurant_ids: Sequence[int]) -> list[str]:
    """Every distinct menu call to cache: per restaurant, the plain call, `?all=true`,
    `?available=true` and each category, alone and with `?all=true`."""
    paths = []
    for restaurant_id in restaurant_ids:
        base = f"/restaurant/{restaurant_id}/item"
        paths += [base, f"{base}?all=true", f"{base}?available=true"]
        for number in range(1, GENERATED_CATEGORIES + 1):
            category = f"category=Category%20{number}"
            paths += [f"{base}?{category}", f"{base}?all=true&{category}"]
    return paths


async def read_everywhere(base_url: str, paths: Sequence[str], *, workers: int) -> MemoryDrive:
    """GET each path over new connections until each of `workers` workers answered it
    `ANSWERS_PER_WORKER` times; two paths at a time, so both workers stay busy."""
    sizes: dict[str, int] = {}
    requests = errors = 0
    queue = list(reversed(paths))
    # New connections: the kernel picks a worker for each (SO_REUSEPORT).
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def read_path(path: str) -> None:
            nonlocal requests, errors
            answers: dict[str, int] = {}
            for _ in range(MAX_ATTEMPTS):
                async with session.get(base_url + path) as response:
                    body = await response.read()
                requests += 1
                if response.status != 200:
                    errors += 1
                    continue
                sizes[path] = len(body)
                worker = response.headers.get("X-Request-ID", "").split("-")[0]
                answers[worker] = answers.get(worker, 0) + 1
                if len(answers) >= workers and min(answers.values()) >= ANSWERS_PER_WORKER:
                    return
            raise WorkersUnreached(f"{path}: {MAX_ATTEMPTS} requests reached {answers} only")

        async def reader() -> None:
            while queue:
                await read_path(queue.pop())

        await asyncio.gather(reader(), reader())
    return MemoryDrive(
        urls=len(sizes), distinct_bytes=sum(sizes.values()), requests=requests, errors=errors
    )
