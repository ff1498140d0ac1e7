"""Published menus: the bytes served are the schemas' render, current, and published on write.

Each test runs on SQLite and PostgreSQL (the `db_url` fixture).
"""

from __future__ import annotations

import gzip
import logging
import queue
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import sqlalchemy as sa
from aiohttp import web
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.app import create_app
from presto.bench.generated_menus import generate_menu
from presto.cli import main
from presto.config import Settings
from presto.demo.loading import load_demo
from presto.menus import publishing as menu_publishing
from presto.menus.publishing import EXTENSION, MenuPublisher
from presto.menus.rendering import render_menu
from presto.menus.representation import VARIANTS
from presto.services import menus
from presto.serving.publisher import run_publisher
from presto.storage.engine import make_engine, make_sessionmaker
from presto.storage.models import PublishedMenu, Restaurant
from presto.storage.published_menus import Published, store_published
from tests.helpers.data import (
    add_items,
    add_key,
    add_restaurant,
    bearer,
    layered_menu,
    link,
    snapshot,
)
from tests.helpers.fast_path import published_answers
from tests.helpers.http import request
from tests.helpers.problems import assert_problem
from tests.helpers.server_process import running_presto
from tests.helpers.waiting import wait_until
from tests.test_menu_api import count_statements

QUERIES = {variant: query for query, variant in VARIANTS.items()}


def demo_menu(session: Session) -> int:
    return load_demo(session)[0].id


def cycle_menu(session: Session) -> int:
    """A -> B -> C -> A, inserted around the write-side checks, as plain SQL could."""
    restaurant_id = add_restaurant(session)
    a, b, c = add_items(session, restaurant_id, ["A", "B", "C"])
    link(session, restaurant_id, a, [b])
    link(session, restaurant_id, b, [c])
    link(session, restaurant_id, c, [a])
    return restaurant_id


def deep_menu(session: Session) -> int:
    """Modifiers nested 11 deep, past the cap of 8: the render cuts them."""
    return layered_menu(session, levels=12, per_level=2, fan_out=2)


def generated_menu(session: Session) -> int:
    return generate_menu(session, items=2000)


MENUS: dict[str, Callable[[Session], int]] = {
    "demo": demo_menu,
    "cycle": cycle_menu,
    "deep": deep_menu,
    "2000 items": generated_menu,
}


def render_from_models(engine: Engine, restaurant_id: int, variant: str) -> bytes:
    """The menu call's body rendered now from the models, in a session of its own."""
    include_all, shape = QUERIES[variant]
    with make_sessionmaker(engine)() as session:
        return render_menu(menus.load_menu(session, restaurant_id, include_all=include_all), shape)


def stored(engine: Engine, restaurant_id: int, variant: str = "") -> PublishedMenu | None:
    with make_sessionmaker(engine)() as session:
        return session.get(PublishedMenu, (restaurant_id, variant))


def menu_version(engine: Engine, restaurant_id: int) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(Restaurant.menu_version).where(Restaurant.id == restaurant_id)
        ).scalar_one()


def assert_published_and_served(
    client: FlaskClient, engine: Engine, restaurant_id: int, names: list[str]
) -> None:
    """The restaurant's default menu call is published at the current version as the
    schemas render it, and answered from it with one statement."""
    row = stored(engine, restaurant_id)
    assert row is not None and row.menu_version == menu_version(engine, restaurant_id)
    assert gzip.decompress(row.body_gzip) == render_from_models(engine, restaurant_id, "")
    with count_statements(engine) as statements:
        menu = client.get(f"/restaurant/{restaurant_id}/item").get_json()
    assert [item["name"] for item in menu] == names
    assert len(statements) == 1


def query_string(variant: str) -> str:
    include_all, shape = QUERIES[variant]
    parts = (["shape=normalized"] if shape == "normalized" else []) + (
        ["all=true"] if include_all else []
    )
    return "?" + "&".join(parts) if parts else ""


@pytest.mark.parametrize("menu", MENUS)
def test_published_bytes_are_the_schemas_render(
    menu: str, client: FlaskClient, session: Session, engine: Engine
) -> None:
    restaurant_id = MENUS[menu](session)
    session.commit()

    for variant in VARIANTS.values():
        path = f"/restaurant/{restaurant_id}/item{query_string(variant)}"
        first = client.get(path)  # not published yet: rendered, published, answered
        with count_statements(engine) as statements:
            identity = client.get(path)
            compressed = client.get(path, headers={"Accept-Encoding": "gzip"})
        expected = render_from_models(engine, restaurant_id, variant)
        row = stored(engine, restaurant_id, variant)

        assert row is not None and row.menu_version == menu_version(engine, restaurant_id)
        assert gzip.decompress(row.body_gzip) == expected
        assert row.body_bytes == len(expected)
        assert first.get_data() == identity.get_data() == expected, (menu, variant)
        assert compressed.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(compressed.get_data()) == expected
        assert len(statements) == 2  # one indexed read per request


