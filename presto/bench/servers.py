"""The servers under test, each started as a subprocess on a free 127.0.0.1 port.

Every server runs in a session of its own, its standard error in a log file (presto's
access log included, so nothing blocks on a pipe nobody reads). `stop` sends SIGTERM to
the process the harness started and, if it lingers, SIGKILL to its process group: the
harness only ever signals processes it started.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

HOST = "127.0.0.1"
# How long a server may take to start answering.
START_TIMEOUT = 60.0
# How long a server gets to exit after SIGTERM before its process group is killed.
STOP_TIMEOUT = 15.0

# The line each worker logs once it listens: presto's own, and the ceiling's copy of it.
LISTENING = re.compile(r"listening on http://[\d.]+:\d+ \(pid (\d+)\)")
GUNICORN_WORKER = re.compile(r"Booting worker with pid: (\d+)")


class ServerError(RuntimeError):
    """A server did not start, or died."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One server under test: a subprocess, its log file, and its worker processes."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        *,
        port: int,
        workers: int,
        worker_line: re.Pattern[str],
        log_path: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.workers = workers
        self.worker_line = worker_line
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                start_new_session=True,
            )

    def url(self, path: str) -> str:
        """The URL of `path` on this server."""
        return f"http://{HOST}:{self.port}{path}"

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log, for error messages."""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def worker_pids(self) -> list[int]:
        """Process ids of the workers that said they are up, in order."""
        text = self.log_path.read_text(errors="replace")
        return [int(match.group(1)) for match in self.worker_line.finditer(text)]

    def wait_until_ready(self, probe_path: str, timeout: float = START_TIMEOUT) -> None:
        """Wait until every worker is up and `probe_path` answers 200.

        Waiting for all workers matters: wrk keeps its connections, so a worker that
        starts late would get none of them.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            if len(self.worker_pids()) >= self.workers and self._answers(probe_path):
                return
            time.sleep(0.05)
        raise ServerError(f"{self.name} did not start in {timeout:.0f} s:\n{self.log_tail()}")

    def _answers(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """SIGTERM; if it has not exited in time, or on a second Ctrl-C while waiting,
        SIGKILL to its whole process group (workers included)."""
        if self.process.poll() is not None:
            return
        try:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            print(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT:.0f} s; killed", file=sys.stderr)
            self._kill()
        except KeyboardInterrupt:
            self._kill()
            raise

    def _kill(self) -> None:
        # Not reaped yet, so the group (id: the pid started here) is still ours.
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start_presto(
    database_url: str,
    *,
    workers: int,
    log_path: Path,
    reset_db: bool = False,
    cache_bytes: int | None = None,
    options: Sequence[str] = (),
    defaults: bool = False,
) -> Server:
    """`presto serve` as shipped: access log on (INFO), into the log file; `cache_bytes`
    overrides the menu cache's default budget, `options` are added. Unless `defaults`,
    the write rate limit is off (the mixed case's writer measures staleness, not it)."""
    port = free_port()
    command = [
        sys.executable, "-m", "presto", "serve",
        "--host", HOST, "--port", str(port), "--workers", str(workers),
        "--database-url", database_url, "--log-level", "INFO",
    ]  # fmt: skip
    if not defaults:
        command += ["--write-rate-limit", "0"]
    if reset_db:
        # The benchmark's database is its own scratch database: reset whatever it holds.
        command += ["--reset-db", "--force"]
    if cache_bytes is not None:
        command += ["--cache-bytes", str(cache_bytes)]
    command += options
    return Server(
        "presto", command, port=port, workers=workers, worker_line=LISTENING, log_path=log_path
    )


def start_ceiling(
    body_file: Path, *, workers: int, log_path: Path, content_encoding: str | None = None
) -> Server:
    """The bare aiohttp server of presto.bench.ceiling, answering `body_file`'s bytes."""
    port = free_port()
    command = [
        sys.executable, "-m", "presto.bench.ceiling",
        "--port", str(port), "--workers", str(workers), "--body-file", str(body_file),
    ]  # fmt: skip
    if content_encoding:
        command += ["--content-encoding", content_encoding]
    return Server(
        "ceiling", command, port=port, workers=workers, worker_line=LISTENING, log_path=log_path
    )


def start_gunicorn(database_url: str, *, workers: int, log_path: Path) -> Server:
    """presto's Flask app (presto.wsgi) under gunicorn's sync workers, its defaults kept."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "presto.wsgi:app",
        "--bind", f"{HOST}:{port}", "--workers", str(workers), "--worker-class", "sync",
    ]  # fmt: skip
    return Server(
        "gunicorn",
        command,
        port=port,
        workers=workers,
        worker_line=GUNICORN_WORKER,
        log_path=log_path,
        env={"PRESTO_DATABASE_URL": database_url},
    )


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB (VmRSS), or None if it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None
