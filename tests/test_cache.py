"""The warm path: the menu cache, shared generations, the fast path, ETags and 304s."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from presto.services import restaurants
from presto.serving import cache as cache_module
from presto.serving.cache import CachedMenu, MenuCache
from presto.serving.fastpath import MenuFastPath
from presto.serving.generations import SLOTS, MenuChangeListener, MenuGenerations
from presto.storage.engine import make_sessionmaker
from tests.helpers.data import add_restaurant
from tests.helpers.fast_path import call
from tests.helpers.responses import as_response


def cached(generation: int, body: bytes = b"[]", etag: str = '"m1"') -> CachedMenu:
    headers = (("Content-Type", "application/json"), ("ETag", etag))
    return CachedMenu.of(generation, etag, body, headers)


class TestMenuCache:
    def test_an_entry_answers_only_its_generation(self) -> None:
        cache = MenuCache(max_bytes=10_000)
        cache.put((1, ""), cached(5))
        assert cache.get((1, ""), 5) == cached(5)
        assert cache.get((1, ""), 6) is None
        assert cache.get((1, "all=true"), 5) is None
        assert (cache.hits, cache.misses) == (1, 2)

    def test_plain_bodies_go_first_least_recently_used_first(self) -> None:
        entry_size = cached(1, b"x" * 5000).size
        cache = MenuCache(max_bytes=3 * entry_size)
        entries = {restaurant_id: cached(1, b"x" * 5000) for restaurant_id in (1, 2, 3, 4)}
        for restaurant_id in (1, 2, 3):
            cache.put((restaurant_id, ""), entries[restaurant_id])
        assert cache.bytes == 3 * entry_size
        cache.plain_body((1, ""), entries[1])  # 1's plain bytes are now the most recent
        cache.put((4, ""), entries[4])
        # Every menu is still cached; 2 and 3 keep only their gzip bytes.
        assert [cache.get((r, ""), 1) is entries[r] for r in (1, 2, 3, 4)] == [True] * 4
        assert [entries[r].plain is not None for r in (1, 2, 3, 4)] == [True, False, False, True]
        assert cache.bytes == sum(entry.size for entry in entries.values()) <= cache.max_bytes

    def test_a_plain_copy_never_pushes_a_whole_entry_out(self) -> None:
        entry_size = cached(1, b"x" * 5000).size
        packed_size = entry_size - 5000
        cache = MenuCache(max_bytes=entry_size + packed_size)
        entries = {restaurant_id: cached(1, b"x" * 5000) for restaurant_id in (1, 2, 3)}
        cache.put((1, ""), entries[1])
        cache.put((2, ""), entries[2])
        assert entries[1].plain is None and entries[2].plain is not None
        cache.put((3, ""), entries[3])
        # 3's plain bytes would have cost 1 its place: 3 is kept compressed only.
        assert [cache.get((r, ""), 1) is not None for r in (1, 2, 3)] == [True, True, True]
        assert [entries[r].plain for r in (1, 2, 3)] == [None, None, None]
        assert cache.bytes == 3 * packed_size
        # Nor is a plain read kept at that price: it is decompressed and answered.
        assert cache.plain_body((1, ""), entries[1]) == b"x" * 5000
        assert entries[1].plain is None and len(cache) == 3 and cache.evictions == 0

    def test_a_busy_menu_keeps_its_plain_copy_at_the_cost_of_entries(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        entry_size = cached(1, b"x" * 5000).size
        packed_size = entry_size - 5000
        cache = MenuCache(max_bytes=entry_size + packed_size)
        entries = {restaurant_id: cached(1, b"x" * 5000) for restaurant_id in (1, 2, 3)}
        for restaurant_id in (1, 2, 3):
            cache.put((restaurant_id, ""), entries[restaurant_id])
        clock = iter([100.0, 200.0, 200.005])
        monkeypatch.setattr(cache_module.time, "monotonic", lambda: next(clock))

        cache.plain_body((3, ""), entries[3])  # read now and then: not kept
        assert entries[3].plain is None and len(cache) == 3
        cache.plain_body((3, ""), entries[3])  # 100 s later: still not busy
        assert entries[3].plain is None
        cache.plain_body((3, ""), entries[3])  # 5 ms later: busy, kept

        assert entries[3].plain == b"x" * 5000
        assert [cache.get((r, ""), 1) is not None for r in (1, 2, 3)] == [False, True, True]
        assert cache.bytes == packed_size + entry_size and cache.evictions == 1

    def test_whole_entries_go_when_the_compressed_ones_do_not_fit(self) -> None:
        packed_size = cached(1, b"x" * 5000).size - 5000
        cache = MenuCache(max_bytes=2 * packed_size)
        entries = {restaurant_id: cached(1, b"x" * 5000) for restaurant_id in (1, 2, 3)}
        for restaurant_id in (1, 2, 3):
            cache.put((restaurant_id, ""), entries[restaurant_id])
        assert [cache.get((r, ""), 1) is not None for r in (1, 2, 3)] == [False, True, True]
        assert cache.evictions == 1 and cache.bytes == 2 * packed_size == cache.max_bytes
        assert cache.plain_bytes == 0

    def test_plain_bytes_are_decompressed_and_kept_again(self) -> None:
        first, second = cached(1, b"a" * 5000), cached(1, b"b" * 5000)
        cache = MenuCache(max_bytes=first.size + (second.size - 5000))
        cache.put((1, ""), first)
        cache.put((2, ""), second)
        assert first.plain is None
        assert cache.plain_body((1, ""), first) == b"a" * 5000
        # Kept again, and the other entry gave up its plain bytes to make room.
        assert first.plain == b"a" * 5000 and second.plain is None
        assert cache.bytes == first.size + second.size <= cache.max_bytes

    def test_plain_bytes_that_cannot_fit_are_served_not_kept(self) -> None:
        entry = cached(1, b"y" * 5000)
        cache = MenuCache(max_bytes=entry.size - 5000)
        cache.put((1, ""), entry)
        assert cache.get((1, ""), 1) is entry and entry.plain is None
        assert cache.plain_body((1, ""), entry) == b"y" * 5000
        assert entry.plain is None and cache.bytes == entry.size <= cache.max_bytes

    def test_an_entry_over_the_budget_is_not_kept(self) -> None:
        cache = MenuCache(max_bytes=500)
        cache.put((1, ""), cached(1, b"x" * 1000))
        assert len(cache) == 0
        assert cache.bytes == 0

    def test_an_older_generation_does_not_replace_a_newer_one(self) -> None:
        cache = MenuCache(max_bytes=10_000)
        cache.put((1, ""), cached(7, b"new"))
        cache.put((1, ""), cached(6, b"old"))
        entry = cache.get((1, ""), 7)
        assert entry is not None
        assert cache.plain_body((1, ""), entry) == b"new"
        assert cache.bytes == entry.size


def bump_in_another_process(path: str, restaurant_id: int, times: int) -> None:
    generations = MenuGenerations(path)
    for _ in range(times):
        generations.bump(restaurant_id)
    generations.close()


class TestMenuGenerations:
    def test_counters_per_restaurant(self) -> None:
        generations = MenuGenerations()
        generations.bump(3)
        generations.bump(3)
        generations.bump(4)
        assert (generations.get(3), generations.get(4), generations.get(5)) == (2, 1, 0)
        generations.bump_all()
        assert (generations.get(3), generations.get(4), generations.get(5)) == (3, 2, 1)
        assert generations.get(3 + SLOTS) == generations.get(3)
        generations.close()

    def test_processes_sharing_the_file_see_each_others_bumps(self) -> None:
        path = MenuGenerations.create_file()
        try:
            generations = MenuGenerations(path)
            context = multiprocessing.get_context("spawn")
            # Two processes bumping the same counter at once lose no increment.
            bumpers = [
                context.Process(target=bump_in_another_process, args=(path, 9, 500))
                for _ in range(2)
            ]
            for process in bumpers:
                process.start()
            for process in bumpers:
                process.join(60)
                assert process.exitcode == 0
            assert generations.get(9) == 1000
            assert generations.get(10) == 0
            generations.close()
        finally:
            os.unlink(path)


def test_a_commit_that_bumps_the_menu_version_bumps_the_generation(engine: Engine) -> None:
    generations = MenuGenerations()
    sessions = make_sessionmaker(engine, on_menu_change=generations.bump)
    with sessions() as session:
        restaurant_id = add_restaurant(session)
        session.commit()
        assert generations.get(restaurant_id) == 0

        restaurants.bump_menu_version(session, restaurant_id)
        assert generations.get(restaurant_id) == 0  # not before the commit
        session.commit()
        assert generations.get(restaurant_id) == 1

        restaurants.bump_menu_version(session, restaurant_id)
        session.rollback()
        session.commit()
        assert generations.get(restaurant_id) == 1  # a rolled back change is no change


class FakeWSGI:
    """Stands in for the WSGI bridge: answers a fixed menu and counts calls."""

    def __init__(self, status: int = 200, body: bytes = b'[{"id":1}]') -> None:
        self.calls = 0
        self.status = status
        self.body = body
        self.etag = '"m1-0.1.0"'

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        self.calls += 1
        return web.Response(
            status=self.status,
            body=self.body,
            headers={"ETag": self.etag, "Cache-Control": "public, no-cache"},
            content_type="application/json",
        )


class GatedWSGI(FakeWSGI):
    """A FakeWSGI that answers only once `gate` is set, like a slow cold load."""

    def __init__(self, status: int = 200) -> None:
        super().__init__(status)
        self.gate = asyncio.Event()

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        self.calls += 1
        await self.gate.wait()
        return web.Response(
            status=self.status,
            body=self.body,
            headers={"ETag": self.etag},
            content_type="application/json",
        )


@pytest.fixture
def generations() -> Iterator[MenuGenerations]:
    generations = MenuGenerations()
    yield generations
    generations.close()


class TestMenuFastPath:
    def test_a_second_read_comes_from_the_cache(self, generations: MenuGenerations) -> None:
        fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), FakeWSGI()
        first = call(fast_path, wsgi, "/restaurant/1/item")
        second = call(fast_path, wsgi, "/restaurant/1/item")
        assert wsgi.calls == 1
        assert second.body == first.body == b'[{"id":1}]'
        assert second.headers["ETag"] == '"m1-0.1.0"'
        assert second.headers["Cache-Control"] == "public, no-cache"
        assert second.content_type == "application/json"

    def test_a_bumped_generation_goes_back_to_the_app(self, generations: MenuGenerations) -> None:
        fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), FakeWSGI()
        call(fast_path, wsgi, "/restaurant/1/item")
        generations.bump(2)
        call(fast_path, wsgi, "/restaurant/1/item")
        assert wsgi.calls == 1
        generations.bump(1)
        wsgi.body = b'[{"id":2}]'
        assert call(fast_path, wsgi, "/restaurant/1/item").body == b'[{"id":2}]'
        assert call(fast_path, wsgi, "/restaurant/1/item").body == b'[{"id":2}]'
        assert wsgi.calls == 2

    def test_each_query_string_is_its_own_entry(self, generations: MenuGenerations) -> None:
        fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), FakeWSGI()
        for path in ["/restaurant/1/item", "/restaurant/1/item?all=true", "/restaurant/2/item"]:
            call(fast_path, wsgi, path)
            call(fast_path, wsgi, path)
        assert wsgi.calls == 3

    def test_if_none_match_on_a_hit_is_304(self, generations: MenuGenerations) -> None:
        fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), FakeWSGI()
        call(fast_path, wsgi, "/restaurant/1/item")
        response = call(fast_path, wsgi, "/restaurant/1/item", **{"If-None-Match": '"m1-0.1.0"'})
        assert response.status == 304
        assert response.body is None
        assert response.headers["ETag"] == '"m1-0.1.0"'
        other = call(fast_path, wsgi, "/restaurant/1/item", **{"If-None-Match": '"m0-0.1.0"'})
        assert other.status == 200
        assert wsgi.calls == 1

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/restaurant/1/item", 404),
            ("GET", "/restaurant/1/item/5", 200),
            ("GET", "/restaurant", 200),
            ("POST", "/restaurant/1/item", 201),
        ],
    )
    def test_other_requests_are_never_cached(
        self, generations: MenuGenerations, method: str, path: str, status: int
    ) -> None:
        fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), FakeWSGI(status)

        async def run() -> None:
            for _ in range(2):
                await fast_path.handle(make_mocked_request(method, path), wsgi)

        asyncio.run(run())
        assert wsgi.calls == 2
        assert len(fast_path.cache) == 0

    @pytest.mark.parametrize(("status", "loads"), [(200, 1), (500, 6)])
    def test_concurrent_misses_wait_for_one_load(
        self, generations: MenuGenerations, status: int, loads: int
    ) -> None:
        fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), GatedWSGI(status)

        async def run() -> list[web.StreamResponse]:
            requests = [make_mocked_request("GET", "/restaurant/1/item") for _ in range(6)]
            tasks = [asyncio.create_task(fast_path.handle(r, wsgi)) for r in requests]
            await asyncio.sleep(0.05)
            assert wsgi.calls == 1  # the others wait for the first load
            wsgi.gate.set()
            return await asyncio.gather(*tasks)

        responses = asyncio.run(run())
        # A full menu is shared; after a failed load each request asks for itself.
        assert wsgi.calls == loads
        assert [r.status for r in responses] == [status] * 6
        if status == 200:
            assert {as_response(r).body for r in responses} == {wsgi.body}

    def test_a_newer_generation_does_not_wait_for_an_older_load(
        self, generations: MenuGenerations
    ) -> None:
        fast_path, wsgi = MenuFastPath(MenuCache(1_000_000), generations), GatedWSGI()

        async def run() -> None:
            older = asyncio.create_task(
                fast_path.handle(make_mocked_request("GET", "/restaurant/1/item"), wsgi)
            )
            await asyncio.sleep(0.05)
            generations.bump(1)  # a write was answered: later reads must not share the load
            newer = asyncio.create_task(
                fast_path.handle(make_mocked_request("GET", "/restaurant/1/item"), wsgi)
            )
            await asyncio.sleep(0.05)
            assert wsgi.calls == 2
            wsgi.gate.set()
            await asyncio.gather(older, newer)

        asyncio.run(run())
        assert wsgi.calls == 2

    def test_no_cache_while_the_change_listener_is_down(self, generations: MenuGenerations) -> None:
        listener = MenuChangeListener("postgresql://unused", generations)
        fast_path = MenuFastPath(MenuCache(1_000_000), generations, listener)
        wsgi = FakeWSGI()
        call(fast_path, wsgi, "/restaurant/1/item")
        call(fast_path, wsgi, "/restaurant/1/item")
        assert wsgi.calls == 2
        listener.connected = True
        call(fast_path, wsgi, "/restaurant/1/item")
        call(fast_path, wsgi, "/restaurant/1/item")
        assert wsgi.calls == 3


@pytest.mark.usefixtures("demo")
def test_menu_call_etag_and_304(client: FlaskClient, engine: Engine) -> None:
    first = client.get("/restaurant/1/item")
    tag = first.headers["ETag"]
    assert tag.startswith('"m1-')
    assert first.headers["Cache-Control"] == "public, no-cache"

    statements: list[str] = []
    sa.event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    not_modified = client.get("/restaurant/1/item", headers={"If-None-Match": tag})
    assert not_modified.status_code == 304
    assert not_modified.get_data() == b""
    assert not_modified.headers["ETag"] == tag
    assert len(statements) == 1  # the restaurant's version; no items loaded

    with make_sessionmaker(engine)() as session:
        restaurants.bump_menu_version(session, 1)
        session.commit()
    changed = client.get("/restaurant/1/item", headers={"If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.headers["ETag"].startswith('"m2-')
    assert changed.get_json() == first.get_json()


def test_menu_changes_from_another_host_arrive_by_notify(postgres_engine: Engine) -> None:
    """PostgreSQL only: a commit that bumps a menu version NOTIFYs every listener."""
    tables = "restaurant, item, item_modifier, api_key"
    with postgres_engine.begin() as connection:
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    with make_sessionmaker(postgres_engine)() as session:
        restaurant_id = add_restaurant(session)
        session.commit()
    generations = MenuGenerations()
    conninfo = postgres_engine.url.set(drivername="postgresql").render_as_string(False)
    listener = MenuChangeListener(conninfo, generations, retry_seconds=0.1)

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(listener.run())
        try:
            async with asyncio.timeout(20):
                while not listener.connected:
                    await asyncio.sleep(0.02)
                before = generations.get(restaurant_id)
                with make_sessionmaker(postgres_engine)() as session:
                    restaurants.bump_menu_version(session, restaurant_id)
                    session.commit()
                while generations.get(restaurant_id) == before:
                    await asyncio.sleep(0.01)
                return before, generations.get(restaurant_id)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    before, after = asyncio.run(scenario())
    assert after == before + 1
    assert not listener.connected


def test_a_flood_of_filtered_calls_never_pushes_a_full_menu_out() -> None:
    full = cached(1, b"x" * 20_000)
    cache = MenuCache(max_bytes=8 * full.size)
    for restaurant_id in (1, 2, 3):
        cache.put((restaurant_id, ""), cached(1, b"x" * 20_000))
    for n in range(5_000):
        cache.put((1, f"category=random-{n}"), cached(1, b"[]"))

    assert all(cache.get((r, ""), 1) is not None for r in (1, 2, 3))
    assert 0 < cache.filtered_bytes <= cache.max_filtered_bytes == cache.max_bytes // 8
    # The newest filtered calls are the ones kept, and they are answered.
    assert cache.get((1, "category=random-4999"), 1) is not None
    assert cache.get((1, "category=random-0"), 1) is None
    assert cache.bytes <= cache.max_bytes
