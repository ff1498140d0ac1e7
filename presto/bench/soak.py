"""Soak and chaos: minutes of mixed load on several menus while processes and connections die.

`./bin/soak.sh --minutes 30 --database-url postgresql+psycopg://...` starts `presto serve`
(2 workers, default settings, demo menus) and drives, until the time is up:

- readers on every demo restaurant: plain and gzip, `all=true`, the normalized shape,
  category and availability filters, `at=` previews, and `If-None-Match` revalidations;
- one writer per restaurant, each with the restaurant's own key: price changes of one
  tracked menu entry, reordered modifiers, items created and deleted, and whole-menu
  imports (the document read back with the tracked price raised).

The tracked entry's price only grows, so a read that started after a write was
acknowledged and shows an older price is stale (a 304 shows the price its tag was served
with). During the run it kills a worker, kills the publisher process and terminates
presto's database connections (`pg_terminate_backend`, PostgreSQL only), and times how
long each killed process takes to be back. It prints requests by status, every 5xx with
its request id, stale reads, recovery times and RSS per worker, and exits 1 on any 5xx,
stale read, 429 (the load stays within presto's default limits) or process not back within
`RECOVERY_SECONDS`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import sqlalchemy as sa
from multidict import CIMultiDictProxy

from presto.bench.mixed import create_key, entry_price
from presto.bench.servers import Server, rss_mib, start_presto

# Seconds a killed process has to be back in (a new "listening" or "publisher started"),
# and how long the run waits to report how late it was.
RECOVERY_SECONDS = 5.0
RECOVERY_WAIT = 60.0
WORKER_LINE = re.compile(r"presto listening on http://[\d.]+:\d+ \(pid (\d+)\)")
PUBLISHER_LINE = re.compile(r"publisher started \(pid (\d+)\)")
# What each reader asks for besides the default menu, in turn.
READ_VARIANTS = ("", "all=true", "shape=normalized", "available=true", "category=Mains", "at=")
# The connections that read, each pausing between two reads (some 1,500 reads a second in
# all: a steady load that leaves the machine room to restart what the chaos kills), and
# the pause between one writer's writes (under the default write limit of 120 a minute).
READERS = 16
READ_PAUSE = 0.01
# Seconds between two previews (`at=`): under the default per-client limit (60 a minute
# per worker), since every reader here is one client.
PREVIEW_PAUSE = 1.5
WRITE_PAUSE = 0.75
# Prices set by the writers start above every demo price, so each write changes the menu.
FIRST_PRICE = 100_000


@dataclass
class Tracked:
    """One restaurant's writer state: the entry whose price only grows."""

    restaurant_id: int
    key: str
    name: str = ""
    item_id: int = 0
    price: int = FIRST_PRICE
    acknowledged: int = 0
    # The price each entity tag of the default menu was served with.
    tag_prices: dict[str, int] = field(default_factory=dict)


@dataclass
class Tally:
    """What the run saw."""

    statuses: Counter[int] = field(default_factory=Counter)
    writes: Counter[str] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    cut: int = 0  # requests whose connection a killed worker took with it
    recovery: dict[str, float] = field(default_factory=dict)


