"""End to end: the database goes away under load and comes back.

presto (two workers) reaches PostgreSQL through a TCP proxy the test controls; the proxy's
`stop()` resets every connection and refuses new ones, as a stopped database would. Readers
of a warm menu, readers of a database-bound item and a writer run throughout. During the
outage warm menus keep answering 200 (stale ones marked `Cache-Status: ...stale-if-error`),
database-bound requests get 503 + `Retry-After` quickly; once the database is back, writes
succeed again within 5 s and nothing is stale or 5xx after that.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.helpers.http import request as send
from tests.helpers.server_process import Presto, running_presto
from tests.helpers.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

WORKERS = 2
MENU = "/restaurant/1/item"
BEFORE, OUTAGE, AFTER = 2.0, 6.0, 7.0


@dataclass(frozen=True)
class Sample:
    """One request of the load: when it started and ended, and what it got."""

    kind: str
    started: float
    ended: float
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def stale(self) -> bool:
        return "stale-if-error" in self.headers.get("cache-status", "")


@dataclass
class Load:
    """Requests over new connections from several threads until `stop` is set."""

    address: tuple[str, int]
    key: str
    item_id: int
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    # The price of the last write answered 200, and when its answer arrived.
    acknowledged: list[tuple[float, int]] = field(default_factory=list)

    def request(self, kind: str, method: str, path: str, body: Any = None) -> Sample:
        headers = {"Authorization": f"Bearer {self.key}"} if body is not None else {}
        started = time.monotonic()
        answer = send(self.address, method, path, body, headers)
        sample = Sample(kind, started, time.monotonic(), answer.status, answer.headers, answer.body)
        self.samples.append(sample)
        return sample

    def read_menu(self) -> None:
        while not self.stop.is_set():
            self.request("menu", "GET", MENU)

    def read_item(self) -> None:
        while not self.stop.is_set():
            self.request("item", "GET", f"{MENU}/{self.item_id}")
            time.sleep(0.02)

    def write(self) -> None:
        price = 5000
        while not self.stop.is_set():
            price += 1
            sample = self.request("write", "PATCH", f"{MENU}/{self.item_id}", {"price": price})
            if sample.status == 200:
                self.acknowledged.append((sample.ended, price))
            time.sleep(0.1)

    def acknowledged_before(self, moment: float) -> int:
        """The newest price whose write was answered before `moment`."""
        return max((price for ended, price in self.acknowledged if ended < moment), default=0)


@pytest.fixture
def proxied(db_url: str, tmp_path: Path) -> Iterator[tuple[TcpProxy, Presto]]:
    """`presto serve --workers 2` on the demo menus, through a proxy to PostgreSQL."""
    if not db_url.startswith("postgresql"):
        pytest.skip("a network outage needs a database server (SQLite: see test_database_errors)")
    url = sa.make_url(db_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied_url = url.set(port=proxy.port).render_as_string(hide_password=False)
    try:
        with running_presto(
            proxied_url, tmp_path, "--write-rate-limit", "0",
            workers=WORKERS, key=True, key_database_url=db_url,
        ) as presto:  # fmt: skip
            yield proxy, presto
    finally:
        proxy.stop()


def run_outage(load: Load, proxy: TcpProxy) -> tuple[float, float]:
    """Drive the load through an outage; return when the database went away and came back."""
    threads = [threading.Thread(target=load.read_menu) for _ in range(3)]
    threads += [threading.Thread(target=load.read_item), threading.Thread(target=load.write)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(BEFORE)
        down = time.monotonic()
        proxy.stop()
        time.sleep(OUTAGE)
        up = time.monotonic()
        proxy.start()
        time.sleep(AFTER)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(30)
    return down, up


def test_warm_menus_outlive_the_database_and_everything_recovers(
    proxied: tuple[TcpProxy, Presto],
) -> None:
    proxy, presto = proxied
    server = presto.server
    load = Load(("127.0.0.1", presto.port), presto.key, item_id=0)
    menu = json.loads(load.request("warm-up", "GET", MENU).body)
    load.item_id = menu[0]["id"]
    for _ in range(40):  # every worker caches the menu
        assert load.request("warm-up", "GET", MENU).status == 200

    down, up = run_outage(load, proxy)

    during = [s for s in load.samples if down + 0.1 < s.started and s.ended < up]
    menus = [s for s in during if s.kind == "menu"]
    assert len(menus) > 50
    assert {s.status for s in menus} == {200}
    assert any(s.stale for s in menus)
    bound = [s for s in during if s.kind in ("item", "write")]
    assert len(bound) > 20
    assert {s.status for s in bound} == {503}
    assert all(s.headers.get("content-type") == "application/problem+json" for s in bound)
    assert all(int(s.headers["retry-after"]) >= 1 for s in bound)
    slowest = max(s.ended - s.started for s in bound)
    assert slowest < 2.0

    # Back: writes succeed within 5 s; from then on no 5xx and nothing stale.
    recovered = min(ended for ended, _ in load.acknowledged if ended > up)
    assert recovered - up < 5.0
    after = [s for s in load.samples if s.started > recovered]
    assert len(after) > 50
    assert [s for s in after if s.status >= 500] == []
    assert [s for s in after if s.stale] == []
    assert all(s.status == 200 for s in after)
    for sample in (s for s in after if s.kind == "menu"):
        shown = json.loads(sample.body)[0]["price"]
        assert shown >= load.acknowledged_before(sample.started)
    # Operators see it: stale answers in the access log, the breaker, the listener back.
    server.wait_for_line(r'presto\.access: \S+ "GET /restaurant/1/item" 200 .* stale-if-error$')
    server.wait_for_line(r"database unreachable, answering 503", count=WORKERS)
    server.wait_for_line(r"database reachable again", count=WORKERS)
    server.wait_for_line(r"listening for menu changes", count=2 * WORKERS)
    # Stale answers only while the database was away.
    stale = [s for s in load.samples if s.stale]
    assert all(down < s.ended and s.started < recovered for s in stale)
    print(
        f"outage: {len(menus)} warm menu reads all 200 "
        f"({sum(s.stale for s in menus)} marked stale-if-error); "
        f"{len(bound)} database-bound 503s, slowest {slowest:.3f} s; "
        f"first write {recovered - up:.2f} s after the database returned; "
        f"{len(after)} requests after it, 0 5xx"
    )
