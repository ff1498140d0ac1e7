"""The fast path takes the same ids as the routes (1 to `MAX_ID`): any other menu call is
the routes' 404, and never reaches the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import make_mocked_request

from presto.serving.fastpath import menu_call
from presto.storage.models import MAX_ID
from tests.helpers.http import request
from tests.helpers.server_process import running_presto

OUT_OF_RANGE = ["0", "000", str(MAX_ID + 1), "99999999999", "9" * 18, "9" * 19]


@pytest.mark.parametrize("restaurant", OUT_OF_RANGE)
def test_an_id_past_the_routes_is_no_menu_call(restaurant: str) -> None:
    assert menu_call(make_mocked_request("GET", f"/restaurant/{restaurant}/item")) is None


@pytest.mark.parametrize(("restaurant", "key"), [("1", 1), ("007", 7), (str(MAX_ID), MAX_ID)])
def test_an_id_of_the_routes_is_a_menu_call(restaurant: str, key: int) -> None:
    target = f"/restaurant/{restaurant}/item?all=true"
    assert menu_call(make_mocked_request("GET", target)) == (key, "all=true")


@pytest.mark.e2e
def test_a_server_answers_404_without_the_database(db_url: str, tmp_path: Path) -> None:
    with running_presto(db_url, tmp_path) as presto:
        address, server = presto.address, presto.server
        assert request(address, "GET", "/restaurant/1/item").status == 200
        # Every connection the worker keeps is open by now (the pool's, the published
        # reads', the listener's and its check's, the webhook relay's): count from here.
        sessions = None if db_url.startswith("sqlite") else settled_sessions(db_url)
        for restaurant in OUT_OF_RANGE:
            for _ in range(3):
                answer = request(address, "GET", f"/restaurant/{restaurant}/item")
                assert answer.status == 404
                assert answer.headers["content-type"] == "application/problem+json"
        assert request(address, "GET", f"/restaurant/{MAX_ID}/item").status == 404
        assert request(address, "GET", "/restaurant/1/item").status == 200
        # No published read failed, so no connection was thrown away and opened again
        # (PostgreSQL refused `99999999999` as an integer, and each such read reconnected).
        if sessions is not None:
            # At most the counts' own connections: 18 failed reads would have been 18.
            assert settled_sessions(db_url) - sessions <= 2
        assert "Traceback" not in server.output
        assert "WARNING" not in server.output and "ERROR" not in server.output


def settled_sessions(db_url: str) -> int:
    """`database_sessions` once PostgreSQL has reported what came before (its counters
    are updated at most once a second)."""
    time.sleep(1.5)
    sessions = database_sessions(db_url)
    assert sessions is not None
    return sessions


def database_sessions(db_url: str) -> int | None:
    """Connections PostgreSQL has accepted to the database so far (None on SQLite)."""
    if not db_url.startswith("postgresql"):
        return None
    engine = sa.create_engine(db_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    sa.text(
                        "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()
