"""Publishing menus: rendering a menu call's body and storing it, and the published body
a menu call is answered with.

A menu is published when a write changes it (in the write's transaction, or just after the
commit off the request path: `--publish-on-write`), when a read finds no current body (a
menu changed by plain SQL, a schedule boundary passed, a variant not read since the last
change), by `presto menus publish` and by `presto db upgrade`. The bytes are what the
menu call renders from the models at that moment (`presto.menus.rendering`);
`presto.services.published` says why a stored body is never served as a version it does
not show, `presto.storage.published_menus` stores it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable

from sqlalchemy.orm import Session, sessionmaker

from presto.errors import NotFoundError, TooLargeToRenderError
from presto.menus.rendering import render_menu
from presto.menus.representation import QUERY_OF_VARIANT
from presto.services import menus
from presto.services.etags import menu_call_etag
from presto.services.published import read_published
from presto.storage.published_menus import DEFAULT_VARIANT, Published, store_published

log = logging.getLogger(__name__)

# Key in `app.extensions` of the app's `MenuPublisher` (with `--publish-on-write background`).
EXTENSION = "presto.publisher"


def publish_loaded(
    session: Session, restaurant_id: int, variant: str, loaded: menus.Menu, body: bytes
) -> Published:
    """Store `body`, rendered from `loaded`, as the restaurant's published `variant`."""
    valid_until = loaded.valid_until
    published = Published.of(
        loaded.restaurant.menu_version,
        menu_call_etag(loaded.restaurant, valid_until),
        math.floor(loaded.moment.timestamp()),
        None if valid_until is None else int(valid_until.timestamp()),
        body,
    )
    store_published(session, restaurant_id, variant, published)
    return published


def publish_menu(session: Session, restaurant_id: int, variant: str = DEFAULT_VARIANT) -> Published:
    """Render the restaurant's `variant` now and store it (the caller commits)."""
    include_all, shape = QUERY_OF_VARIANT[variant]
    loaded = menus.load_menu(session, restaurant_id, include_all=include_all)
    return publish_loaded(session, restaurant_id, variant, loaded, render_menu(loaded, shape))


def current_menu(session: Session, restaurant_id: int, variant: str) -> Published:
    """The menu call's published `variant`: its stored body if current (one indexed read),
    or, if the menu changed since it was published, rendered and stored now (committed).
    Raises NotFoundError for an unknown restaurant."""
    published = read_published(session.connection(), restaurant_id, variant, time.time())
    if published is None:
        published = publish_menu(session, restaurant_id, variant)
        session.commit()
    return published


def publish_in_transaction(session: Session, restaurant_ids: Iterable[int]) -> None:
    """Publish the changed menus inside the write's own transaction, before it commits, so
    the new menu version and its bytes commit together.

    A second session on the same connection renders them: it sees the write's changes and
    leaves the write's own objects as they are.
    """
    session.flush()
    with Session(bind=session.connection(), expire_on_commit=False) as publishing:
        for restaurant_id in sorted(restaurant_ids):
            try:
                publish_menu(publishing, restaurant_id)
            except NotFoundError:
                continue  # the write deleted the restaurant
            except TooLargeToRenderError:
                # Past the budget by plain SQL: its readers get the problem; the write
                # (a delete that shrinks it) goes on.
                continue
        publishing.flush()


class MenuPublisher:
    """Publishes changed menus after their write committed, one at a time on a thread of
    its own, so a write is answered without waiting for its menu to render.

    Changes that arrive while a menu renders are coalesced: the menu is rendered once more,
    from the newest version. A menu not yet published is rendered by its first reader.
    """

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self._factory = factory
        self._pending: dict[int, None] = {}
        self._busy = False
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, restaurant_id: int) -> None:
        """Publish the restaurant's menu soon (started after fork, on first use)."""
        with self._condition:
            self._pending[restaurant_id] = None
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="presto-publisher-thread", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is pending or rendering; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._pending:
                    self._busy = False
                    self._condition.notify_all()
                    self._condition.wait()
                restaurant_id = next(iter(self._pending))
                del self._pending[restaurant_id]
                self._busy = True
            self._publish(restaurant_id)

    def _publish(self, restaurant_id: int) -> None:
        publish_changed(self._factory, restaurant_id)


def publish_changed(factory: sessionmaker[Session], restaurant_id: int) -> None:
    """Publish a changed menu in a transaction of its own; a failure is logged, not raised
    (its readers render the menu instead, and the next change tries again)."""
    try:
        with factory() as session, session.begin():
            publish_menu(session, restaurant_id)
    except NotFoundError:
        pass  # deleted since
    except TooLargeToRenderError:
        pass  # logged by the renderer; its readers get the problem
    except Exception:
        log.exception("publishing the menu of restaurant %s failed", restaurant_id)


def publish_menus(
    factory: sessionmaker[Session], restaurant_ids: Iterable[int], variants: Iterable[str] = ()
) -> int:
    """Publish each restaurant's default menu call (and `variants`), one transaction per
    restaurant; returns how many restaurants were published. A menu too large to render
    (changed by plain SQL) is logged and left unpublished, so the others still are."""
    count = 0
    for restaurant_id in restaurant_ids:
        try:
            with factory() as session, session.begin():
                for variant in (DEFAULT_VARIANT, *variants):
                    publish_menu(session, restaurant_id, variant)
        except TooLargeToRenderError:
            continue
        count += 1
    return count
