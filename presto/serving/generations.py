"""Menu generations: how every worker process of a host learns that a menu changed.

A generation is a counter per restaurant (hashed into a fixed number of slots) in memory
shared by the workers of one host: an `mmap` of a file the supervisor creates, or
anonymous memory for a single process. A write bumps its restaurant's counter after its
transaction commits and before its response is sent, so a read that starts after that
response sees the new counter and never trusts a response cached under an older one.
Reading a counter costs well under a microsecond.

On PostgreSQL, writes also `NOTIFY` (see `presto.services.restaurants.bump_menu_version`)
and each worker `LISTEN`s (`MenuChangeListener`) to learn of writes made on other hosts.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import mmap
import os
import secrets
import tempfile
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from psycopg import AsyncConnection

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

    def snapshot(self) -> list[int]:
        """Every slot's generation now (a copy)."""
        return self._counters.tolist()

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


# The channel a listener sends itself a notification on, through the pool's URL, to prove
# that its session hears what writes send (a transaction-mode pooler loses it).
PROBE_CHANNEL = "presto_menu_probe"
# Seconds a listener waits for its own notification before refusing to trust its session.
PROBE_TIMEOUT = 2.0
# Seconds before a listener that did not hear itself tries again.
UNVERIFIED_RETRY_SECONDS = 10.0


class MenuChangeListener:
    """Listens for menu changes made on other hosts (PostgreSQL `LISTEN`).

    Bumps the generation of each restaurant it hears of. While it is not connected,
    `connected` is False and the menu cache must not answer: changes may go unheard.
    After every (re)connection it first sends itself a notification through
    `probe_conninfo` (the pool's URL, as writes send theirs) and waits for it: a session
    that does not hear it (a `LISTEN` through a transaction-mode pooler, or on another
    database) leaves `connected` False and `verified` False, and is tried again later. Once
    verified, it bumps every generation, since changes may have been missed, and runs
    `on_listening` (the replica reads take their starting point there).
    """

    def __init__(
        self,
        conninfo: str,
        generations: MenuGenerations,
        *,
        retry_seconds: float = 1.0,
        probe_conninfo: str | None = None,
        on_listening: Callable[[AsyncConnection[Any]], Awaitable[None]] | None = None,
    ) -> None:
        self._conninfo = conninfo
        self._generations = generations
        self._retry_seconds = retry_seconds
        self._probe_conninfo = probe_conninfo
        self.on_listening = on_listening
        self.connected = False
        # False while the session does not hear its own notification; None: not checked.
        self.verified: bool | None = None

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after failures."""
        while True:
            pause = self._retry_seconds
            try:
                async with await AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    if await self._listen(connection):
                        async for notify in connection.notifies():
                            if notify.channel == NOTIFY_CHANNEL:
                                self._heard(notify.payload)
                    else:
                        pause = UNVERIFIED_RETRY_SECONDS
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    log.warning("menu change listener lost its connection: %s", exc)
                else:
                    log.warning("menu change listener cannot connect: %s", exc)
            finally:
                self.connected = False
            await asyncio.sleep(pause)

    async def _listen(self, connection: AsyncConnection[Any]) -> bool:
        """`LISTEN`, check the session hears its own notification, invalidate what may
        have been missed; False if it does not hear itself."""
        await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        if self._probe_conninfo is not None and not await self._hears_itself(connection):
            self.verified = False
            log.error(
                "menu change listener does not receive its own notification within %g s "
                "(is --listen-url a transaction-mode pooler, or another database?): "
                "menus are not cached; trying again in %g s",
                PROBE_TIMEOUT,
                UNVERIFIED_RETRY_SECONDS,
            )
            return False
        self._generations.bump_all()
        if self.on_listening is not None:
            await self.on_listening(connection)
        self.verified = True if self._probe_conninfo is not None else None
        self.connected = True
        log.info("listening for menu changes on channel %s", NOTIFY_CHANNEL)
        return True

    async def _hears_itself(self, connection: AsyncConnection[Any]) -> bool:
        """Send a notification with a fresh token through `probe_conninfo` and wait up to
        `PROBE_TIMEOUT` for it on `connection`; menu changes heard meanwhile count."""
        await connection.execute(f"LISTEN {PROBE_CHANNEL}")
        token = secrets.token_hex(8)
        assert self._probe_conninfo is not None
        async with await AsyncConnection.connect(
            self._probe_conninfo, autocommit=True, prepare_threshold=None
        ) as sender:
            await sender.execute("SELECT pg_notify(%s, %s)", (PROBE_CHANNEL, token))
        async for notify in connection.notifies(timeout=PROBE_TIMEOUT):
            if notify.channel == NOTIFY_CHANNEL:
                self._heard(notify.payload)
            elif notify.payload == token:
                return True
        return False

    def _heard(self, payload: str) -> None:
        try:
            restaurant_id = int(payload)
        except ValueError:
            log.warning("ignoring menu change notification %r", payload)
            return
        self._generations.bump(restaurant_id)