class Soak:
    """The load, the chaos and the tally of one run against `base_url`."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, tracked: list[Tracked]):
        self.session = session
        self.base_url = base_url
        self.tracked = tracked
        self.tally = Tally()
        self.rng = random.Random(7)
        self.last_preview = 0.0

    async def request(
        self, method: str, path: str, **kwargs: Any
    ) -> tuple[int, bytes, CIMultiDictProxy[str]]:
        """Send one request and count its status; a 5xx is kept with its request id."""
        async with self.session.request(method, self.base_url + path, **kwargs) as response:
            body = await response.read()
        self.tally.statuses[response.status] += 1
        if response.status >= 500:
            request_id = response.headers.get("X-Request-ID", "?")
            self.tally.server_errors.append(f"{method} {path} {response.status} id={request_id}")
        return response.status, body, response.headers

    async def find_entry(self, tracked: Tracked) -> None:
        status, body, _ = await self.request("GET", f"/restaurant/{tracked.restaurant_id}/item")
        assert status == 200, f"restaurant {tracked.restaurant_id}: {status}"
        first = orjson.loads(body)[0]
        tracked.name = tracked.name or first["name"]
        tracked.item_id = next(i["id"] for i in orjson.loads(body) if i["name"] == tracked.name)

    async def read(self, tracked: Tracked, variant: str, last_tag: dict[int, str]) -> None:
        floor = tracked.acknowledged
        path = f"/restaurant/{tracked.restaurant_id}/item"
        if variant == "at=" and time.monotonic() - self.last_preview < PREVIEW_PAUSE:
            variant = ""
        if variant == "at=":
            self.last_preview = time.monotonic()
            variant = "at=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        headers = {"Accept-Encoding": "gzip"} if self.rng.random() < 0.5 else {}
        tag = last_tag.get(tracked.restaurant_id) if not variant else None
        if tag is not None and self.rng.random() < 0.5:
            headers["If-None-Match"] = tag
        status, body, response_headers = await self.request(
            "GET", path + (f"?{variant}" if variant else ""), headers=headers
        )
        if variant or status not in (200, 304):
            return
        if status == 304:
            price = tracked.tag_prices.get(headers.get("If-None-Match", ""))
        else:
            price = entry_price(body, "name", tracked.name)
            etag = response_headers.get("ETag")
            if price is not None and etag is not None:
                tracked.tag_prices.setdefault(etag, price)
                last_tag[tracked.restaurant_id] = etag
        if price is not None and price < floor:
            self.tally.stale.append(f"restaurant {tracked.restaurant_id}: {price} < {floor}")

    async def reader(self, deadline: float) -> None:
        last_tag: dict[int, str] = {}
        while time.monotonic() < deadline:
            tracked = self.rng.choice(self.tracked)
            try:
                await self.read(tracked, self.rng.choice(READ_VARIANTS), last_tag)
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.tally.cut += 1
            await asyncio.sleep(READ_PAUSE)

    async def write(self, tracked: Tracked, kind: str) -> None:
        """One write of `kind`; the tracked price rises with every price change."""
        auth = {"Authorization": f"Bearer {tracked.key}"}
        base = f"/restaurant/{tracked.restaurant_id}"
        if kind == "price":
            tracked.price += 1
            body_json = {"price": tracked.price}
            path = f"{base}/item/{tracked.item_id}"
            status, _, _ = await self.request("PATCH", path, json=body_json, headers=auth)
        elif kind == "import":
            _, body, _ = await self.request("GET", f"{base}/menu")
            document = orjson.loads(body)
            tracked.price += 1
            for item in document["items"]:
                if item["name"] == tracked.name:
                    item["price"] = tracked.price
            status, _, _ = await self.request("PUT", f"{base}/menu", json=document, headers=auth)
            if status == 200:
                await self.find_entry(tracked)  # an import gives items new ids
        elif kind == "modifiers":
            _, body, _ = await self.request("GET", f"{base}/item/{tracked.item_id}")
            ids = [modifier["id"] for modifier in orjson.loads(body).get("modifiers", [])]
            status, _, _ = await self.request(
                "PUT", f"{base}/item/{tracked.item_id}/modifiers", json=ids[::-1], headers=auth
            )  # fmt: skip
        else:
            new = {"name": f"Soak special {self.rng.randrange(10**6)}", "price": 500}
            status, body, _ = await self.request("POST", f"{base}/item", json=new, headers=auth)
            if status == 201:
                created = orjson.loads(body)["id"]
                status, _, _ = await self.request("DELETE", f"{base}/item/{created}", headers=auth)
        self.tally.writes[f"{kind} {status}"] += 1
        if kind in ("price", "import") and status == 200:
            tracked.acknowledged = tracked.price

    async def writer(self, tracked: Tracked, deadline: float) -> None:
        kinds = ["price"] * 6 + ["modifiers", "create-delete", "import"]
        while time.monotonic() < deadline:
            try:
                await self.write(tracked, self.rng.choice(kinds))
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.tally.cut += 1
            await asyncio.sleep(WRITE_PAUSE)


def wait_for_new_line(server: Server, pattern: re.Pattern[str], seen: int) -> float | None:
    """Seconds until the log has more than `seen` lines matching `pattern` (None: not
    within `RECOVERY_WAIT`)."""
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_WAIT:
        if len(pattern.findall(server.log_path.read_text(errors="replace"))) > seen:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def kill_newest(server: Server, pattern: re.Pattern[str], what: str, tally: Tally) -> None:
    """SIGKILL the newest process of `what` the log names, and time its replacement."""
    pids = [int(pid) for pid in pattern.findall(server.log_path.read_text(errors="replace"))]
    print(f"chaos: SIGKILL {what} {pids[-1]}", flush=True)
    os.kill(pids[-1], signal.SIGKILL)
    back = wait_for_new_line(server, pattern, len(pids))
    tally.recovery[what] = back if back is not None else float("inf")


def terminate_connections(database_url: str) -> int:
    """End every other session on presto's PostgreSQL database; how many."""
    engine = sa.create_engine(database_url)
    query = sa.text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        with engine.begin() as connection:
            ended = int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()
    print(f"chaos: terminated {ended} database connections", flush=True)
    return ended


