"""End to end: once a write has been answered, no worker process of the host serves the
menu from before it.

Each test runs `presto serve --workers 2` (menu cache on) on SQLite and PostgreSQL (there
also through PgBouncer in transaction mode) and talks to it over a new connection per
request, so the kernel spreads the requests over both workers. A response names its
worker: without an `X-Request-ID` from the client, the id the server makes starts with a
prefix of its process.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.helpers.http import request as send
from tests.helpers.postgres_cluster import pgbouncer, with_port
from tests.helpers.scale_out import prices
from tests.helpers.server_process import running_presto

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS = 2
MENU = "/restaurant/1/item"
# Requests to spend on reaching every worker before giving up.
MAX_ATTEMPTS = 200
# Cached separately from the plain menu call, so each must learn of a write on its own.
VARIANTS = ["?all=true", "?category=Burgers", "?available=true&category=Burgers", "?all=1"]


@dataclass(frozen=True)
class Answer:
    """One response: which worker gave it, and what it said."""

    status: int
    worker: str
    etag: str | None
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Presto:
    """A running two-worker server and a key that may write to restaurant 1."""

    address: tuple[str, int]
    key: str

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request over a connection of its own; a body is a write, with the key."""
        headers = dict(headers or {})
        if body is not None:
            headers["Authorization"] = f"Bearer {self.key}"
        answer = send(self.address, method, path, body, headers)
        # "<8 hex digits of the process>-<request number>"
        worker = answer.headers.get("x-request-id", "").split("-")[0]
        return Answer(answer.status, worker, answer.headers.get("etag"), answer.body)

    def set_price(self, item_id: int, price: int) -> Answer:
        """PATCH the item's price; the write has been answered when this returns."""
        answer = self.request("PATCH", f"{MENU}/{item_id}", {"price": price})
        assert answer.status == 200, answer.body
        assert answer.json()["price"] == price
        return answer

    def read_on_every_worker(
        self, path: str, *, each: int, headers: dict[str, str] | None = None
    ) -> list[Answer]:
        """GET `path` over new connections until every worker has answered `each` times;
        returns every answer."""
        answers: list[Answer] = []
        counts: dict[str, int] = {}
        for _ in range(MAX_ATTEMPTS):
            answer = self.request("GET", path, headers=headers)
            answers.append(answer)
            counts[answer.worker] = counts.get(answer.worker, 0) + 1
            if len(counts) == WORKERS and min(counts.values()) >= each:
                return answers
        raise AssertionError(f"{MAX_ATTEMPTS} requests reached workers {counts} only")


