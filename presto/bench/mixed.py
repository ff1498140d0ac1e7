"""Mixed load: reads of the menu with a share of price writes, checking every read body.

Writes run one after another, each with a price higher than any before, so the menu
only ever moves forward. A read is stale when it started after some write's response had
arrived and still shows a lower price than that write set: the server had confirmed the
change, and a worker served the menu from before it.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
import orjson

from presto.bench.load import percentile

# Above every price in the demo menus, so the first write already changes the menu.
FIRST_PRICE = 100_000
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.~+/=-]{15,}")


class WriteApiUnavailable(Exception):
    """The server has no write API (or no way to make a key) to drive writes with."""


@dataclass(frozen=True)
class MixedResult:
    """What a mixed run measured; latencies are of the reads."""

    seconds: float
    reads: int
    writes: int
    stale_reads: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def requests_per_second(self) -> float:
        return (self.reads + self.writes) / self.seconds if self.seconds else 0.0


def parse_key(output: str) -> str | None:
    """The API key in ``presto keys create`` output: its last token shaped like a key."""
    for token in reversed(output.split()):
        if _KEY.fullmatch(token):
            return token
    return None


def create_key(database_url: str, restaurant_id: int) -> str:
    """A new API key for the restaurant, from ``presto keys create``."""
    command = [sys.executable, "-m", "presto", "keys", "create"]
    command += ["--restaurant", str(restaurant_id), "--database-url", database_url]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if completed.returncode != 0:
        raise WriteApiUnavailable(f"presto keys create failed: {completed.stderr.strip()[-300:]}")
    key = parse_key(completed.stdout)
    if key is None:
        raise WriteApiUnavailable(f"no key in presto keys create output: {completed.stdout!r}")
    return key


def menu_price(body: bytes, item_id: int) -> int | None:
    """The price of item ``item_id`` among the menu entries of a menu body."""
    for item in orjson.loads(body):
        if item["id"] == item_id:
            price: int = item["price"]
            return price
    return None


async def run_mixed(
    base_url: str,
    *,
    restaurant_id: int,
    api_key: str,
    duration: float,
    connections: int,
    write_share: float = 0.05,
    seed: int = 1,
) -> MixedResult:
    """Drive reads and writes from ``connections`` tasks for ``duration`` seconds."""
    menu_url = f"{base_url}/restaurant/{restaurant_id}/item"
    headers = {"Authorization": f"Bearer {api_key}"}
    rng = random.Random(seed)
    write_lock = asyncio.Lock()
    prices = itertools.count(FIRST_PRICE)
    acknowledged = 0  # the price of the last write whose response has arrived
    latencies: list[float] = []
    writes = stale = errors = 0

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with session.get(menu_url) as response:
            response.raise_for_status()
            item_id: int = orjson.loads(await response.read())[0]["id"]
        item_url = f"{base_url}/restaurant/{restaurant_id}/item/{item_id}"

        async def write() -> bool:
            nonlocal acknowledged, writes
            async with write_lock:
                price = next(prices)
                async with session.patch(item_url, json={"price": price}, headers=headers) as r:
                    await r.read()
                    if r.status in (404, 405):
                        raise WriteApiUnavailable(f"PATCH {item_url} answered {r.status}")
                    writes += 1
                    if r.status >= 300:
                        return False
                    acknowledged = price
                    return True

        async def read() -> bool:
            nonlocal stale
            floor = acknowledged
            started = time.perf_counter()
            async with session.get(menu_url) as response:
                body = await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                return False
            price = menu_price(body, item_id)
            if price is None:
                return False
            if price < floor:
                stale += 1
            return True

        async def client(deadline: float) -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                try:
                    ok = await (write() if rng.random() < write_share else read())
                except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                    ok = False
                if not ok:
                    errors += 1

        # One write first: it tells at once whether there is a write API at all.
        if not await write():
            errors += 1
        started = time.monotonic()
        await asyncio.gather(*(client(started + duration) for _ in range(connections)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return MixedResult(
        seconds=elapsed,
        reads=len(latencies),
        writes=writes,
        stale_reads=stale,
        errors=errors,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
    )
