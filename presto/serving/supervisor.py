"""The main process of `presto serve`: one worker in this process, or `--workers N` worker
processes it starts, restarts when one dies, and passes SIGINT/SIGTERM on to; beside them
the helper processes (the webhook relay, and the publisher with `--publish-on-write
background`; supervised by `presto.serving.supervision`) and the run's metrics directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Iterator
from multiprocessing.connection import wait as wait_for_processes
from multiprocessing.process import BaseProcess

from presto.config import Settings
from presto.serving.generations import MenuGenerations
from presto.serving.helper_process import HelperLinks, HelperProcess
from presto.serving.lifecycle import run_worker
from presto.serving.log_setup import configure_logging
from presto.serving.publisher import run_publisher
from presto.serving.relay_process import run_relay
from presto.serving.supervision import ProcessStates
from presto.serving.telemetry.instruments import mark_process_dead
from presto.serving.telemetry.metrics import metrics_directory

log = logging.getLogger("presto.server")

# A worker that dies sooner than this after starting is not restarted.
WORKER_MIN_LIFETIME = 5.0


def run(settings: Settings) -> int:
    """Run one worker in this process, or supervise `settings.workers` of them, their
    metrics kept in one directory for the length of the run, beside the helper processes."""
    with metrics_directory():
        helpers = HelperProcesses(settings)
        helpers.start()
        try:
            if settings.workers == 1:
                run_worker(settings, helpers=helpers.links)
                return 0
            return supervise(settings, helpers.links)
        finally:
            helpers.stop()


class HelperProcesses:
    """The host's helper processes: the webhook relay, and the publisher with
    `--publish-on-write background`; their states shared with the workers."""

    def __init__(self, settings: Settings) -> None:
        states = ProcessStates(multiprocessing.get_context("spawn"))
        self.processes = [HelperProcess("relay", run_relay, settings, configure_logging, states)]
        publish = None
        if settings.publish_on_write == "background":
            publisher = HelperProcess(
                "publisher", run_publisher, settings, configure_logging, states
            )
            self.processes.append(publisher)
            publish = publisher.changes
        self.links = HelperLinks(publish, self.processes[0].changes, states)

    def start(self) -> None:
        for process in self.processes:
            process.start()

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def supervise(settings: Settings, helpers: HelperLinks | None = None) -> int:
    """Run `settings.workers` worker processes until SIGINT/SIGTERM; 1 if any failed."""
    generations_path = MenuGenerations.create_file()
    try:
        with reserved_port(settings) as settings:
            return Supervisor(settings, generations_path, helpers).run()
    finally:
        os.unlink(generations_path)


@contextlib.contextmanager
def reserved_port(settings: Settings) -> Iterator[Settings]:
    """`settings` with a port every worker can share: with `--port 0`, one the OS picks,
    held by a bound socket (not listening, so it takes no connection) for the whole run."""
    if settings.port != 0:
        yield settings
        return
    family, kind, _, _, address = socket.getaddrinfo(settings.host, 0, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        yield dataclasses.replace(settings, port=sock.getsockname()[1])


class Supervisor:
    """Starts the workers, restarts one that dies, and passes SIGINT/SIGTERM on to them."""

    def __init__(
        self, settings: Settings, generations_path: str, helpers: HelperLinks | None = None
    ) -> None:
        self.settings = settings
        self.generations_path = generations_path
        self.helpers = helpers
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[BaseProcess] = []
        self.started: dict[BaseProcess, float] = {}
        self.stopping = False

    def start(self) -> None:
        process = self.context.Process(
            target=run_worker,
            args=(self.settings, self.generations_path, self.helpers),
            name="presto-worker",
        )
        process.start()
        self.workers.append(process)
        self.started[process] = time.monotonic()

    def stop(self, signum: int, _frame: object = None) -> None:
        self.stopping = True
        for process in self.workers:
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signum)

    def run(self) -> int:
        for _ in range(self.settings.workers):
            self.start()
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        failed = False
        while self.workers:
            wait_for_processes([process.sentinel for process in self.workers])
            for process in [process for process in self.workers if process.exitcode is not None]:
                self.workers.remove(process)
                process.join()
                if process.pid is not None:
                    mark_process_dead(process.pid)
                lifetime = time.monotonic() - self.started.pop(process)
                if self.stopping:
                    failed = failed or process.exitcode != 0
                elif lifetime < WORKER_MIN_LIFETIME:
                    # Dying at start-up (port taken, database down): restarting would spin.
                    log.error("worker %d failed at start-up; stopping", process.pid)
                    self.stop(signal.SIGTERM)
                    failed = True
                else:
                    log.error("worker %d exited with %s; restarting", process.pid, process.exitcode)
                    self.start()
        return 1 if failed else 0
