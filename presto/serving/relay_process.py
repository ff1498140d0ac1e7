"""The webhook relay's process: one per host, beside the workers (a helper process, see
presto.serving.helper_process).

The relay (presto.serving.webhook_relay) signs, sends and records deliveries; in a
process of its own that work runs on another core instead of holding a worker's
interpreter lock while the worker answers the next write. A worker wakes it with the id
of each restaurant a write changed, after the commit; its timer finds what other hosts'
relays left (their own writes wake them) and what falls due for a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess

import uvloop

from presto.config import Settings
from presto.serving.helper_process import Changes, enter_helper, next_changes
from presto.serving.telemetry import instruments
from presto.serving.webhook_relay import WebhookRelay

log = logging.getLogger("presto.webhooks")


def run_relay(
    settings: Settings,
    changes: Changes,
    configure_logging: Callable[[Settings], None],
    restarted: bool = False,
) -> None:
    """Entry point of the relay process: deliver until told to stop or orphaned (what a
    `restarted` one's predecessor held comes back when its claims' leases end)."""
    parent = enter_helper(settings, configure_logging)
    directory = os.environ.get(instruments.MULTIPROC_DIR_VARIABLE)
    if directory is not None:
        instruments.enable_multiprocess(directory)
    uvloop.run(relay_until_stopped(settings, changes, parent))


async def relay_until_stopped(
    settings: Settings, changes: Changes, parent: BaseProcess | None
) -> None:
    """Run the relay, woken by each change the workers send, until the queue says stop."""
    loop = asyncio.get_running_loop()
    relay = WebhookRelay(settings)
    stopped = asyncio.Event()

    def read_changes() -> None:
        while next_changes(changes, parent) is not None:
            relay.wake()
        loop.call_soon_threadsafe(stopped.set)

    threading.Thread(target=read_changes, name="relay-changes", daemon=True).start()
    relaying = asyncio.create_task(relay.run())
    log.info("webhook relay started (pid %d)", os.getpid())
    await stopped.wait()
    relaying.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await relaying
    await relay.close()
    log.info("webhook relay stopped")
