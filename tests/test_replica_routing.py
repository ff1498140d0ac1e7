"""Which published reads the replica may answer (`presto.serving.replica_reads`), with the
replica and the primary played by fakes holding a menu version per restaurant: only what
this worker knows the replica has, else the primary. `tests/test_replica_reads.py` runs
the same against a real streaming replica."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from presto.serving.generations import MenuGenerations
from presto.serving.published_reads import LoopPublishedReads
from presto.serving.replica_reads import ReplicaRoutedReads
from presto.storage.published_menus import Published
from tests.helpers.fast_path import open_admission


class FakeReads:
    """A database's published menus: restaurant id -> menu version (or down)."""

    def __init__(self, versions: dict[int, int]) -> None:
        self.versions = versions
        self.down = False
        self.failures = 0
        self.reads = 0
        # Runs during a read (a write committing meanwhile).
        self.meanwhile: Any = None

    async def fetch(self, restaurant_id: int, variant: str) -> Published | None:
        self.reads += 1
        if self.meanwhile is not None:
            self.meanwhile()
            self.meanwhile = None
        if self.down:
            self.failures += 1
            return None
        version = self.versions[restaurant_id]
        return Published(version, f"m{version}", 0, None, b"", 0)

    async def close(self) -> None:
        pass


class FakeCursor:
    async def fetchone(self) -> tuple[str]:
        return ("0/3000060",)


class FakeListenConnection:
    async def execute(self, _sql: str) -> FakeCursor:
        return FakeCursor()


@pytest.fixture
def generations() -> MenuGenerations:
    return MenuGenerations()


def routed(
    generations: MenuGenerations, replica: FakeReads, primary: FakeReads
) -> ReplicaRoutedReads:
    return ReplicaRoutedReads(
        cast(LoopPublishedReads, replica),
        cast(LoopPublishedReads, primary),
        generations,
        open_admission(2),
    )


def version_read(reads: ReplicaRoutedReads, restaurant_id: int = 1) -> int:
    published = asyncio.run(reads.read(restaurant_id, ""))
    assert published is not None
    return published.menu_version


def test_the_primary_answers_until_the_worker_knows_what_the_replica_has(
    generations: MenuGenerations,
) -> None:
    replica, primary = FakeReads({1: 4}), FakeReads({1: 5})
    reads = routed(generations, replica, primary)
    assert version_read(reads) == 5  # no floor, no listener starting point: the primary
    assert (replica.reads, primary.reads) == (0, 1)


def test_a_replica_behind_the_version_read_from_the_primary_is_passed_over(
    generations: MenuGenerations,
) -> None:
    replica, primary = FakeReads({1: 4}), FakeReads({1: 5})
    reads = routed(generations, replica, primary)
    assert [version_read(reads) for _ in range(3)] == [5, 5, 5]
    assert reads.counts.as_dict() == {"replica": 0, "primary": 3, "behind": 2, "unavailable": 0}
    replica.versions[1] = 5  # caught up
    assert version_read(reads) == 5
    assert reads.counts.replica_reads == 1


def test_a_change_sends_the_next_read_to_the_primary(generations: MenuGenerations) -> None:
    replica, primary = FakeReads({1: 5}), FakeReads({1: 5})
    reads = routed(generations, replica, primary)
    version_read(reads)
    assert version_read(reads) == 5
    assert reads.counts.replica_reads == 1
    primary.versions[1] = 6  # a write, committed and heard: the generation moves
    generations.bump(1)
    assert version_read(reads) == 6
    assert version_read(reads) == 6  # the replica (5) is behind the new floor
    assert reads.counts.as_dict() == {"replica": 1, "primary": 3, "behind": 1, "unavailable": 0}


def test_a_write_during_the_primary_read_leaves_no_floor_for_its_generation(
    generations: MenuGenerations,
) -> None:
    replica, primary = FakeReads({1: 5}), FakeReads({1: 5})
    reads = routed(generations, replica, primary)
    # The primary answered version 5, but a write (version 6) bumped the generation
    # while it did: 5 is no floor for the new generation.
    primary.meanwhile = lambda: generations.bump(1)
    version_read(reads)
    primary.versions[1] = 6
    assert version_read(reads) == 6
    assert replica.reads == 0


def test_a_failed_replica_is_left_alone_and_reported(generations: MenuGenerations) -> None:
    replica, primary = FakeReads({1: 5}), FakeReads({1: 5})
    reads = routed(generations, replica, primary)
    version_read(reads)
    replica.down = True
    assert version_read(reads) == 5
    assert not reads.available
    assert reads.counts.unavailable == 1
    assert [version_read(reads) for _ in range(3)] == [5, 5, 5]
    assert replica.reads == 1  # not tried again while left alone


def test_menus_unchanged_since_the_listener_connected_are_read_from_a_caught_up_replica(
    generations: MenuGenerations, monkeypatch: pytest.MonkeyPatch
) -> None:
    replica, primary = FakeReads({1: 5, 2: 7}), FakeReads({1: 5, 2: 7})
    reads = routed(generations, replica, primary)
    caught_up = False

    async def replayed() -> bool:
        return caught_up

    monkeypatch.setattr(reads, "_replica_caught_up", replayed)
    asyncio.run(reads.on_listening(cast(Any, FakeListenConnection())))
    assert version_read(reads, 2) == 7
    assert replica.reads == 0  # not yet replayed up to the listener's starting point
    caught_up = True
    reads._floors.clear()
    assert version_read(reads, 2) == 7
    assert replica.reads == 1
    generations.bump(2)  # changed since: no longer known to be on the replica
    replica.versions[2], primary.versions[2] = 7, 8
    reads._floors.clear()
    assert version_read(reads, 2) == 8
