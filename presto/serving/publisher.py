"""The publisher process: renders changed menus beside the workers, not inside them.

With `--publish-on-write background` (the default), a worker tells this process which
restaurant's menu a write changed, after the commit and before the response; the process
renders and stores it (`presto.menus.publishing`). Rendering a 2,000-item menu takes
hundreds of milliseconds of CPU: in a process of its own it runs on another core instead of
holding a worker's interpreter lock while the worker answers requests. Changes that arrive
while it renders are coalesced. A menu not yet published is rendered by its first reader,
so a slow or dead publisher costs time, never correctness. It runs as a helper process
(presto.serving.helper_process), supervised and restarted like the webhook relay.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from presto.config import Settings
from presto.menus.publishing import publish_changed, publish_menus
from presto.serving.helper_process import Changes, enter_helper, next_changes
from presto.storage.engine import make_engine, make_sessionmaker
from presto.storage.published_menus import unpublished_restaurants

log = logging.getLogger("presto.publisher")


def run_publisher(
    settings: Settings,
    changes: Changes,
    configure_logging: Callable[[Settings], None],
    restarted: bool = False,
) -> None:
    """Entry point of the publisher process: publish each changed menu until told to stop
    or orphaned; a `restarted` one first catches up on menus left unpublished."""
    parent = enter_helper(settings, configure_logging)
    engine = make_engine(
        settings.database_url,
        pool_size=1,
        connect_timeout=settings.db_connect_timeout,
        statement_timeout=settings.statement_timeout,
        transaction_pooler=settings.database_pooler == "transaction",
    )
    factory = make_sessionmaker(engine)
    log.info("publisher started (pid %d)", os.getpid())
    try:
        if restarted:
            with factory() as session:
                behind = unpublished_restaurants(session)
            count = publish_menus(factory, behind)
            menus = "menu" if count == 1 else "menus"
            log.info("published %d %s left unpublished", count, menus)
        while (pending := next_changes(changes, parent)) is not None:
            for restaurant_id in sorted(pending):
                publish_changed(factory, restaurant_id)
    finally:
        engine.dispose()
