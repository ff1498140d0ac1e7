"""The access log: one line per request, handed to `logging` in batches.

A log record per request through `logging` (record, formatter, handler lock, write) costs
about a fifth of a cached menu call. So, like nginx's `access_log ... buffer= flush=`,
presto formats each line cheaply as the request ends and passes the lines to the
`presto.access` logger in batches: when `FLUSH_LINES` are waiting, `FLUSH_SECONDS`
after the first of them, and at shutdown. A batch is one record whose message is the lines;
the logger's own handler writes it as is. A worker killed outright (SIGKILL) loses at most
`FLUSH_SECONDS` of lines.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from presto.serving.cache import StaleMenuResponse

FLUSH_LINES = 256
FLUSH_SECONDS = 0.5
# The layout of every other log line (presto.server.configure_logging), made by hand here.
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"

access_log = logging.getLogger("presto.access")


class AccessLogBuffer:
    """Lines waiting to be logged; used from the event loop thread only."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._second = -1
        self._prefix = ""
        self._suffix = ""

    def append(self, line: str) -> None:
        """Queue one line, prefixed like a log record; flush when the batch is due."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
            self._suffix = f" INFO [{os.getpid()}] {self.logger.name}: "
        self.lines.append(f"{self._prefix},{int((now - second) * 1000):03d}{self._suffix}{line}")
        if len(self.lines) >= FLUSH_LINES:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Log every waiting line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.lines:
            batch, self.lines = self.lines, []
            self.logger.info("\n".join(batch))


BUFFER = AccessLogBuffer(access_log)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access logger hook: method, path, status, bytes, duration, request id."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        BUFFER.append(
            f'"{request.method} {request.path_qs}" {response.status} {response.body_length} '
            f"{time * 1000:.1f}ms {request.get('request_id', '-')}"
            + (" stale-if-error" if response.__class__ is StaleMenuResponse else "")
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def configure_access_log(level: str) -> None:
    """Give `presto.access` a handler that writes the prepared lines unchanged."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [handler]
    access_log.setLevel(level.upper())
    access_log.propagate = False