@pytest.fixture(params=["direct", "pgbouncer"])
def connections(
    request: pytest.FixtureRequest, db_url: str
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """How `presto serve` reaches the database (its URL, and options): the URL straight,
    or (PostgreSQL) through PgBouncer in transaction mode with the listener straight to
    PostgreSQL."""
    if request.param == "direct":
        yield db_url, ()
        return
    if not db_url.startswith("postgresql"):
        pytest.skip("PgBouncer is for PostgreSQL")
    port = make_url(db_url).port or 5432
    with pgbouncer(port) as bouncer:
        pooled = with_port(db_url, "127.0.0.1", bouncer.port)
        yield pooled, ("--database-pooler", "transaction", "--listen-url", db_url)


@pytest.fixture
def presto(
    db_url: str, connections: tuple[str, tuple[str, ...]], tmp_path: Path
) -> Iterator[Presto]:
    """`presto serve --workers 2` on the demo menus, with a key for restaurant 1."""
    database_url, options = connections
    with running_presto(
        database_url, tmp_path, *options, workers=WORKERS, key=True, key_database_url=db_url
    ) as running:
        yield Presto(running.address, running.key)


def item_id_named(presto: Presto, name: str) -> int:
    """The id of the restaurant's item called `name`."""
    menu = presto.request("GET", f"{MENU}?all=true").json()
    return next(int(item["id"]) for item in menu if item["name"] == name)


def test_every_worker_shows_a_write_once_it_is_answered(presto: Presto) -> None:
    burger = item_id_named(presto, "Classic Burger")
    old_tag = presto.read_on_every_worker(MENU, each=1)[-1].etag
    assert old_tag is not None

    for price in range(2000, 2015):
        # Both workers hold the current menu: the first read of each stores it, later ones hit.
        warm = presto.read_on_every_worker(MENU, each=3)
        assert {answer.etag for answer in warm} == {old_tag}
        assert all(answer.status == 200 for answer in warm)

        presto.set_price(burger, price)

        after = presto.read_on_every_worker(MENU, each=3)
        assert [prices(answer.json(), burger) for answer in after] == [{price}] * len(after)
        new_tags = {answer.etag for answer in after}
        assert len(new_tags) == 1
        new_tag = new_tags.pop()
        assert new_tag is not None and new_tag != old_tag
        # The old tag no longer matches anywhere: the new menu comes back.
        revalidated = presto.read_on_every_worker(MENU, each=1, headers={"If-None-Match": old_tag})
        assert {answer.status for answer in revalidated} == {200}
        assert {frozenset(prices(answer.json(), burger)) for answer in revalidated} == {
            frozenset({price})
        }
        # The new tag matches everywhere: nothing to send.
        unchanged = presto.read_on_every_worker(MENU, each=1, headers={"If-None-Match": new_tag})
        assert {(answer.status, answer.body, answer.etag) for answer in unchanged} == {
            (304, b"", new_tag)
        }
        old_tag = new_tag


def test_a_write_on_one_worker_reaches_the_other_for_every_variant(presto: Presto) -> None:
    # Cheddar is a modifier: at the top level with all=true, nested under the burgers.
    cheddar = item_id_named(presto, "Cheddar")
    variants = [MENU + query for query in VARIANTS]
    for price in (125, 150, 175, 200):
        for path in variants:
            warm = presto.read_on_every_worker(path, each=2)
            assert {frozenset(prices(answer.json(), cheddar)) for answer in warm} == {
                frozenset({price - 25})
            }

        written = presto.set_price(cheddar, price)

        for path in variants:
            after = presto.read_on_every_worker(path, each=3)
            # Answered by both workers: the one that wrote and the other one.
            assert written.worker in {answer.worker for answer in after}
            assert [prices(answer.json(), cheddar) for answer in after] == [{price}] * len(after)


def test_concurrent_reads_never_go_back_past_an_answered_write(presto: Presto) -> None:
    burger = item_id_named(presto, "Classic Burger")
    acknowledged = 0  # the price of the last write whose response has arrived
    stop = threading.Event()
    stale: list[tuple[int, int, str]] = []
    failures: list[str] = []
    reads: dict[str, int] = {}
    lock = threading.Lock()

    def write() -> None:
        nonlocal acknowledged
        try:
            for price in range(3000, 3040):
                presto.set_price(burger, price)
                acknowledged = price
        except BaseException as exc:
            failures.append(f"writer: {exc!r}")
        finally:
            stop.set()

    def read() -> None:
        try:
            while not stop.is_set():
                floor = acknowledged
                answer = presto.request("GET", MENU)
                if answer.status != 200:
                    failures.append(f"read answered {answer.status}")
                    continue
                (shown,) = prices(answer.json(), burger)
                with lock:
                    reads[answer.worker] = reads.get(answer.worker, 0) + 1
                    if shown < floor:
                        stale.append((floor, shown, answer.worker))
        except BaseException as exc:
            failures.append(f"reader: {exc!r}")
            stop.set()

    threads = [threading.Thread(target=write)] + [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert stale == []
    assert acknowledged == 3039
    assert len(reads) == WORKERS, reads
    assert min(reads.values()) >= 20, reads
    # Afterwards every worker shows the last write.
    final = presto.read_on_every_worker(MENU, each=2)
    assert [prices(answer.json(), burger) for answer in final] == [{3039}] * len(final)
