"""Compressed menu calls: gzip bytes made once per cache entry, each encoding its own tag."""

from __future__ import annotations

import asyncio
import gzip
import http.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from flask.testing import FlaskClient

from presto.services.etags import encoded_etag
from presto.serving.cache import ENTRY_OVERHEAD, CachedMenu, MenuCache
from presto.serving.fastpath import MenuFastPath, accepts_gzip
from presto.serving.generations import MenuGenerations
from tests.helpers.responses import as_response
from tests.helpers.server_process import Presto, running_presto

BODY = orjson.dumps([{"id": n, "name": "Ketchup", "modifiers": []} for n in range(200)])
TAG = '"m1-0.1.0"'
GZIP_TAG = '"m1-0.1.0-gzip"'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("GZIP", True),
        ("br;q=1.0, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.0", False),
        ("x-gzip", True),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("identity", False),
        ("br, deflate", False),
        ("", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accept_encoding_admits_gzip(header: str, expected: bool) -> None:
    assert accepts_gzip(header) is expected


def test_encoded_tags_are_distinct_and_keep_their_quotes() -> None:
    assert encoded_etag(TAG, "gzip") == GZIP_TAG
    assert encoded_etag("m1-0.1.0", "gzip") == "m1-0.1.0-gzip"


class MenuApp:
    """Stands in for the WSGI bridge: the identity menu, counting calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        self.calls += 1
        return web.Response(
            body=BODY,
            headers={"ETag": TAG, "Cache-Control": "public, no-cache"},
            content_type="application/json",
        )


@pytest.fixture
def fast_path() -> Iterator[MenuFastPath]:
    generations = MenuGenerations()
    yield MenuFastPath(MenuCache(1_000_000), generations)
    generations.close()


def get(fast_path: MenuFastPath, app: MenuApp, **headers: str) -> web.Response:
    async def run() -> Any:
        request = make_mocked_request("GET", "/restaurant/1/item", headers=headers)
        return as_response(await fast_path.handle(request, app))

    response: web.Response = asyncio.run(run())
    return response


def test_a_gzip_client_gets_the_compressed_bytes_miss_and_hit(fast_path: MenuFastPath) -> None:
    app = MenuApp()
    miss = get(fast_path, app, **{"Accept-Encoding": "gzip, deflate"})
    hit = get(fast_path, app, **{"Accept-Encoding": "gzip"})
    assert app.calls == 1
    for response in (miss, hit):
        assert response.status == 200
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["ETag"] == GZIP_TAG
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.headers["Cache-Control"] == "public, no-cache"
        assert response.content_type == "application/json"
        assert isinstance(response.body, bytes)
        assert gzip.decompress(response.body) == BODY
    assert hit.body == miss.body


def test_an_identity_client_gets_plain_bytes_with_their_own_tag(fast_path: MenuFastPath) -> None:
    app = MenuApp()
    get(fast_path, app, **{"Accept-Encoding": "gzip"})
    plain = get(fast_path, app)
    refused = get(fast_path, app, **{"Accept-Encoding": "gzip;q=0"})
    assert app.calls == 1
    for response in (plain, refused):
        assert "Content-Encoding" not in response.headers
        assert response.headers["ETag"] == TAG
        assert response.headers["Vary"] == "Accept-Encoding"
        assert response.body == BODY


def test_each_encoding_revalidates_only_its_own_tag(fast_path: MenuFastPath) -> None:
    app = MenuApp()
    get(fast_path, app)
    gzip_304 = get(fast_path, app, **{"Accept-Encoding": "gzip", "If-None-Match": GZIP_TAG})
    assert gzip_304.status == 304
    assert gzip_304.headers["ETag"] == GZIP_TAG
    assert "Content-Encoding" not in gzip_304.headers
    # The identity bytes' tag does not stand for the gzip bytes, nor the other way round.
    crossed = get(fast_path, app, **{"Accept-Encoding": "gzip", "If-None-Match": TAG})
    assert crossed.status == 200 and crossed.headers["ETag"] == GZIP_TAG
    plain_crossed = get(fast_path, app, **{"If-None-Match": GZIP_TAG})
    assert plain_crossed.status == 200 and plain_crossed.headers["ETag"] == TAG
    assert app.calls == 1


def test_an_entry_counts_both_encodings_against_the_budget() -> None:
    entry = CachedMenu.of(1, TAG, BODY, (("ETag", TAG),))
    assert len(entry.gzip.body) < len(BODY) / 10
    assert entry.size == len(BODY) + len(entry.gzip.body) + ENTRY_OVERHEAD
    # Compressed once, deterministically (no timestamp in the gzip header).
    assert CachedMenu.of(1, TAG, BODY, (("ETag", TAG),)).gzip.body == entry.gzip.body


def test_the_app_answers_304_to_either_tag_of_the_current_menu(
    client: FlaskClient, demo: None
) -> None:
    first = client.get("/restaurant/1/item")
    tag = first.headers["ETag"]
    assert first.headers["Vary"] == "Accept-Encoding"
    for candidate in (tag, encoded_etag(tag, "gzip")):
        response = client.get("/restaurant/1/item", headers={"If-None-Match": candidate})
        assert response.status_code == 304
        assert response.headers["ETag"] == candidate
    stale = client.get("/restaurant/1/item", headers={"If-None-Match": '"m0-0.1.0-gzip"'})
    assert stale.status_code == 200


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Presto]:
    with running_presto(db_url, tmp_path) as presto:
        yield presto


@pytest.mark.e2e
def test_a_client_that_decompresses_reads_the_same_menu(server: Presto) -> None:
    """As OkHttp does for an Android app: ask for gzip, decompress transparently."""
    host, port = server.address
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.request("GET", "/restaurant/1/item")
    plain = connection.getresponse()
    plain_body = plain.read()
    connection.request("GET", "/restaurant/1/item", headers={"Accept-Encoding": "gzip"})
    packed = connection.getresponse()
    packed_body = packed.read()
    connection.close()
    assert packed.getheader("Content-Encoding") == "gzip"
    assert packed.getheader("ETag") == encoded_etag(plain.getheader("ETag") or "", "gzip")
    # The demo menu repeats shared subtrees: on the wire it is over 20 times smaller.
    assert len(plain_body) >= 20 * len(packed_body)

    async def read_transparently() -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/restaurant/1/item") as response,
        ):
            assert response.headers["Content-Encoding"] == "gzip"
            return await response.json()

    assert asyncio.run(read_transparently()) == orjson.loads(plain_body)


def test_a_menu_kept_only_compressed_still_answers_plain_clients() -> None:
    generations = MenuGenerations()
    first_size = CachedMenu.of(1, TAG, BODY, (("ETag", TAG),)).size
    # Room for one menu in both encodings and a few compressed ones.
    fast_path = MenuFastPath(MenuCache(first_size + 2_000), generations)
    app = MenuApp()
    try:
        get(fast_path, app)
        other = make_mocked_request("GET", "/restaurant/2/item")
        asyncio.run(fast_path.handle(other, app))
        entry = fast_path.cache.get((1, ""), 0)
        assert entry is not None and entry.plain is None
        plain = get(fast_path, app)
        assert app.calls == 2
        assert plain.body == BODY and plain.headers["ETag"] == TAG
    finally:
        generations.close()
