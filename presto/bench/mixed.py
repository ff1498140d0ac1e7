"""Mixed load: reads of the menu with a share of price writes, checking every read.

Writes (`PATCH /restaurant/<id>/item/<item_id>` with `{"price": n}`) run one after
another, each with a price higher than any before, so the menu only ever moves forward. A
read is stale when it started after some write's response had arrived and still shows a
lower price than that write set: the server had confirmed the change, and a worker served
the menu from before it. Half of the reads revalidate the last `ETag` their client saw
(`If-None-Match`); a `304` shows the price that tag was served with, so a 304 for a tag
older than an answered write is stale too.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import subprocess
import sys
import time
from dataclasses import dataclass

import aiohttp
import orjson

from presto.bench.load import percentile
from presto.services.keys import KEY_START

# Above every price in the demo menus, so the first write already changes the menu.
FIRST_PRICE = 100_000
# Share of reads sent with `If-None-Match`.
CONDITIONAL_SHARE = 0.5


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
    # 304 answers among the reads.
    not_modified: int = 0
    # Reads answered per worker process (the prefix of the server's `X-Request-ID`).
    reads_per_worker: tuple[int, ...] = ()

    @property
    def requests_per_second(self) -> float:
        return (self.reads + self.writes) / self.seconds if self.seconds else 0.0


def parse_key(output: str) -> str | None:
    """The API key `presto keys create` prints, alone, on standard output."""
    key = output.strip()
    if not key.startswith(KEY_START) or any(char.isspace() for char in key):
        return None
    return key


def create_key(database_url: str, restaurant_id: int) -> str:
    """A new API key for the restaurant, from `presto keys create`."""
    command = [sys.executable, "-m", "presto", "keys", "create"]
    command += ["--restaurant", str(restaurant_id), "--database-url", database_url]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if completed.returncode != 0:
        raise WriteApiUnavailable(f"presto keys create failed: {completed.stderr.strip()[-300:]}")
    key = parse_key(completed.stdout)
    if key is None:
        raise WriteApiUnavailable(f"no key in presto keys create output: {completed.stdout!r}")
    return key


def worker_of(response: aiohttp.ClientResponse) -> str:
    """Which worker process answered: presto's own request ids start with its prefix."""
    return response.headers.get("X-Request-ID", "").split("-")[0]


def entry_price(body: bytes, field: str, value: object) -> int | None:
    """The price of the menu entry whose `field` is `value` in a nested menu body."""
    for item in orjson.loads(body):
        if item[field] == value:
            price: int = item["price"]
            return price
    return None


class MixedRun:
    """The state of one mixed run: what was written, what each read showed."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        menu_url: str,
        api_key: str,
        *,
        write_share: float,
        seed: int,
    ) -> None:
        self.session = session
        self.menu_url = menu_url
        self.item_url = ""
        self.item_id = 0
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.write_share = write_share
        self.rng = random.Random(seed)
        self.write_lock = asyncio.Lock()
        self.prices = itertools.count(FIRST_PRICE)
        self.acknowledged = 0  # the price of the last write whose response has arrived
        self.latencies: list[float] = []
        self.writes = self.stale = self.errors = self.not_modified = 0
        # The price each ETag was served with, to tell what a 304 shows.
        self.tag_prices: dict[str, int] = {}
        self.per_worker: dict[str, int] = {}

    async def find_item(self) -> None:
        """The first menu entry: its price is at the top level of every menu call."""
        async with self.session.get(self.menu_url) as response:
            response.raise_for_status()
            self.item_id = orjson.loads(await response.read())[0]["id"]
        self.item_url = f"{self.menu_url}/{self.item_id}"

    async def write(self) -> bool:
        """Set a new, higher price; True once the server acknowledged it."""
        async with self.write_lock:
            price = next(self.prices)
            async with self.session.patch(
                self.item_url, json={"price": price}, headers=self.headers
            ) as response:
                await response.read()
                if response.status in (404, 405):
                    raise WriteApiUnavailable(f"PATCH {self.item_url} answered {response.status}")
                self.writes += 1
                if response.status >= 300:
                    return False
                self.acknowledged = price
                return True

    async def read(self, last_tag: list[str]) -> bool:
        """Read the menu (conditionally, half the time); count it stale if it shows a
        price older than the last write acknowledged before the read began."""
        floor = self.acknowledged
        conditional = bool(last_tag) and self.rng.random() < CONDITIONAL_SHARE
        request_headers = {"If-None-Match": last_tag[0]} if conditional else {}
        started = time.perf_counter()
        async with self.session.get(self.menu_url, headers=request_headers) as response:
            body = await response.read()
        self.latencies.append((time.perf_counter() - started) * 1000)
        worker = worker_of(response)
        self.per_worker[worker] = self.per_worker.get(worker, 0) + 1
        tag = response.headers.get("ETag")
        if response.status == 304 and conditional:
            self.not_modified += 1
            price = self.tag_prices.get(last_tag[0])
        elif response.status == 200:
            price = entry_price(body, "id", self.item_id)
            if price is not None and tag is not None:
                self.tag_prices.setdefault(tag, price)
                last_tag[:] = [tag]
        else:
            return False
        if price is None:
            return False
        if price < floor:
            self.stale += 1
        return True

    async def client(self, deadline: float) -> None:
        """One connection's loop of reads and writes until `deadline`."""
        last_tag: list[str] = []  # the ETag of this client's last 200 read
        while time.monotonic() < deadline:
            write = self.rng.random() < self.write_share
            try:
                ok = await (self.write() if write else self.read(last_tag))
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                ok = False
            if not ok:
                self.errors += 1

    def result(self, seconds: float) -> MixedResult:
        """What the run measured."""
        self.latencies.sort()
        return MixedResult(
            seconds=seconds,
            reads=len(self.latencies),
            writes=self.writes,
            stale_reads=self.stale,
            errors=self.errors,
            p50_ms=percentile(self.latencies, 0.50),
            p99_ms=percentile(self.latencies, 0.99),
            not_modified=self.not_modified,
            reads_per_worker=tuple(sorted(self.per_worker.values(), reverse=True)),
        )


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
    """Drive reads and writes from `connections` tasks for `duration` seconds."""
    menu_url = f"{base_url}/restaurant/{restaurant_id}/item"
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        run = MixedRun(session, menu_url, api_key, write_share=write_share, seed=seed)
        await run.find_item()
        # One write first: it tells at once whether there is a write API at all.
        if not await run.write():
            run.errors += 1
        started = time.monotonic()
        await asyncio.gather(*(run.client(started + duration) for _ in range(connections)))
        return run.result(time.monotonic() - started)
