"""One worker process's life: build it, listen, serve until SIGINT or SIGTERM, then drain
in-flight requests and close down in order.

One worker process runs one uvloop event loop; with `--workers N` the supervisor
(`presto.serving.supervisor`) starts N of them sharing the port through `SO_REUSEPORT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal

import uvloop

from presto.config import Settings
from presto.serving.accesslog import BUFFER as access_log_buffer
from presto.serving.connections import raise_file_limit
from presto.serving.helper_process import HelperLinks
from presto.serving.log_setup import configure_logging
from presto.serving.telemetry.instruments import FLUSH_SECONDS
from presto.serving.worker import Worker, build_worker

log = logging.getLogger("presto.server")

# Allocations between collections of the youngest generation (Python's default is 700).
GC_THRESHOLD = 20_000


async def bind(worker: Worker) -> asyncio.Server:
    """Listen on the configured address; a port in use is one log line and exit status 1."""
    settings = worker.settings
    loop = asyncio.get_running_loop()
    try:
        return await loop.create_server(
            worker.server,
            settings.host,
            settings.port,
            reuse_port=settings.workers > 1,
            backlog=1024,
        )
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        worker.database.engine.dispose()
        raise SystemExit(1) from None


def freeze_startup_objects() -> None:
    """Keep everything made so far (modules, app, engine), which lives as long as the
    process, out of the garbage collector's scans, which every request's garbage triggers.

    A cold menu load makes tens of thousands of objects; collecting every 700 of them
    (the default) costs it 15-20%.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 20)


async def drain_and_close(worker: Worker, tcp_server: asyncio.Server) -> None:
    """Stop listening, let in-flight requests finish, then close down in order."""
    tcp_server.close()
    if await worker.in_flight.drain(worker.settings.shutdown_timeout):
        log.info("in-flight requests done")
    else:
        log.warning("%d request(s) still in flight; cancelling them", worker.in_flight.count)
    # Closes idle keep-alive connections and cancels whatever is left.
    await worker.server.shutdown(1.0)
    for task in (worker.listening, worker.flushing):
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    worker.executor.shutdown(wait=True)
    if worker.published_reads is not None:
        await worker.published_reads.close()
    if worker.availability is not None:
        worker.availability.close()
    worker.database.engine.dispose()
    worker.generations.close()
    worker.telemetry.flush()
    log.info("stopped")
    access_log_buffer.flush()


async def serve(
    settings: Settings,
    generations_path: str | None = None,
    helpers: HelperLinks | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then drain in-flight requests and close down."""
    loop = asyncio.get_running_loop()
    raise_file_limit(settings.max_connections)
    worker = build_worker(settings, generations_path, helpers)
    tcp_server = await bind(worker)
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    if worker.listener is not None:
        worker.listening = asyncio.create_task(worker.listener.run())
    worker.flushing = asyncio.create_task(worker.telemetry.flush_every(FLUSH_SECONDS))
    freeze_startup_objects()
    host, port = tcp_server.sockets[0].getsockname()[:2]
    log.info("presto listening on http://%s:%d (pid %d)", host, port, os.getpid())
    try:
        await stop.wait()
        log.info("stopping: no new connections, draining in-flight requests")
    finally:
        await drain_and_close(worker, tcp_server)


def run_worker(
    settings: Settings,
    generations_path: str | None = None,
    helpers: HelperLinks | None = None,
) -> None:
    """Entry point of one worker process."""
    configure_logging(settings)
    uvloop.run(serve(settings, generations_path, helpers))
