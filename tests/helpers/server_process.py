"""Run `presto serve` as a real subprocess for end-to-end tests.

`running_presto` is what an end-to-end test starts presto with: options, workers, a reset
database, a key, and the port presto bound (`--port 0`) read back from its log.
`ServerProcess` is the bare process, for tests of unusual starts (one that fails, say).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from presto.services import keys
from presto.storage.engine import make_engine, make_sessionmaker
from tests.helpers.waiting import wait_until

LISTENING = re.compile(r"presto listening on http://([\d.]+):(\d+) \(pid (\d+)\)")


class ServerProcess:
    """A `presto serve` process whose standard error is collected line by line."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "presto", "serve", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own process group, so that clean-up reaches worker processes too.
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, pattern: str, *, count: int = 1, timeout: float = 30) -> list[str]:
        """Wait until `count` lines match `pattern`; return the matching lines."""

        def missing() -> str:
            return f"no {count} line(s) matching {pattern!r} in:\n" + self.output

        def found() -> list[str] | None:
            lines = [line for line in self.lines if re.search(pattern, line)]
            if len(lines) >= count:
                return lines
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(missing())  # ended: no more lines will come
            return None

        return wait_until(found, timeout, missing, interval=0.02)

    def wait_until_listening(self, *, workers: int = 1, timeout: float = 30) -> tuple[str, int]:
        """Wait for every worker's "listening" line; return the address."""
        lines = self.wait_for_line(LISTENING.pattern, count=workers, timeout=timeout)
        match = LISTENING.search(lines[0])
        assert match is not None
        return match.group(1), int(match.group(2))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def terminate(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def stop(self) -> None:
        """Make sure the process is gone (a test's clean-up)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@dataclass
class Presto:
    """A running `presto serve`: where it listens, its process (log lines, signals) and,
    when asked for, a key that writes to restaurant 1."""

    server: ServerProcess
    host: str
    port: int
    key: str = ""

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """SIGKILL to its process group (the block's end does it too)."""
        self.server.stop()


@contextlib.contextmanager
def running_presto(
    database_url: str,
    cwd: Path,
    *options: str,
    workers: int = 1,
    reset_db: bool = True,
    key: bool = False,
    key_database_url: str | None = None,
    port: int = 0,
    timeout: float = 60,
) -> Iterator[Presto]:
    """`presto serve` on `database_url` with `options`, run from `cwd`, until the block
    ends; once every worker listens.

    `reset_db` starts on the demo menus; `key` makes a key for restaurant 1 (through
    `key_database_url` when given, as behind a pooler); `port` 0 lets the OS choose, and
    the port is read back from presto's "listening" line."""
    cwd.mkdir(parents=True, exist_ok=True)
    workers_option = ("--workers", str(workers)) if workers != 1 else ()
    reset_option = ("--reset-db",) if reset_db else ()
    server = ServerProcess(
        "--port", str(port), *workers_option, "--database-url", database_url, *reset_option,
        *options,
        cwd=cwd,
    )  # fmt: skip
    try:
        host, bound = server.wait_until_listening(workers=workers, timeout=timeout)
        presto = Presto(server, host, bound)
        if key:
            presto.key = restaurant_key(key_database_url or database_url)
        yield presto
    finally:
        server.stop()


def restaurant_key(database_url: str, restaurant_id: int = 1) -> str:
    """A new key that writes to `restaurant_id`'s menu."""
    engine = make_engine(database_url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            return keys.create_key(session, restaurant_id=restaurant_id).secret
    finally:
        engine.dispose()


def process_state(pid: int) -> str | None:
    """The kernel's state letter of a process (Z: a zombie), None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None
