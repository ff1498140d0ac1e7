"""The helper processes `presto serve` runs beside its workers, one of each per host: the
publisher (presto.serving.publisher) and the webhook relay (presto.serving.relay_process).

Each is fed restaurant ids through a queue: a worker puts the id a write changed, after
the commit. The workers' queue is read in a forwarding thread of the process that owns
it, and each helper process gets a queue of its own: a helper killed while it read would
leave a shared queue's reader lock held for good. Helpers are forked from a fork server
that imported them once, so a restart costs a fork, not an interpreter importing presto
while the workers hold the cores; supervision (restarts, `/readyz`) is
presto.serving.supervision's.
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue

from presto.config import Settings
from presto.serving.supervision import ProcessStates, Supervised

# Seconds a helper waits for a change before checking that its parent is still there.
POLL_SECONDS = 1.0
# Seconds `stop` waits for a helper to finish what it holds.
STOP_SECONDS = 30.0
# The modules helper processes run, imported once by the fork server.
HELPER_MODULES = ["presto.serving.publisher", "presto.serving.relay_process"]

Changes = Queue  # of restaurant ids; None asks the reader to stop
# A helper's entry point: (settings, its queue, logging set-up, restarted?).
HelperMain = Callable[[Settings, Changes, Callable[[Settings], None], bool], None]


@dataclass(frozen=True)
class HelperLinks:
    """What a worker is handed of the helper processes: the queues it sends changed
    restaurants to (None: that helper does not run) and their states (for `/readyz`)."""

    publish: Changes | None
    relay: Changes | None
    states: ProcessStates


class HelperProcess:
    """One helper process, kept running, and the queue the workers send changes to."""

    def __init__(
        self,
        name: str,
        main: HelperMain,
        settings: Settings,
        configure_logging: Callable[[Settings], None],
        states: ProcessStates,
    ) -> None:
        self.name = name
        self.main = main
        self.settings = settings
        self.configure_logging = configure_logging
        self.context = multiprocessing.get_context("spawn")
        self.processes = helper_context()
        self.changes: Changes = self.context.Queue()
        self.inbox: Changes = self.context.Queue()
        self.supervised = Supervised(name, self._spawn, states)
        self._forwarder = threading.Thread(
            target=self._forward, name=f"{name}-forward", daemon=True
        )

    def start(self) -> None:
        self.supervised.start()
        self._forwarder.start()

    def stop(self) -> None:
        """Let it finish what it holds, then end it."""
        self.supervised.stop()
        self.changes.put(None)
        self._forwarder.join(STOP_SECONDS)
        self.inbox.put(None)
        process = self.supervised.process
        if process is None:
            return
        process.join(STOP_SECONDS)
        if process.exitcode is None:
            process.terminate()
            process.join()

    def _spawn(self, restarted: bool) -> BaseProcess:
        """Start the helper with a queue of its own."""
        if restarted:
            self.inbox = self.context.Queue()
        process = self.processes.Process(
            target=self.main,
            args=(self.settings, self.inbox, self.configure_logging, restarted),
            name=f"presto-{self.name}",
            daemon=True,
        )
        process.start()
        return process

    def _forward(self) -> None:
        """Hand each change the workers send to the helper process of the moment."""
        while (restaurant_id := self.changes.get()) is not None:
            self.inbox.put(restaurant_id)


def helper_context() -> ForkServerContext:
    """Where helper processes come from: a fork server that imported their modules once.

    The fork server is a clean process of its own (no threads, no connections), so forking
    it carries nothing of the supervisor's state.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(HELPER_MODULES)
    return context


def sender(changes: Changes) -> Callable[[int], None]:
    """What a worker calls with each changed restaurant id (never blocks: the queue buffers)."""
    # At exit, a worker does not wait for unsent ids: a helper catches up on its own.
    changes.cancel_join_thread()
    return changes.put


def enter_helper(
    settings: Settings, configure_logging: Callable[[Settings], None]
) -> BaseProcess | None:
    """What every helper does first: leave SIGINT to the supervisor (which says when to
    stop), log as `presto serve` does; the parent to watch, `presto serve` (which made
    this process through the fork server): once it is gone, so is the helper."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(settings)
    return multiprocessing.parent_process()


def next_changes(changes: Changes, parent: BaseProcess | None) -> set[int] | None:
    """The restaurants changed since the last call (waiting for one); None: stop (told
    to, or the parent, `presto serve`, is gone)."""
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
