"""Supervision of the helper processes `presto serve` starts beside its workers.

A helper process (presto.serving.helper_process) that dies is reaped, logged with its exit status,
counted in `/metrics` (`presto_process_restarts_total{process=...}`) and started again
after a backoff that doubles while it keeps dying young. One that dies young
`FAILING_AFTER` times in a row "cannot stay up": every worker's `/readyz` says so (503)
until a new start has stayed up `STABLE_SECONDS`. The state lives in shared memory that
the workers map, so any worker answers for the whole host.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from typing import Any

from presto.serving.telemetry.instruments import mark_process_dead, process_restarts

log = logging.getLogger("presto.supervision")

# The helper processes presto may run, each with its slot in `ProcessStates`.
PROCESS_NAMES = ("publisher", "relay")
# Seconds before the first restart; doubled for each death in a row, up to the maximum.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 30.0
# A process that ran this long is healthy again: its next death restarts it at once.
STABLE_SECONDS = 10.0
# Deaths in a row, each before `STABLE_SECONDS`, after which the process cannot stay up.
FAILING_AFTER = 4


class ProcessStates:
    """For each helper process: restarts so far and whether it cannot stay up, in memory
    shared with the workers (made before they start, handed to each as it spawns)."""

    def __init__(self, context: SpawnContext) -> None:
        # Two slots a process: restarts, failing (1.0) or not (0.0).
        self._slots: Any = context.RawArray("d", 2 * len(PROCESS_NAMES))

    def restarts(self, name: str) -> int:
        return int(self._slots[2 * PROCESS_NAMES.index(name)])

    def restarted(self, name: str) -> None:
        self._slots[2 * PROCESS_NAMES.index(name)] += 1

    def set_failing(self, name: str, failing: bool) -> None:
        self._slots[2 * PROCESS_NAMES.index(name) + 1] = 1.0 if failing else 0.0

    def failing(self) -> list[str]:
        """The helper processes that cannot stay up now."""
        return [n for i, n in enumerate(PROCESS_NAMES) if self._slots[2 * i + 1] == 1.0]


def exit_status(process: BaseProcess) -> str:
    """How a process ended, as the log says it: `exit status 3` or `signal SIGKILL`."""
    code = process.exitcode
    if code is not None and code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"exit status {code}"


class Supervised:
    """Keeps one helper process running: `spawn` makes and starts a new one (`restart`
    tells it that an earlier one died), a watch thread restarts it when it dies."""

    def __init__(
        self,
        name: str,
        spawn: Callable[[bool], BaseProcess],
        states: ProcessStates,
    ) -> None:
        self.name = name
        self._spawn = spawn
        self.states = states
        self.process: BaseProcess | None = None
        self.stopping = threading.Event()
        self._restarts = process_restarts().labels(process=name)
        self._watch = threading.Thread(target=self._run, name=f"{name}-watch", daemon=True)

    def start(self) -> None:
        self.process = self._spawn(False)
        self._watch.start()

    def stop(self) -> None:
        """Stop restarting; the caller ends the process itself."""
        self.stopping.set()

    def _run(self) -> None:
        delay = FIRST_BACKOFF
        young_deaths = 0
        while True:
            process = self.process
            assert process is not None
            started = time.monotonic()
            process.join(STABLE_SECONDS)
            if process.exitcode is None:
                young_deaths, delay = 0, FIRST_BACKOFF
                self.states.set_failing(self.name, False)
                process.join()
            if process.pid is not None:
                mark_process_dead(process.pid)  # its live gauges go with it
            if self.stopping.is_set():
                return
            if time.monotonic() - started < STABLE_SECONDS:
                young_deaths += 1
            if young_deaths >= FAILING_AFTER:
                self.states.set_failing(self.name, True)
            log.error(
                "%s process %s ended with %s; restarting in %.1f s",
                self.name, process.pid, exit_status(process), delay,
            )  # fmt: skip
            if self.stopping.wait(delay):
                return
            self.process = self._spawn(True)
            self.states.restarted(self.name)
            self._restarts.inc()
            delay = min(delay * 2, MAX_BACKOFF)
