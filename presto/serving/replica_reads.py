"""Published menus read from a streaming replica (`--replica-url`), never older than the
primary would answer.

A replica replays the primary's changes some time after they commit; a read there may
show a menu from before a write whose response has already arrived. The fast path's
generation counters say when this host learnt of a change (a write here, or a `NOTIFY`
heard), so a worker trusts the replica only for what it knows the replica has:

- a menu whose generation has not moved since the listener (re)connected, once the
  replica has replayed the primary's WAL up to the point the listener took then (every
  change this host knew of before is in it; the generations were copied first);
- a menu whose generation has not moved since this worker read it from the primary,
  when the replica's row is at least that version (the "floor").

Anything else (a menu changed since, a replica behind its floor, a replica down) is read
from the primary, which sets the floor again. A read the replica fails marks it down for
`REPLICA_RETRY_SECONDS`: reads go to the primary meanwhile, and `/readyz` says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from presto.serving.admission import Admission
from presto.serving.generations import SLOTS, MenuGenerations
from presto.serving.published_reads import LoopPublishedReads
from presto.storage.published_menus import Published

log = logging.getLogger(__name__)

# Seconds a replica that failed a read is left alone before it is tried again.
REPLICA_RETRY_SECONDS = 5.0
# Seconds between two checks of how far a replica has replayed, until it has caught up.
CATCH_UP_CHECK_SECONDS = 0.2
# Menus whose floor a worker remembers; past it they start over (only costs primary reads).
MAX_FLOORS = 100_000
# How far the replica has replayed, compared with a primary's WAL position (a primary
# given as replica has replayed everything).
CAUGHT_UP = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() >= %s::pg_lsn ELSE true END"
)


@dataclass
class ReplicaCounts:
    """What the replica routing counted, for `/metrics`."""

    replica_reads: int = 0
    primary_reads: int = 0
    behind: int = 0
    unavailable: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "replica": self.replica_reads,
            "primary": self.primary_reads,
            "behind": self.behind,
            "unavailable": self.unavailable,
        }


class ReplicaRoutedReads:
    """Published reads from the replica when it is known to be current, else the primary."""

    def __init__(
        self,
        replica: LoopPublishedReads,
        primary: LoopPublishedReads,
        generations: MenuGenerations,
        admission: Admission,
    ) -> None:
        self.replica = replica
        self.primary = primary
        self.generations = generations
        self.admission = admission
        self.counts = ReplicaCounts()
        # restaurant id -> (generation, menu version) read from the primary then.
        self._floors: dict[int, tuple[int, int]] = {}
        # The generations and the primary's WAL position when the listener last connected.
        self._epoch: list[int] | None = None
        self._epoch_lsn: str | None = None
        self._caught_up = False
        self._checked_at = 0.0
        self._down_until = 0.0

    @property
    def available(self) -> bool:
        """False while the replica is left alone after a failed read."""
        return time.monotonic() >= self._down_until

    async def on_listening(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """The listener (re)connected: start over from this point (generations first)."""
        self._epoch = self.generations.snapshot()
        cursor = await connection.execute("SELECT pg_current_wal_lsn()::text")
        row = await cursor.fetchone()
        self._epoch_lsn = None if row is None else str(row[0])
        self._caught_up = False
        self._floors.clear()

    async def read(self, restaurant_id: int, variant: str) -> Published | None:
        """The current published body, or None: Flask answers the request."""
        return await self.admission.read(lambda: self._route(restaurant_id, variant))

    async def close(self) -> None:
        await self.replica.close()
        await self.primary.close()

    async def _route(self, restaurant_id: int, variant: str) -> Published | None:
        generation = self.generations.get(restaurant_id)
        floor = await self._floor(restaurant_id, generation)
        if floor is not None:
            failures = self.replica.failures
            published = await self.replica.fetch(restaurant_id, variant)
            if published is not None and published.menu_version >= floor:
                self.counts.replica_reads += 1
                return published
            if self.replica.failures != failures:
                self._replica_failed()
            else:
                self.counts.behind += 1
        published = await self.primary.fetch(restaurant_id, variant)
        self.counts.primary_reads += 1
        if published is not None:
            if len(self._floors) >= MAX_FLOORS:
                self._floors.clear()
            self._floors[restaurant_id] = (generation, published.menu_version)
        return published

    async def _floor(self, restaurant_id: int, generation: int) -> int | None:
        """The lowest menu version the replica may answer with; None: ask the primary."""
        if not self.available:
            return None
        known = self._floors.get(restaurant_id)
        if known is not None:
            return known[1] if known[0] == generation else None
        epoch = self._epoch
        if epoch is None or epoch[restaurant_id % SLOTS] != generation:
            return None
        return 0 if await self._replica_caught_up() else None

    async def _replica_caught_up(self) -> bool:
        """Whether the replica has replayed up to the listener's starting point (checked
        at most every `CATCH_UP_CHECK_SECONDS` until it has)."""
        if self._caught_up or self._epoch_lsn is None:
            return self._caught_up
        now = time.monotonic()
        if now - self._checked_at < CATCH_UP_CHECK_SECONDS:
            return False
        self._checked_at = now
        try:
            async with asyncio.timeout(2.0):
                async with await psycopg.AsyncConnection.connect(
                    self.replica.conninfo, autocommit=True, **self.replica.timeouts
                ) as connection:
                    cursor = await connection.execute(CAUGHT_UP, (self._epoch_lsn,))
                    row = await cursor.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("replica: cannot tell how far it has replayed: %s", exc)
            self._replica_failed()
            return False
        self._caught_up = bool(row and row[0])
        return self._caught_up

    def _replica_failed(self) -> None:
        if self.available:
            log.warning(
                "replica read failed: published menus are read from the primary for %g s",
                REPLICA_RETRY_SECONDS,
            )
        self.counts.unavailable += 1
        self._down_until = time.monotonic() + REPLICA_RETRY_SECONDS
