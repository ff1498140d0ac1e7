"""Menu generations: how every worker process of a host learns that a menu changed.

A generation is a counter per restaurant (hashed into a fixed number of slots) in memory
shared by the workers of one host: an `mmap` of a file the supervisor creates, or
anonymous memory for a single process. A write bumps its restaurant's counter after its
transaction commits and before its response is sent, so a read that starts after that
response sees the new counter and never trusts a response cached under an older one.
Reading a counter costs well under a microsecond.

On PostgreSQL, writes also `NOTIFY` (see `presto.menu.bump_menu_version`) and each worker
`LISTEN`s (`MenuChangeListener`) to learn of writes made on other hosts.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
import tempfile
import threading
from collections.abc import Callable

from presto.storage.engine import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

# Counters shared by all restaurants; two restaurants in one slot only cost extra misses.
SLOTS = 4096
_SLOT_BYTES = 8


class MenuGenerations:
    """Per-restaurant change counters, shared between processes when backed by a file."""

    def __init__(self, path: str | None = None) -> None:
        self._fd: int | None = None
        if path is None:
            self._mmap = mmap.mmap(-1, SLOTS * _SLOT_BYTES)
        else:
            self._fd = os.open(path, os.O_RDWR)
            self._mmap = mmap.mmap(self._fd, SLOTS * _SLOT_BYTES)
        self._counters = memoryview(self._mmap).cast("q")
        self._lock = threading.Lock()

    @staticmethod
    def create_file() -> str:
        """Create a zeroed counter file (in /dev/shm where there is one) and return its path."""
        directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
        fd, path = tempfile.mkstemp(prefix="presto-generations-", dir=directory)
        try:
            os.ftruncate(fd, SLOTS * _SLOT_BYTES)
        finally:
            os.close(fd)
        return path

    def get(self, restaurant_id: int) -> int:
        """The current generation of the restaurant's menu."""
        return self._counters[restaurant_id % SLOTS]

    def bump(self, restaurant_id: int) -> None:
        """Mark the restaurant's menu as changed, for every process sharing the counters."""
        self._increment([restaurant_id % SLOTS])

    def bump_all(self) -> None:
        """Mark every menu as changed (after changes may have been missed)."""
        self._increment(range(SLOTS))

    def _increment(self, slots: range | list[int]) -> None:
        # Increments must not be lost, or a response cached between two writes could
        # outlive the second: a thread lock within the process, flock across processes.
        with self._lock:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                for slot in slots:
                    self._counters[slot] += 1
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Release the shared memory (the file stays; its creator removes it)."""
        self._counters.release()
        self._mmap.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class MenuChangeListener:
    """Listens for menu changes made on other hosts (PostgreSQL `LISTEN`).

    Bumps the generation of each restaurant it hears of. While it is not connected,
    `connected` is False and the menu cache must not answer: changes may go unheard.
    After every (re)connection it bumps every generation, since changes may have been missed.
    """

    def __init__(
        self,
        conninfo: str,
        generations: MenuGenerations,
        *,
        retry_seconds: float = 1.0,
        on_change: Callable[[int], None] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._generations = generations
        # Also told of each change heard (the webhook relay wakes).
        self._on_change = on_change
        self._retry_seconds = retry_seconds
        self.connected = False

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after failures."""
        import psycopg

        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._generations.bump_all()
                    self.connected = True
                    log.info("listening for menu changes on channel %s", NOTIFY_CHANNEL)
                    async for notify in connection.notifies():
                        self._heard(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    log.warning("menu change listener lost its connection: %s", exc)
                else:
                    log.warning("menu change listener cannot connect: %s", exc)
            finally:
                self.connected = False
            await asyncio.sleep(self._retry_seconds)

    def _heard(self, payload: str) -> None:
        try:
            restaurant_id = int(payload)
        except ValueError:
            log.warning("ignoring menu change notification %r", payload)
            return
        self._generations.bump(restaurant_id)
        if self._on_change is not None:
            self._on_change(restaurant_id)
