"""The publisher process: renders changed menus beside the workers, not inside them.

With `--publish-on-write background` (the default), a worker tells this process which
restaurant's menu a write changed, after the commit and before the response; the process
renders and stores it (`presto.menus.publishing`). Rendering a 2,000-item menu takes
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
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from presto.config import Settings
from presto.menus.publishing import publish_changed, publish_menus
from presto.serving.supervision import ProcessStates, Supervised
from presto.storage.engine import make_engine, make_sessionmaker
from presto.storage.published_menus import unpublished_restaurants

log = logging.getLogger("presto.publisher")

# Seconds the process waits for a change before checking that its parent is still there.
POLL_SECONDS = 1.0
# Seconds `stop` waits for the menus being rendered to be stored.
STOP_SECONDS = 30.0

Changes = Queue  # of restaurant ids; None asks the reader to stop


@dataclass(frozen=True)
class PublisherLink:
    """What a worker is handed of the publisher: the queue it sends changed restaurants
    to, and the helper processes' states (for `/readyz`)."""

    changes: Changes
    states: ProcessStates


class PublisherProcess:
    """The publisher process, kept running, and the queue the workers send changes to.

    The workers' queue is read here, in a relay thread of the process that owns it, and
    each publisher process gets a queue of its own: a publisher killed while it read
    would leave a shared queue's reader lock held for good. A restarted publisher first
    publishes the menus whose changes its predecessor took with it.
    """

    def __init__(self, settings: Settings, configure_logging: Callable[[Settings], None]) -> None:
        self.settings = settings
        self.configure_logging = configure_logging
        self.context = multiprocessing.get_context("spawn")
        self.processes = publisher_context()
        self.link = PublisherLink(self.context.Queue(), ProcessStates(self.context))
        self.inbox: Changes = self.context.Queue()
        self.supervised = Supervised("publisher", self._spawn, self.link.states)
        self._relay = threading.Thread(target=self._forward, name="publisher-relay", daemon=True)

    @property
    def process(self) -> BaseProcess | None:
        return self.supervised.process

    def start(self) -> None:
        self.supervised.start()
        self._relay.start()

    def stop(self) -> None:
        """Let it store what it is rendering, then end it."""
        self.supervised.stop()
        self.link.changes.put(None)
        self._relay.join(STOP_SECONDS)
        self.inbox.put(None)
        process = self.supervised.process
        if process is None:
            return
        process.join(STOP_SECONDS)
        if process.exitcode is None:
            process.terminate()
            process.join()

    def _spawn(self, restarted: bool) -> BaseProcess:
        """Start a publisher process with a queue of its own."""
        if restarted:
            self.inbox = self.context.Queue()
        process = self.processes.Process(
            target=run_publisher,
            args=(self.settings, self.inbox, self.configure_logging, restarted),
            name="presto-publisher",
            daemon=True,
        )
        process.start()
        return process

    def _forward(self) -> None:
        """Hand each change the workers send to the publisher process of the moment."""
        while (restaurant_id := self.link.changes.get()) is not None:
            self.inbox.put(restaurant_id)


def publisher_context() -> ForkServerContext:
    """Where publisher processes come from: a fork server that imported this module once.

    A restart then forks a process with presto already imported, instead of spawning an
    interpreter that spends seconds importing it while the workers hold the cores. The
    fork server is a clean process of its own (no threads, no connections), so forking
    it carries nothing of the supervisor's state.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def sender(changes: Changes) -> Callable[[int], None]:
    """What a worker calls with each changed restaurant id (never blocks: the queue buffers)."""
    # At exit, a worker does not wait for unsent ids: their menus render on first read.
    changes.cancel_join_thread()
    return changes.put


def run_publisher(
    settings: Settings,
    changes: Changes,
    configure_logging: Callable[[Settings], None],
    restarted: bool = False,
) -> None:
    """Entry point of the publisher process: publish each changed menu until told to stop
    or orphaned; a `restarted` one first catches up on menus left unpublished."""
    # `presto serve`, which made this process (through the fork server): once it is gone,
    # so is this one.
    parent = multiprocessing.parent_process()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor says when to stop
    configure_logging(settings)
    engine = make_engine(
        settings.database_url,
        pool_size=1,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.statement_timeout,
        transaction_pooler=settings.database_pooler == "transaction",
    )
    factory = make_sessionmaker(engine)
    log.info("publisher started (pid %d)", os.getpid())
    try:
        if restarted:
            with factory() as session:
                behind = unpublished_restaurants(session)
            count = publish_menus(factory, behind)
            menus = "menu" if count == 1 else "menus"
            log.info("published %d %s left unpublished", count, menus)
        while (pending := next_changes(changes, parent)) is not None:
            for restaurant_id in sorted(pending):
                publish_changed(factory, restaurant_id)
    finally:
        engine.dispose()


def next_changes(changes: Changes, parent: BaseProcess | None) -> set[int] | None:
    """The restaurants changed since the last call (waiting for one); None: stop."""
    while True:
        try:
            first = changes.get(timeout=POLL_SECONDS)
            break
        except queue.Empty:
            if parent is not None and not parent.is_alive():
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
