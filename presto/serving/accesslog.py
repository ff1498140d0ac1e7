"""The access log: one line per request, handed to `logging` in batches; `text` or `json`.

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
from dataclasses import dataclass
from time import perf_counter

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from presto.serving.cache import StaleMenuResponse
from presto.serving.clients import IPNetwork, client_address, trusted_networks

FLUSH_LINES = 256
FLUSH_SECONDS = 0.5
# The layout of every other log line (presto.serving.log_setup.configure_logging), by hand here.
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# Paths a load balancer polls every few seconds: left out of the log unless asked for.
HEALTH_PATHS = frozenset({"/healthz", "/readyz"})

access_log = logging.getLogger("presto.access")


@dataclass(frozen=True)
class AccessLogOptions:
    """How access lines are written: `--log-format`, `--trusted-proxies`, health checks."""

    json: bool = False
    trusted_proxies: tuple[IPNetwork, ...] = ()
    log_health_checks: bool = False


OPTIONS = AccessLogOptions()


class AccessLogBuffer:
    """Lines waiting to be logged; used from the event loop thread only."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._milli = -1
        self._second = -1
        self._date = ""
        self._prefix = ""
        self._suffix = ""
        self._iso_second = -1
        self._iso = ""

    def append(self, line: str) -> None:
        """Queue one line (prefixed with `prefix`); flush when the batch is due."""
        lines = self.lines
        lines.append(line)
        if len(lines) >= FLUSH_LINES or self._timer is None:
            self._schedule()

    def prefix(self) -> str:
        """What a log record's line starts with, up to its message: the time to the
        millisecond, level, process and logger (`LOG_FORMAT`), made once a millisecond
        (under load, many lines share one)."""
        milli = int(time.time() * 1000)
        if milli != self._milli:
            self._milli = milli
            second = milli // 1000
            if second != self._second:
                self._second = second
                self._date = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
                self._suffix = f" INFO [{os.getpid()}] {self.logger.name}: "
            self._prefix = f"{self._date},{milli % 1000:03d}{self._suffix}"
        return self._prefix

    def append_json(self, fields: dict[str, object]) -> None:
        """Queue one JSON object with the keys every JSON log line has, then `fields`."""
        now = time.time()
        second = int(now)
        if second != self._iso_second:
            self._iso_second = second
            self._iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        record = {
            "time": f"{self._iso}.{int((now - second) * 1_000_000):06d}Z",
            "level": "INFO",
            "pid": os.getpid(),
            "logger": self.logger.name,
            **fields,
        }
        self.append(orjson.dumps(record).decode())

    def _schedule(self) -> None:
        """Flush when `FLUSH_LINES` wait, or arm the timer for the first line of a batch."""
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


# Bytes of a request target logged as they are: printable ASCII but quote and backslash.
_TARGET_SAFE = frozenset(range(0x21, 0x7F)) - {ord('"'), ord("\\")}


def request_target(request: web.BaseRequest) -> str:
    """The path and query as the client sent them (nginx's `$request`, no re-encoding),
    with every byte that a log line must not carry (a quote, a backslash, a control
    character, anything not ASCII, an undecodable byte) percent-encoded."""
    raw = request.raw_path
    if raw.isascii() and raw.isprintable() and '"' not in raw and "\\" not in raw:
        return raw
    # An undecodable byte is a lone surrogate (aiohttp decodes with `surrogateescape`).
    sent = raw.encode("utf-8", "surrogateescape")
    return "".join(chr(byte) if byte in _TARGET_SAFE else f"%{byte:02X}" for byte in sent)


def log_text(value: str, *, quoted: bool) -> str:
    """`value` (a header as aiohttp decoded it) safe for an access line: undecodable bytes
    (kept by aiohttp as lone surrogates, which UTF-8 and so orjson refuse) and control
    characters as `\\xHH`; in a `quoted` text field, `"` and `\\` escaped with a backslash
    too, as nginx does, so no value can close its field and forge the next."""
    # Lone surrogates are not printable: the common case is this one test.
    if value.isprintable() and (not quoted or ('"' not in value and "\\" not in value)):
        return value
    escaped = []
    for char in value:
        if "\udc80" <= char <= "\udcff":
            escaped.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif not char.isprintable():
            sent = char.encode("utf-8", "surrogatepass")
            escaped.append("".join(f"\\x{byte:02x}" for byte in sent))
        elif quoted and char in '"\\':
            escaped.append("\\" + char)
        else:
            escaped.append(char)
    return "".join(escaped)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's access logger hook: client, request, status, bytes, duration in
    microseconds, request id and user agent."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        options = OPTIONS
        if not options.log_health_checks and request.path in HEALTH_PATHS:
            return
        client = client_address(request, options.trusted_proxies)
        agent = request.headers.get("User-Agent", "-")
        # aiohttp's own measure has the event loop clock's millisecond grain.
        started: float | None = getattr(request, "started", None)
        if started is not None:
            time = perf_counter() - started
        buffer = BUFFER
        if options.json:
            agent = log_text(agent, quoted=False)
            buffer.append_json(access_fields(request, response, time, client, agent))
            return
        # The whole line, its prefix included, in one f-string.
        buffer.append(
            f"{buffer.prefix()}{client} "
            f'"{request.method} {request_target(request)}" {response.status} '
            f"{response.body_length} {time * 1000:.3f}ms {getattr(request, 'request_id', '-')} "
            f'"{log_text(agent, quoted=True)}"'
            f"{' stale-if-error' if response.__class__ is StaleMenuResponse else ''}"
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def access_fields(
    request: web.BaseRequest, response: web.StreamResponse, seconds: float, client: str, agent: str
) -> dict[str, object]:
    """The fixed keys of a JSON access line."""
    target = request_target(request)
    return {
        "message": f"{request.method} {target} {response.status}",
        "client": client,
        "method": request.method,
        "path": target,
        "status": response.status,
        "bytes": response.body_length,
        "duration_us": round(seconds * 1_000_000),
        "request_id": getattr(request, "request_id", "-"),
        "user_agent": agent,
        "stale_if_error": response.__class__ is StaleMenuResponse,
    }


def configure_access_log(
    level: str,
    *,
    json: bool = False,
    trusted_proxies: tuple[str, ...] = (),
    log_health_checks: bool = False,
) -> None:
    """Give `presto.access` a handler that writes the prepared lines unchanged."""
    global OPTIONS
    OPTIONS = AccessLogOptions(
        json=json,
        trusted_proxies=trusted_networks(trusted_proxies),
        log_health_checks=log_health_checks,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access_log.handlers[:] = [handler]
    access_log.setLevel(level.upper())
    access_log.propagate = False


class JsonFormatter(logging.Formatter):
    """Every other log line as one JSON object with the access lines' first keys."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(fields).decode()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs * 1000):06d}Z"
