"""Migrations build the models' schema from nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from presto.app import create_app
from presto.cli import main, prepare_database
from presto.config import Settings
from presto.services import keys
from presto.storage import migrate
from presto.storage.engine import (
    MIGRATION_VERSION_TABLE,
    create_schema,
    make_engine,
    make_sessionmaker,
)
from presto.storage.models import Base
from presto.storage.published_menus import CREATE_FUNCTION_SQL, READ_PUBLISHED_FUNCTION

PRESTO_TABLES = set(Base.metadata.tables)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        # An empty file is an SQLite database without tables.
        (tmp_path / "empty.db").touch()
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    postgres: Engine = request.getfixturevalue("postgres_engine")
    schema = f"presto_migrations_{uuid.uuid4().hex[:12]}"
    with postgres.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    # Every connection of this URL finds (and creates) its tables in the new schema.
    url = postgres.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def differences(url: str) -> list[Any]:
    with migrate.migration_transaction(url) as connection:
        return migrate.schema_differences(connection)


def test_upgrade_builds_exactly_the_models_schema(empty_url: str) -> None:
    assert table_names(empty_url) == set()

    migrate.upgrade(empty_url)

    assert table_names(empty_url) == PRESTO_TABLES | {MIGRATION_VERSION_TABLE}
    assert migrate.current(empty_url) == migrate.heads()
    assert differences(empty_url) == []


def test_the_schema_check_sees_a_difference(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DROP INDEX ix_item_restaurant_position"))
    finally:
        engine.dispose()

    found = differences(empty_url)

    assert [(kind, index.name) for kind, index in found] == [
        ("add_index", "ix_item_restaurant_position")
    ]


def test_migrated_constraints_hold(empty_url: str) -> None:
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO restaurant (name, currency) VALUES ('A', 'USD')")
            )
            connection.execute(
                sa.text("INSERT INTO restaurant (name, currency) VALUES ('B', 'EUR')")
            )
            assert connection.scalar(sa.text("SELECT menu_version FROM restaurant")) == 1
            for restaurant_id in (1, 1, 2):
                connection.execute(
                    sa.text(
                        "INSERT INTO item (restaurant_id, name, description, price, available,"
                        " standalone, min_choices, position)"
                        " VALUES (:r, 'x', '', 0, true, true, 0, 0)"
                    ),
                    {"r": restaurant_id},
                )
        link = sa.text(
            "INSERT INTO item_modifier (restaurant_id, item_id, modifier_id, position)"
            " VALUES (:r, :item, :modifier, 0)"
        )
        # The composite foreign keys refuse a modifier from another restaurant.
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(link, {"r": 1, "item": 1, "modifier": 3})
        with engine.begin() as connection:
            connection.execute(link, {"r": 1, "item": 1, "modifier": 2})
            connection.execute(sa.text("DELETE FROM item WHERE id = 2"))
            # ON DELETE CASCADE took the link with the item.
            assert connection.scalar(sa.text("SELECT count(*) FROM item_modifier")) == 0
    finally:
        engine.dispose()


def test_downgrade_to_base_leaves_no_presto_tables(empty_url: str) -> None:
    migrate.upgrade(empty_url)

    migrate.downgrade(empty_url, "base")

    assert table_names(empty_url) & PRESTO_TABLES == set()
    assert migrate.current(empty_url) == ()
    migrate.upgrade(empty_url)
    assert differences(empty_url) == []


def test_db_upgrade_command_is_idempotent(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (head,) = migrate.heads()

    assert main(["db", "current", "--database-url", empty_url]) == 0
    assert capsys.readouterr().out == "database revision: none (no migration history)\n"
    for _ in range(2):
        assert main(["db", "upgrade", "--database-url", empty_url]) == 0
        assert capsys.readouterr().out == f"database revision: {head} (newest)\n"
    assert main(["db", "current", "--database-url", empty_url]) == 0
    assert capsys.readouterr().out == f"database revision: {head} (newest)\n"
    assert differences(empty_url) == []

    assert main(["db", "downgrade", "--database-url", empty_url, "--revision", "base"]) == 0
    assert capsys.readouterr().out == "database revision: none (no migration history)\n"
    assert table_names(empty_url) & PRESTO_TABLES == set()


def test_db_commands_default_to_the_environment_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("PRESTO_DATABASE_URL", raising=False)
    monkeypatch.chdir(tmp_path)

    assert main(["db", "upgrade"]) == 0

    assert (tmp_path / "presto.db").exists()
    assert table_names(f"sqlite:///{tmp_path / 'presto.db'}") >= PRESTO_TABLES
    capsys.readouterr()
    (tmp_path / "other.db").touch()  # `db current` reads only: it needs a database there
    monkeypatch.setenv("PRESTO_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    assert main(["db", "current"]) == 0
    assert "none" in capsys.readouterr().out


def test_an_unknown_revision_is_a_message_not_a_traceback(empty_url: str) -> None:
    with pytest.raises(SystemExit, match="presto db: Can't locate revision identified by 'nope'"):
        main(["db", "upgrade", "--database-url", empty_url, "--revision", "nope"])


def test_reset_db_migrates_and_loads_the_demo(empty_url: str) -> None:
    prepare_database(empty_url, reset=True)

    assert migrate.current(empty_url) == migrate.heads()
    assert differences(empty_url) == []
    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM restaurant")) == 3
    finally:
        engine.dispose()


def test_a_database_made_before_migrations_is_adopted_when_it_matches(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        create_schema(engine)
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO restaurant (name, currency) VALUES ('A', 'USD')")
            )

        prepare_database(empty_url, reset=False)

        assert migrate.current(empty_url) == migrate.heads()
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT name FROM restaurant")) == "A"
    finally:
        engine.dispose()


def test_a_database_made_before_migrations_that_differs_is_refused(empty_url: str) -> None:
    engine = make_engine(empty_url)
    try:
        create_schema(engine)
        with engine.begin() as connection:
            connection.execute(sa.text("DROP INDEX ix_item_restaurant_position"))
    finally:
        engine.dispose()

    with pytest.raises(SystemExit) as exit_info:
        main(["db", "upgrade", "--database-url", empty_url])

    message = str(exit_info.value.code)
    assert message.startswith("presto db: the database has presto tables but no migration")
    assert "ix_item_restaurant_position" in message
    assert "presto serve --reset-db" in message
    assert "presto db stamp --revision" in message
    assert migrate.current(empty_url) == ()


@pytest.fixture
def scratch_migrations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the migration scripts that tests may add to."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", copy)
    return copy


def test_make_revision_writes_nothing_when_the_models_match_head(scratch_migrations: Path) -> None:
    before = sorted((scratch_migrations / "versions").iterdir())

    assert migrate.make_revision("nothing changed") is None

    assert sorted((scratch_migrations / "versions").iterdir()) == before


def test_make_revision_writes_the_models_changes(
    scratch_migrations: Path, empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (previous_head,) = migrate.heads()
    probe = sa.Table("probe", Base.metadata, sa.Column("id", sa.Integer, primary_key=True))
    try:
        assert main(["db", "revision", "-m", "Add the probe table"]) == 0
        (path,) = (scratch_migrations / "versions").glob("*_add_the_probe_table.py")
        assert f"wrote {path}" in capsys.readouterr().out
        script = path.read_text()
        assert 'op.create_table(\n        "probe"' in script
        assert f"\nRevises: {previous_head}\n" in script
        assert migrate.heads() != (previous_head,)

        migrate.upgrade(empty_url)

        assert "probe" in table_names(empty_url)
        assert differences(empty_url) == []
    finally:
        Base.metadata.remove(probe)


def test_a_failed_migration_changes_nothing(scratch_migrations: Path, empty_url: str) -> None:
    migrate.upgrade(empty_url)
    (head,) = migrate.heads()
    (scratch_migrations / "versions" / "failing.py").write_text(
        "import sqlalchemy as sa\n"
        "from alembic import op\n"
        "revision = 'failing'\n"
        f"down_revision = {head!r}\n"
        "def upgrade():\n"
        "    op.create_table('half_done', sa.Column('id', sa.Integer, primary_key=True))\n"
        "    op.execute('SELECT * FROM no_such_table')\n"
    )

    with pytest.raises(sa.exc.DatabaseError):
        migrate.upgrade(empty_url)

    assert "half_done" not in table_names(empty_url)
    assert migrate.current(empty_url) == (head,)


def test_stamp_records_a_revision_without_migrating(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (head,) = migrate.heads()

    assert main(["db", "stamp", "--database-url", empty_url, "--revision", head]) == 0

    assert capsys.readouterr().out == f"database revision: {head} (newest)\n"
    assert table_names(empty_url) == {MIGRATION_VERSION_TABLE}


def test_current_names_a_revision_from_a_newer_presto(
    empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
    finally:
        engine.dispose()

    assert main(["db", "current", "--database-url", empty_url]) == 0

    assert capsys.readouterr().out == (
        "database revision: f00d (unknown to this version of presto; a newer one migrated it)\n"
    )
    with pytest.raises(SystemExit, match="Can't locate revision identified by 'f00d'"):
        main(["db", "upgrade", "--database-url", empty_url])


# The revision before the menu content columns (link terms, time zone, schedules, ...).
BEFORE_MENU_CONTENT = "bbe09de59af8"


def test_upgrading_to_menu_content_keeps_the_data(empty_url: str) -> None:
    migrate.upgrade(empty_url, BEFORE_MENU_CONTENT)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO restaurant (name, currency) VALUES ('Diner', 'EUR')")
            )
            for name, price, standalone in [("Burger", 1299, True), ("Bacon", 200, False)]:
                connection.execute(
                    sa.text(
                        "INSERT INTO item (restaurant_id, name, description, price, available,"
                        " standalone, min_choices, position)"
                        " VALUES (1, :name, '', :price, true, :standalone, 0, 0)"
                    ),
                    {"name": name, "price": price, "standalone": standalone},
                )
            connection.execute(
                sa.text(
                    "INSERT INTO item_modifier (restaurant_id, item_id, modifier_id, position)"
                    " VALUES (1, 1, 2, 0)"
                )
            )

        migrate.upgrade(empty_url)

        assert migrate.current(empty_url) == migrate.heads()
        assert differences(empty_url) == []
        app = create_app(Settings(database_url=empty_url), engine=engine)
        menu = app.test_client().get("/restaurant/1/item").get_json()
        assert [(item["name"], item["price"], item["currency"]) for item in menu] == [
            ("Burger", 1299, "EUR")
        ]
        burger = menu[0]
        assert {name: burger[name] for name in NEW_ITEM_DEFAULTS} == NEW_ITEM_DEFAULTS
        bacon = burger["modifiers"][0]
        assert (bacon["name"], bacon["price"], bacon["is_default"]) == ("Bacon", 200, False)
        assert app.test_client().get("/restaurant/1").get_json()["timezone"] == "UTC"
        # The new columns work at once: a link price, a schedule (changed by plain SQL, so
        # counted as a menu change as README says).
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE item_modifier SET price = 150, is_default = true"))
            connection.execute(sa.text("UPDATE restaurant SET menu_version = menu_version + 1"))
        bacon = app.test_client().get("/restaurant/1/item").get_json()[0]["modifiers"][0]
        assert (bacon["price"], bacon["is_default"]) == (150, True)

        migrate.downgrade(empty_url, BEFORE_MENU_CONTENT)

        with engine.connect() as connection:
            assert connection.execute(
                sa.text("SELECT name, price FROM item ORDER BY id")
            ).all() == [("Burger", 1299), ("Bacon", 200)]
    finally:
        engine.dispose()


NEW_ITEM_DEFAULTS = {
    "is_default": False,
    "available": True,
    "schedule": [],
    "image_url": None,
    "tags": [],
    "allergens": [],
    "calories": None,
}


BEFORE_IDS_KEPT = "5c1d2e3f4a5b"


def test_every_integer_id_is_autoincrement_on_sqlite(empty_url: str) -> None:
    """SQLite reissues the highest id after a delete unless the table says AUTOINCREMENT."""
    with_ids = {
        table.name
        for table in Base.metadata.sorted_tables
        if [column.type.python_type for column in table.primary_key.columns] == [int]
    }
    assert with_ids == {"restaurant", "item", "api_key", "webhook_endpoint", "webhook_delivery"}
    for name in with_ids:
        assert Base.metadata.tables[name].dialect_options["sqlite"]["autoincrement"] is True
    if not empty_url.startswith("sqlite"):
        return
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
            )
            tables = {name: sql for name, sql in rows}
    finally:
        engine.dispose()
    assert {name for name in with_ids if "AUTOINCREMENT" in tables[name]} == with_ids


def test_ids_are_never_reused(empty_url: str) -> None:
    """Delete the highest id and create again: restaurants, items, keys, and items of an
    imported menu all get new ids, on a database migrated from before the fix."""
    migrate.upgrade(empty_url, BEFORE_IDS_KEPT)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO restaurant (name, currency) VALUES ('Diner', 'EUR')")
            )
            for name in ("Burger", "Fries"):
                connection.execute(
                    sa.text(
                        "INSERT INTO item (restaurant_id, name, description, price, available,"
                        " standalone, min_choices, position) VALUES (1, :name, '', 100, true,"
                        " true, 0, 0)"
                    ),
                    {"name": name},
                )
        migrate.upgrade(empty_url)
        assert differences(empty_url) == []
        client = create_app(
            Settings(database_url=empty_url, publish_on_write="transaction"), engine=engine
        ).test_client()
        with make_sessionmaker(engine)() as session:
            admin = {"Authorization": f"Bearer {keys.create_key(session).secret}"}
        assert_new_ids_after_deletes(client, engine, admin)
        # The rows of before the migration are all there.
        names = [item["name"] for item in client.get("/restaurant/1/item?all=true").get_json()]
        assert names[0] == "Burger"
    finally:
        engine.dispose()


def assert_new_ids_after_deletes(
    client: FlaskClient, engine: Engine, admin: dict[str, str]
) -> None:
    # Items: 2 was the highest, from before the migration.
    assert client.delete("/restaurant/1/item/2", headers=admin).status_code == 204
    soup = client.post("/restaurant/1/item", json={"name": "Soup"}, headers=admin)
    assert soup.status_code == 201 and soup.json is not None and soup.json["id"] == 3
    # Restaurants, and the keys deleted with them.
    second = json_of(client.post("/restaurant", json={"name": "Second"}, headers=admin))["id"]
    with make_sessionmaker(engine)() as session:
        key_id = keys.create_key(session, restaurant_id=second).row.id
    assert client.delete(f"/restaurant/{second}", headers=admin).status_code == 204
    third = json_of(client.post("/restaurant", json={"name": "Third"}, headers=admin))["id"]
    assert third == second + 1
    with make_sessionmaker(engine)() as session:
        assert keys.create_key(session, restaurant_id=third).row.id == key_id + 1
    # An imported menu replaces every item with new ones.
    document = {"items": [{"id": 1, "name": "Tea"}, {"id": 2, "name": "Cake"}]}
    url = f"/restaurant/{third}/menu"
    first_ids = [
        item["id"] for item in json_of(client.put(url, json=document, headers=admin))["items"]
    ]
    again = [item["id"] for item in json_of(client.put(url, json=document, headers=admin))["items"]]
    assert first_ids == [4, 5] and again == [6, 7]


def json_of(response: Any) -> Any:
    """The JSON body of a test client's response, which must have one."""
    body = response.get_json()
    assert body is not None, response.status
    return body


