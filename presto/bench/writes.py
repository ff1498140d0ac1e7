"""Write latency on a large menu: what one change to a 2,000-item menu costs its writer.

Five kinds of write, each repeated one at a time: a menu entry's name (`PATCH`), the price
of a leaf shared by many parents (`PATCH`: every parent's tree changes), the order of an
item's modifiers (`PUT .../modifiers`: the graph rules run over the whole restaurant), a
POS's price list of `BATCH_SIZE` items in one batch (`PATCH .../items`: one transaction,
one version), and a sold-out mark (`PUT .../sold-out`, the POS's most frequent edit).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from presto.bench.load import percentile

# Prices changed by one batch write: a POS's price update.
BATCH_SIZE = 300


@dataclass(frozen=True)
class WriteLatency:
    """Latencies of one kind of write, in milliseconds."""

    label: str
    writes: int
    errors: int
    p50_ms: float
    p99_ms: float
    # Each write's latency, in the order they were made.
    latencies: tuple[float, ...] = ()


def pick_targets(document: dict[str, Any]) -> tuple[int, int, int, list[int]]:
    """From a menu document: a menu entry, the leaf with the most parents, and an item with
    two or more modifiers (with them, in order)."""
    items = document["items"]
    entry = next(item["id"] for item in items if item["standalone"])
    parents = Counter(modifier for item in items for modifier in item["modifiers"])
    leaf = max(
        (item["id"] for item in items if not item["modifiers"]),
        key=lambda item_id: parents[item_id],
    )
    group = next(item for item in items if len(item["modifiers"]) >= 2)
    return entry, leaf, group["id"], list(group["modifiers"])


async def measure_writes(
    base_url: str,
    *,
    restaurant_id: int,
    api_key: str,
    repeats: int,
    first: int = 0,
    before_each: Callable[[aiohttp.ClientSession, int], Awaitable[None]] | None = None,
) -> list[WriteLatency]:
    """Each kind of write `repeats` times, one at a time; `first` numbers the first write
    (a later block of writes must change something again); `before_each`, if given, is
    awaited with the session and the write's position in its kind before each write
    (not timed)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    restaurant = f"{base_url}/restaurant/{restaurant_id}"
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        async with session.get(f"{restaurant}/menu") as response:
            response.raise_for_status()
            document = orjson.loads(await response.read())
            targets = pick_targets(document)

        async def timed(label: str, method: str, path: str, bodies: list[Any]) -> WriteLatency:
            latencies, errors = [], 0
            for position, body in enumerate(bodies):
                if before_each is not None:
                    await before_each(session, position)
                started = time.perf_counter()
                async with session.request(
                    method, f"{restaurant}{path}", json=body, headers=headers
                ) as answer:
                    await answer.read()
                    errors += answer.status >= 300
                latencies.append((time.perf_counter() - started) * 1000)
            ordered = sorted(latencies)
            return WriteLatency(
                label,
                len(bodies),
                errors,
                percentile(ordered, 0.5),
                percentile(ordered, 0.99),
                tuple(latencies),
            )

        ids = [item["id"] for item in document["items"]][:BATCH_SIZE]
        return [
            await timed(label, method, path, bodies)
            for label, method, path, bodies in write_kinds(targets, ids, repeats, first)
        ]


def write_kinds(
    targets: tuple[int, int, int, list[int]], ids: list[int], repeats: int, first: int = 0
) -> list[tuple[str, str, str, list[Any]]]:
    """Each kind of write: its label, method, path under the restaurant, and `repeats`
    bodies, each changing something (so every one is a new menu version)."""
    entry, leaf, group, modifiers = targets
    numbers = range(first, first + repeats)
    orders = [modifiers[::-1] if n % 2 == 0 else modifiers for n in numbers]
    batches = [
        {"items": [{"id": item_id, "price": 1_000_000 + n} for item_id in ids]} for n in numbers
    ]
    # Sold out until a different instant each time, all far ahead.
    until = [{"until": f"2999-01-01T00:00:{n % 60:02d}Z"} for n in numbers]
    return [
        (
            "PATCH a menu entry's name",
            "PATCH",
            f"/item/{entry}",
            [{"name": f"Renamed dish {n}"} for n in numbers],
        ),
        (
            "PATCH a shared leaf's price",
            "PATCH",
            f"/item/{leaf}",
            [{"price": 100 + n} for n in numbers],
        ),
        ("PUT an item's modifiers", "PUT", f"/item/{group}/modifiers", orders),
        (f"PATCH {len(ids)} prices in one batch", "PATCH", "/items", batches),
        ("PUT an item's sold-out", "PUT", f"/item/{entry}/sold-out", until),
    ]