async def chaos(server: Server, database_url: str, duration: float, tally: Tally) -> None:
    """Kill a worker, the publisher, and the database connections, spread over the run."""
    loop = asyncio.get_running_loop()
    postgres = database_url.startswith("postgresql")
    steps: list[tuple[float, Any]] = [
        (0.2, lambda: kill_newest(server, WORKER_LINE, "worker", tally)),
        (0.4, lambda: kill_newest(server, PUBLISHER_LINE, "publisher", tally)),
    ]
    if postgres:
        steps.append((0.6, lambda: terminate_connections(database_url)))
    started = loop.time()
    for share, step in steps:
        await asyncio.sleep(max(0.0, started + share * duration - loop.time()))
        await loop.run_in_executor(None, step)


def worker_rss(server: Server) -> dict[int, float]:
    """RSS in MiB of each worker alive now."""
    pids = [int(pid) for pid in WORKER_LINE.findall(server.log_path.read_text(errors="replace"))]
    return {pid: rss for pid in pids if (rss := rss_mib(pid)) is not None}


async def drive(server: Server, database_url: str, duration: float) -> tuple[Tally, str]:
    """The load and the chaos for `duration` seconds; the tally and an RSS report."""
    tracked = [Tracked(r, create_key(database_url, r)) for r in (1, 2, 3)]
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=READERS + len(tracked))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        soak = Soak(session, server.url(""), tracked)
        for entry in tracked:
            await soak.find_entry(entry)
        deadline = time.monotonic() + duration
        loop = asyncio.get_running_loop()
        rss_task = loop.run_in_executor(None, rss_after, server, min(60.0, duration / 4))
        await asyncio.gather(
            *(soak.reader(deadline) for _ in range(READERS)),
            *(soak.writer(entry, deadline) for entry in tracked),
            chaos(server, database_url, duration, soak.tally),
        )
        start_rss = await rss_task
    end_rss = worker_rss(server)
    lines = [
        f"worker {pid}: {start_rss[pid]:.1f} MiB -> {end_rss[pid]:.1f} MiB "
        f"({(end_rss[pid] / start_rss[pid] - 1) * 100:+.1f}%)"
        for pid in sorted(start_rss)
        if pid in end_rss
    ]
    return soak.tally, "\n".join(lines)


def rss_after(server: Server, seconds: float) -> dict[int, float]:
    time.sleep(seconds)
    return worker_rss(server)


def report(tally: Tally, rss: str, recovery_seconds: float = RECOVERY_SECONDS) -> bool:
    """Print what the run saw; True when it passed."""
    print(
        "requests by status: " + ", ".join(f"{s}: {n}" for s, n in sorted(tally.statuses.items()))
    )
    print("writes: " + ", ".join(f"{k}: {n}" for k, n in sorted(tally.writes.items())))
    print(f"requests cut with a killed worker's connections: {tally.cut}")
    for what, seconds in tally.recovery.items():
        print(f"{what} back in {seconds:.2f} s")
    print(rss or "RSS: no worker lived through the whole run")
    print(f"5xx: {len(tally.server_errors)}")
    for line in tally.server_errors[:50]:
        print(f"  {line}")
    print(f"stale reads: {len(tally.stale)}")
    for line in tally.stale[:50]:
        print(f"  {line}")
    slow = [what for what, seconds in tally.recovery.items() if seconds > recovery_seconds]
    limited = tally.statuses[429]
    print(f"429: {limited}")
    return not tally.server_errors and not tally.stale and not slow and not limited


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0, help="how long (default: 2)")
    parser.add_argument("--workers", type=int, default=2, help="presto workers (default: 2)")
    parser.add_argument(
        "--recovery-seconds",
        type=float,
        default=RECOVERY_SECONDS,
        help=f"seconds a killed process may take to be back (default: {RECOVERY_SECONDS:g})",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("PRESTO_DATABASE_URL"),
        help="a database the run may wipe (--reset-db); PostgreSQL for every kind of chaos",
    )
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("--database-url (or PRESTO_DATABASE_URL) is needed")
    log_path = Path(tempfile.mkdtemp(prefix="presto-soak-")) / "presto.log"
    server = start_presto(
        args.database_url, workers=args.workers, log_path=log_path, reset_db=True, defaults=True
    )
    try:
        server.wait_until_ready("/restaurant/1/item")
        print(f"soak: {args.minutes:g} min, {args.workers} workers, log {log_path}", flush=True)
        tally, rss = asyncio.run(drive(server, args.database_url, args.minutes * 60))
    finally:
        server.stop()
    passed = report(tally, rss, args.recovery_seconds)
    print("soak passed" if passed else "soak FAILED")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