# The revision before external ids (and sold out until).
BEFORE_EXTERNAL_IDS = "0f67e7545fa7"


def test_upgrading_to_external_ids_keeps_the_data(empty_url: str) -> None:
    migrate.upgrade(empty_url, BEFORE_EXTERNAL_IDS)
    engine = make_engine(empty_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO restaurant (name, currency) VALUES ('D', 'EUR')")
            )
            for name in ("Burger", "Fries"):
                connection.execute(
                    sa.text(
                        "INSERT INTO item (restaurant_id, name, description, price, available,"
                        " standalone, min_choices, position) VALUES (1, :name, '', 5, true, true,"
                        " 0, 0)"
                    ),
                    {"name": name},
                )

        migrate.upgrade(empty_url)

        assert differences(empty_url) == []
        client = create_app(Settings(database_url=empty_url), engine=engine).test_client()
        menu = client.get("/restaurant/1/item").get_json()
        assert [(item["name"], item["external_id"], item["sold_out"]) for item in menu] == [
            ("Burger", None, False),
            ("Fries", None, False),
        ]
        assert client.get("/restaurant/1").get_json()["external_id"] is None
        # Two items of a restaurant cannot share an external id, even by plain SQL.
        with engine.begin() as connection:
            connection.execute(sa.text("UPDATE item SET external_id = 'P1' WHERE id = 1"))
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.text("UPDATE item SET external_id = 'P1' WHERE id = 2"))

        migrate.downgrade(empty_url, BEFORE_EXTERNAL_IDS)

        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT name FROM item ORDER BY id")).all() == [
                ("Burger",),
                ("Fries",),
            ]
    finally:
        engine.dispose()


def test_upgrade_makes_the_published_read_function_the_models_make(empty_url: str) -> None:
    if not empty_url.startswith("postgresql"):
        pytest.skip("the function is PostgreSQL's")
    migrate.upgrade(empty_url)
    engine = make_engine(empty_url)
    try:
        with engine.connect() as connection:
            found = connection.execute(
                sa.text(
                    "SELECT pg_get_function_identity_arguments(p.oid), p.prosrc FROM pg_proc p "
                    "WHERE p.proname = :name AND p.pronamespace = current_schema()::regnamespace"
                ),
                {"name": READ_PUBLISHED_FUNCTION},
            ).all()
    finally:
        engine.dispose()
    # One function, the batched one (the one-read one the earlier migration made is gone),
    # with the body `create_schema` gives it.
    assert [arguments for arguments, _ in found] == [
        "wanted_restaurant_ids integer[], wanted_variants character varying[]"
    ]
    body = CREATE_FUNCTION_SQL.split("$$")[1]
    assert found[0][1].split() == body.split()