def test_the_encodings_have_their_own_tags(client: FlaskClient, demo: None) -> None:
    identity = client.get("/restaurant/1/item")
    compressed = client.get("/restaurant/1/item", headers={"Accept-Encoding": "gzip, br"})
    refused = client.get("/restaurant/1/item", headers={"Accept-Encoding": "gzip;q=0"})

    tag = identity.headers["ETag"]
    assert compressed.headers["ETag"] == tag[:-1] + '-gzip"'
    assert "Content-Encoding" not in identity.headers and "Content-Encoding" not in refused.headers
    assert refused.get_data() == identity.get_data()
    assert len(compressed.get_data()) * 20 < len(identity.get_data())
    for response in (identity, compressed):
        assert response.headers["Vary"] == "Accept-Encoding"
    for sent in (tag, compressed.headers["ETag"]):
        again = client.get("/restaurant/1/item", headers={"If-None-Match": sent})
        assert (again.status_code, again.headers["ETag"]) == (304, sent)


def test_a_write_publishes_in_its_transaction(
    client: FlaskClient,
    session: Session,
    engine: Engine,
    diner: int,
    key: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    item_id = add_items(session, diner, ["Soup"], standalone=True)[0]
    session.commit()
    client.get(f"/restaurant/{diner}/item")
    assert EXTENSION not in client.application.extensions  # no background publisher

    response = client.patch(
        f"/restaurant/{diner}/item/{item_id}", json={"name": "Ramen"}, headers=key
    )

    assert response.status_code == 200
    assert_published_and_served(client, engine, diner, ["Ramen"])

    # One transaction: when publishing fails, the write does not happen either.
    def broken(*_args: object) -> None:
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(menu_publishing, "publish_menu", broken)
    before = snapshot(engine)
    failed = client.patch(f"/restaurant/{diner}/item/{item_id}", json={"name": "Pho"}, headers=key)
    assert_problem(failed, 500)
    assert snapshot(engine) == before


def test_a_failed_write_publishes_nothing(
    client: FlaskClient, session: Session, engine: Engine, diner: int, key: dict[str, str]
) -> None:
    item_id = add_items(session, diner, ["Soup"], standalone=True)[0]
    session.commit()
    client.get(f"/restaurant/{diner}/item")
    before = stored(engine, diner)

    response = client.put(
        f"/restaurant/{diner}/item/{item_id}/modifiers", json=[item_id], headers=key
    )

    assert_problem(response, 409)
    after = stored(engine, diner)
    assert before is not None and after is not None
    assert (after.menu_version, after.body_gzip) == (before.menu_version, before.body_gzip)


def test_the_background_publisher_publishes_after_the_commit(
    engine: Engine, db_url: str, session: Session, diner: int, key: dict[str, str]
) -> None:
    app = create_app(Settings(database_url=db_url, publish_on_write="background"), engine=engine)
    client = app.test_client()
    publisher = app.extensions[EXTENSION]
    assert isinstance(publisher, MenuPublisher)
    item_id = add_items(session, diner, ["Soup"], standalone=True)[0]
    session.commit()

    names = ["Ramen", "Pho", "Laksa"]
    for name in names:
        response = client.patch(
            f"/restaurant/{diner}/item/{item_id}", json={"name": name}, headers=key
        )
        assert response.status_code == 200

    assert publisher.wait_idle(30)
    assert_published_and_served(client, engine, diner, ["Laksa"])


def test_a_body_of_another_version_is_never_served(
    client: FlaskClient, session: Session, engine: Engine, diner: int
) -> None:
    add_items(session, diner, ["Soup"], standalone=True)
    session.commit()
    client.get(f"/restaurant/{diner}/item")
    version = menu_version(engine, diner)

    def plant(body: bytes, label: int) -> None:
        with engine.begin() as connection:
            connection.execute(
                sa.update(PublishedMenu)
                .where(PublishedMenu.restaurant_id == diner)
                .values(body_gzip=gzip.compress(body), menu_version=label)
            )

    # A planted body labelled with the current version is what the call serves: the read
    # trusts the label, which is why a change by plain SQL must bump the version.
    plant(b'["planted"]', version)
    assert client.get(f"/restaurant/{diner}/item").get_json() == ["planted"]
    # Labelled with an older version, it is never served: the menu is rendered again.
    plant(b'["planted"]', version - 1)
    menu = client.get(f"/restaurant/{diner}/item").get_json()
    assert [item["name"] for item in menu] == ["Soup"]
    row = stored(engine, diner)
    assert row is not None and row.menu_version == version
    # A plain SQL change that bumps the version is seen by the next call.
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE item SET name = 'Broth'"))
        connection.execute(sa.text("UPDATE restaurant SET menu_version = menu_version + 1"))
    assert [item["name"] for item in client.get(f"/restaurant/{diner}/item").get_json()] == [
        "Broth"
    ]


def test_an_older_version_never_replaces_a_newer_one(session: Session, diner: int) -> None:
    for version, body in ((5, b"[5]"), (4, b"[4]"), (5, b"[5 again]")):
        store_published(session, diner, "", Published.of(version, f"m{version}", 0, None, body))
        session.commit()

    row = session.get(PublishedMenu, (diner, ""))
    assert row is not None
    session.refresh(row)
    assert (row.menu_version, gzip.decompress(row.body_gzip)) == (5, b"[5 again]")


def test_deleting_a_restaurant_deletes_its_published_menus(
    client: FlaskClient, engine: Engine, demo: None, session: Session
) -> None:
    admin = bearer(add_key(session))
    client.get("/restaurant/1/item")
    assert stored(engine, 1) is not None

    assert client.delete("/restaurant/1", headers=admin).status_code == 204

    assert stored(engine, 1) is None


def test_menus_publish_renders_changed_menus_again(
    engine: Engine, db_url: str, session: Session, capsys: pytest.CaptureFixture[str]
) -> None:
    restaurants = [add_restaurant(session, name) for name in ("One", "Two")]
    for restaurant_id, name in zip(restaurants, ("Soup", "Salad"), strict=True):
        add_items(session, restaurant_id, [name], standalone=True)
    session.commit()
    assert main(["menus", "publish", "--database-url", db_url]) == 0
    assert capsys.readouterr().out == "published 2 menus\n"
    app = create_app(Settings(database_url=db_url), engine=engine)
    app.test_client().get(f"/restaurant/{restaurants[0]}/item?shape=normalized")
    # Changed by plain SQL, with the version bumped as README says; then published again.
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE item SET name = name || ' of the day'"))
        connection.execute(sa.text("UPDATE restaurant SET menu_version = menu_version + 1"))

    assert (
        main(["menus", "publish", "--database-url", db_url, "--restaurant", str(restaurants[0])])
        == 0
    )

    assert capsys.readouterr().out == "published 1 menu\n"
    current = menu_version(engine, restaurants[0])
    for variant in ("", "normalized"):
        row = stored(engine, restaurants[0], variant)
        assert row is not None and row.menu_version == current
        assert gzip.decompress(row.body_gzip) == render_from_models(engine, restaurants[0], variant)
    other = stored(engine, restaurants[1])
    assert other is not None and other.menu_version != menu_version(engine, restaurants[1])
    assert main(["menus", "publish", "--database-url", db_url, "--restaurant", "999"]) == 1
    assert "Restaurant 999 does not exist." in capsys.readouterr().err


def test_db_upgrade_publishes_every_menu(
    db_url: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "upgrade", "--database-url", db_url]) == 0
    with make_sessionmaker(engine)() as session, session.begin():
        ids = [restaurant.id for restaurant in load_demo(session)]
    with engine.begin() as connection:
        connection.execute(sa.delete(PublishedMenu))

    assert main(["db", "upgrade", "--database-url", db_url]) == 0

    for restaurant_id in ids:
        row = stored(engine, restaurant_id)
        assert row is not None and row.menu_version == menu_version(engine, restaurant_id)
        assert gzip.decompress(row.body_gzip) == render_from_models(engine, restaurant_id, "")


