"""Run `presto serve` as a real subprocess for end-to-end tests."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if re.search(pattern, line)]
            if len(found) >= count:
                return found
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no {count} line(s) matching {pattern!r} in:\n" + self.output)

    def wait_until_listening(self, *, workers: int = 1) -> tuple[str, int]:
        """Wait for every worker's "listening" line; return the address."""
        lines = self.wait_for_line(LISTENING.pattern, count=workers)
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
