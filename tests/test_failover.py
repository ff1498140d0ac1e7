"""End to end: a primary failover under load (PostgreSQL only).

presto runs on a cluster of the test's own (`initdb`) through a two-host URL with
`target_session_attrs=read-write`; a streaming standby follows it. While a writer raises
a price every 50 ms and readers read the menu, the primary stops and the standby is
promoted. presto's pool, published reads and listener find the new primary by
themselves: writes succeed again within `FAILOVER_BOUND` seconds, menu reads are
answered throughout (from the cache, stale-if-error, while no database answers), and
no read shows a price older than a write answered before the read began.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

from presto.storage.availability import PROBE_INTERVAL
from tests.helpers.postgres_cluster import new_primary, standby_of
from tests.helpers.scale_out import Instance, instance, prices
from tests.helpers.waiting import wait_until

pytestmark = pytest.mark.e2e

# Seconds from the primary's stop to the first write answered by the new primary that
# doc/deploy.md promises (the database breaker's probe and the pool's reconnection).
FAILOVER_BOUND = 15.0
# Seconds of load before the stop, and after the first write on the new primary.
BEFORE, AFTER = 2.0, 3.0
# Seconds a loaded machine may add to a worker's breaker probe.
SCHEDULING_SLACK = 0.5


@dataclass
class Load:
    """What the writer and the readers saw."""

    presto: Instance
    item_id: int
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    acknowledged: int = 0
    # (answered at, status) of each write and read, and the reads that went back.
    writes: list[tuple[float, int]] = field(default_factory=list)
    reads: list[tuple[float, int]] = field(default_factory=list)
    stale: list[tuple[int, int]] = field(default_factory=list)
    # When reads answered from the cache marked `stale-if-error` (no database) started.
    marked: list[float] = field(default_factory=list)

    def write(self) -> None:
        price = 5000
        while not self.stop.is_set():
            price += 1
            try:
                status = self.presto.set_price(self.item_id, price).status
            except OSError:
                status = 0
            with self.lock:
                self.writes.append((time.monotonic(), status))
                if status == 200:
                    self.acknowledged = price
            time.sleep(0.05)

    def read(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                floor = self.acknowledged
            started = time.monotonic()
            try:
                answer = self.presto.get()
            except OSError:
                self.reads.append((time.monotonic(), 0))
                continue
            self.reads.append((time.monotonic(), answer.status))
            marked = "stale-if-error" in answer.headers.get("cache-status", "")
            if answer.status == 200:
                shown = max(prices(answer.json(), self.item_id))
                if marked:
                    self.marked.append(started)
                elif shown < floor:
                    self.stale.append((floor, shown))
            time.sleep(0.01)

    def first_write_after(self, moment: float) -> float | None:
        return next((at for at, status in self.writes if at > moment and status == 200), None)


def test_writes_resume_on_the_promoted_standby_within_the_bound(tmp_path: Path) -> None:
    with new_primary() as primary:
        primary.execute("CREATE DATABASE presto")
        with standby_of(primary.port) as standby:
            url = (
                "postgresql+psycopg://postgres@/presto?host=127.0.0.1,127.0.0.1"
                f"&port={primary.port},{standby.port}&target_session_attrs=read-write"
            )
            with instance(tmp_path, url, reset_db=True, key=True) as presto:
                engine = sa.create_engine(url)
                with engine.connect() as connection:
                    item_id = connection.execute(
                        sa.text("SELECT min(id) FROM item WHERE restaurant_id = 1")
                    ).scalar_one()
                engine.dispose()
                load = Load(presto, item_id)
                threads = [threading.Thread(target=load.write)]
                threads += [threading.Thread(target=load.read) for _ in range(2)]
                for thread in threads:
                    thread.start()
                try:
                    time.sleep(BEFORE)
                    stopped = time.monotonic()
                    primary.stop("fast")
                    standby.pg_ctl("promote")
                    promoted = time.monotonic()
                    deadline = stopped + FAILOVER_BOUND + AFTER
                    # Until a write is answered on the new primary, or the bound has passed
                    # (the assertions below say which).
                    wait_until(
                        lambda: (
                            load.first_write_after(promoted) is not None
                            or time.monotonic() >= deadline
                        ),
                        FAILOVER_BOUND + AFTER + 10,
                        interval=0.1,
                    )
                    time.sleep(AFTER)
                    verified = presto.metric("presto_listener_verified")
                finally:
                    load.stop.set()
                    for thread in threads:
                        thread.join(30)
                log = presto.server.output
    resumed = load.first_write_after(promoted)
    assert resumed is not None, log[-3000:]
    gap = resumed - stopped
    during = [status for at, status in load.reads if stopped <= at <= resumed]
    failed_writes = [status for at, status in load.writes if stopped <= at <= resumed]
    after = [status for at, status in load.reads if at > resumed]
    print(
        f"\nstop + promote took {promoted - stopped:.2f} s; first write on the new primary "
        f"{gap:.2f} s after the stop; reads in the gap: {len(during)} "
        f"({sum(s == 200 for s in during)} answered 200, others {sorted(set(during) - {200})}); "
        f"writes refused in the gap: {len(failed_writes) - 1} {sorted(set(failed_writes))}; "
        f"reads after: {len(after)}; marked stale-if-error: {len(load.marked)}; "
        f"stale reads: {len(load.stale)}"
    )
    assert load.stale == []
    # The first write may land on one worker while the other's breaker still waits for its
    # next probe: that worker's reads stay marked stale-if-error until then, never unmarked.
    settled = resumed + PROBE_INTERVAL + SCHEDULING_SLACK
    late = [at - resumed for at in load.marked if at > resumed]
    print(f"marked reads after the first write: {len(late)}, last {max(late, default=0):.2f} s")
    assert all(stopped <= at <= settled for at in load.marked), late
    assert gap < FAILOVER_BOUND
    assert during and all(status == 200 for status in during)
    assert after and all(status == 200 for status in after)
    # Each worker's listener connected twice: to the first primary, then to the new one,
    # and heard its own notification there.
    assert log.count("listening for menu changes") == 4, log[-3000:]
    assert verified == 1.0