def test_a_write_publishes_only_its_own_restaurant(
    client: FlaskClient, session: Session, engine: Engine, key: dict[str, str], diner: int
) -> None:
    other = add_restaurant(session, "Other")
    soup = add_items(session, diner, ["Soup"], standalone=True)[0]
    add_items(session, other, ["Salad"], standalone=True)
    session.commit()
    client.get(f"/restaurant/{other}/item")
    other_row = stored(engine, other)

    response = client.patch(f"/restaurant/{diner}/item/{soup}", json={"price": 700}, headers=key)

    assert response.status_code == 200
    again = stored(engine, other)
    assert other_row is not None and again is not None
    assert (again.menu_version, again.body_gzip) == (other_row.menu_version, other_row.body_gzip)


@pytest.mark.e2e
@pytest.mark.slow
def test_the_server_publishes_in_a_process_of_its_own(db_url: str, tmp_path: Path) -> None:
    """`presto serve` renders a written menu in its publisher process, not in a worker."""
    engine = make_engine(db_url, pool_size=1)
    try:
        with running_presto(db_url, tmp_path, workers=2) as presto:
            address, server = presto.address, presto.server
            [started] = server.wait_for_line(r"publisher started \(pid \d+\)")
            with make_sessionmaker(engine)() as session, session.begin():
                admin = bearer(add_key(session))
            version = menu_version(engine, 1)

            renamed = request(address, "PATCH", "/restaurant/1/item/1", {"name": "Mega"}, admin)

            assert renamed.status == 200

            def published() -> PublishedMenu | None:
                row = stored(engine, 1)
                return row if row is not None and row.menu_version != version else None

            row = wait_until(published, 20, "the menu was not published")
            assert row.menu_version == version + 1 == menu_version(engine, 1)
            expected = render_from_models(engine, 1, "")
            assert gzip.decompress(row.body_gzip) == expected
            assert b'"name":"Mega"' in expected
            answer = request(
                address, "GET", "/restaurant/1/item", headers={"Accept-Encoding": "gzip"}
            )
            assert answer.headers["content-encoding"] == "gzip"
            assert gzip.decompress(answer.body) == expected
            listening = re.findall(r"presto listening on \S+ \(pid (\d+)\)", server.output)
            workers = {int(pid) for pid in listening}
            publisher = int(re.findall(r"\d+", started)[-1])
            assert len(workers) == 2 and publisher not in workers
            assert publisher != server.process.pid
    finally:
        engine.dispose()
    assert "Traceback" not in server.output


