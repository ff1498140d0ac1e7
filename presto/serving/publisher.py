"""The publisher process: renders changed menus beside the workers, not inside them.

With `--publish-on-write background` (the default), a worker tells this process which
restaurant's menu a write changed, after the commit and before the response; the process
renders and stores it (`presto.api.menu_publishing`). Rendering a 2,000-item menu takes
hundreds of milliseconds of CPU: in a process of its own it runs on another core instead of
holding a worker's interpreter lock while the worker answers requests. Changes that arrive
while it renders are coalesced. A menu not yet published is rendered by its first reader,
so a slow or dead publisher costs time, never correctness.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable
from multiprocessing.queues import Queue

from presto.api.menu_publishing import publish_changed
from presto.config import Settings
from presto.storage.engine import make_engine, make_sessionmaker

log = logging.getLogger("presto.publisher")

# Seconds the process waits for a change before checking that its parent is still there.
POLL_SECONDS = 1.0
# Seconds `stop` waits for the menus being rendered to be stored.
STOP_SECONDS = 30.0

Changes = Queue  # of restaurant ids; None asks the process to stop


class PublisherProcess:
    """The publisher process and the queue the workers send changed restaurants to."""

    def __init__(self, settings: Settings, configure_logging: Callable[[Settings], None]) -> None:
        context = multiprocessing.get_context("spawn")
        self.changes: Changes = context.Queue()
        self.process = context.Process(
            target=run_publisher,
            args=(settings, self.changes, configure_logging, os.getpid()),
            name="presto-publisher",
            daemon=True,
        )

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        """Let it store what it is rendering, then end it."""
        self.changes.put(None)
        self.process.join(STOP_SECONDS)
        if self.process.exitcode is None:
            self.process.terminate()
            self.process.join()


def sender(changes: Changes) -> Callable[[int], None]:
    """What a worker calls with each changed restaurant id (never blocks: the queue buffers)."""
    # At exit, a worker does not wait for unsent ids: their menus render on first read.
    changes.cancel_join_thread()
    return changes.put


def run_publisher(
    settings: Settings,
    changes: Changes,
    configure_logging: Callable[[Settings], None],
    parent: int,
) -> None:
    """Entry point of the publisher process: publish each changed menu until told to stop
    or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor says when to stop
    configure_logging(settings)
    engine = make_engine(
        settings.database_url,
        pool_size=1,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.statement_timeout,
    )
    factory = make_sessionmaker(engine)
    log.info("publisher started (pid %d)", os.getpid())
    try:
        while (pending := next_changes(changes, parent)) is not None:
            for restaurant_id in sorted(pending):
                publish_changed(factory, restaurant_id)
    finally:
        engine.dispose()


def next_changes(changes: Changes, parent: int) -> set[int] | None:
    """The restaurants changed since the last call (waiting for one); None: stop."""
    while True:
        try:
            first = changes.get(timeout=POLL_SECONDS)
            break
        except queue.Empty:
            if os.getppid() != parent:
                return None
    if first is None:
        return None
    pending = {first}
    while True:
        try:
            more = changes.get_nowait()
        except queue.Empty:
            return pending
        if more is None:
            changes.put(None)  # stop after this batch
            return pending
        pending.add(more)