def test_the_fast_path_reads_a_published_menu_without_flask(
    client: FlaskClient, db_url: str, demo: None
) -> None:
    flask_identity = client.get("/restaurant/1/item")  # publishes it
    flask_gzip = client.get("/restaurant/1/item", headers={"Accept-Encoding": "gzip"})
    flask_normalized = client.get("/restaurant/1/item?all=true&shape=normalized")
    sent_to_flask: list[str] = []

    async def flask(request: web.BaseRequest) -> web.StreamResponse:
        sent_to_flask.append(request.path_qs)
        return web.Response(status=404)

    requests = [
        ("/restaurant/1/item", {}),
        ("/restaurant/1/item", {"Accept-Encoding": "gzip"}),
        ("/restaurant/1/item?all=true&shape=normalized", {}),
        ("/restaurant/99/item", {}),  # unknown: Flask answers it
    ]
    identity, compressed, normalized, unknown = published_answers(db_url, requests, flask)

    assert sent_to_flask == ["/restaurant/99/item"]
    assert unknown.status == 404
    pairs = ((identity, flask_identity), (compressed, flask_gzip), (normalized, flask_normalized))
    for fast, slow in pairs:
        assert isinstance(fast, web.Response) and isinstance(fast.body, bytes)
        assert fast.body == slow.get_data()
        for name in ("ETag", "Content-Type", "Cache-Control", "Vary", "Content-Encoding"):
            assert fast.headers.get(name) == slow.headers.get(name), name


@pytest.mark.parametrize("restaurants", [1, 2])
def test_a_restarted_publisher_counts_the_menus_it_caught_up_on(
    session: Session, db_url: str, caplog: pytest.LogCaptureFixture, restaurants: int
) -> None:
    for n in range(restaurants):
        add_restaurant(session, f"R{n}")
    session.commit()
    changes: queue.Queue[int | None] = queue.Queue()
    changes.put(None)  # stop once caught up
    previous = signal.getsignal(signal.SIGINT)
    try:
        with caplog.at_level(logging.INFO, "presto.publisher"):
            run_publisher(
                Settings(database_url=db_url),
                cast(Any, changes),
                lambda _settings: None,
                restarted=True,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    noun = "menu" if restaurants == 1 else "menus"
    assert f"published {restaurants} {noun} left unpublished" in caplog.messages
