"""`GET /`, `/healthz` and `/readyz`: what a load balancer and an orchestrator ask."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from presto import __version__
from presto.api.readiness_keys import FAILING_PROCESSES
from presto.serving.admission import DATABASE_DOWN
from presto.storage import migrate
from presto.storage.engine import MIGRATION_VERSION_TABLE
from tests.helpers.problems import assert_problem
from tests.helpers.server_process import running_presto
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.waiting import wait_until


@pytest.fixture
def unversioned(engine: Engine) -> Iterator[Engine]:
    """The test database with its tables but no migration history; left so after."""
    drop = sa.text(f"DROP TABLE IF EXISTS {MIGRATION_VERSION_TABLE}")
    with engine.begin() as connection:
        connection.execute(drop)
    yield engine
    with engine.begin() as connection:
        connection.execute(drop)


def test_landing_names_the_service_and_links(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.json == {
        "service": "presto",
        "version": __version__,
        "links": {"docs": "/docs", "openapi": "/openapi.json", "healthz": "/healthz"},
    }


def test_healthz_answers_without_the_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json) == (200, {"status": "alive"})


def test_readyz_needs_the_schema_at_the_newest_migration(
    client: FlaskClient, unversioned: Engine, db_url: str
) -> None:
    (head,) = migrate.heads()

    behind = client.get("/readyz")

    assert assert_problem(behind, 503)["detail"] == (
        f"The database schema is at revision none, not at {head}: run `presto db upgrade`."
    )
    migrate.stamp(db_url, head)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json == {"status": "ready", "database": "ok", "schema": head}


def test_readyz_says_when_a_helper_process_cannot_stay_up(
    client: FlaskClient, unversioned: Engine, db_url: str
) -> None:
    migrate.stamp(db_url, migrate.heads()[0])
    failing: list[str] = []
    client.application.config[FAILING_PROCESSES] = lambda: failing
    assert client.get("/readyz").status_code == 200
    failing.append("publisher")

    response = client.get("/readyz")

    assert assert_problem(response, 503)["detail"] == (
        "The publisher process keeps dying and cannot stay up; see the log."
    )


def test_health_routes_are_documented(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    paths = document["paths"]
    assert set(paths["/readyz"]["get"]["responses"]) == {"200", "503", "default"}
    assert "200" in paths["/healthz"]["get"]["responses"]
    assert "200" in paths["/"]["get"]["responses"]


def get(port: int, path: str) -> tuple[int, dict[str, str], dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = json.loads(response.read())
        return response.status, dict(response.getheaders()), body
    finally:
        connection.close()


THREADS = 2


def try_get(port: int, path: str) -> None:
    """A request that may never be answered (its database is hung)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
    except OSError:
        pass
    finally:
        connection.close()


def ready_within(port: int, seconds: float) -> None:
    """Wait until `/readyz` answers 200, at most `seconds`."""
    wait_until(lambda: get(port, "/readyz")[0] == 200, seconds, "/readyz never answered 200")


@pytest.mark.e2e
@pytest.mark.slow
def test_readyz_follows_a_database_outage(postgres_engine: Engine, tmp_path: Path) -> None:
    """PostgreSQL behind a proxy the test takes down (SQLite has no server to lose)."""
    url = postgres_engine.url
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    stuck: list[threading.Thread] = []
    try:
        # --force: the shared test database may hold an earlier test's rows.
        with running_presto(
            proxied, tmp_path, "--force", "--readiness-timeout", "1", "--threads", str(THREADS)
        ) as presto:
            server, port = presto.server, presto.port
            assert get(port, "/readyz")[0] == 200

            proxy.stop()
            status, headers, body = get(port, "/readyz")
            assert (status, headers["Content-Type"]) == (503, "application/problem+json")
            # What is wrong goes to the log; the public body names no host, port or user.
            assert body["detail"] == "The database does not answer; the server's log says why."
            assert str(url.port) not in json.dumps(body) and str(proxy.port) not in json.dumps(body)
            assert server.wait_for_line(r"readiness: the database does not answer: .+")
            # The failed check opened the circuit breaker: until it closes, the server answers
            # for the database at once, as it does every request that needs it.
            status, headers, body = get(port, "/readyz")
            assert (status, body["detail"]) == (503, DATABASE_DOWN)
            assert headers["Retry-After"].isdigit()
            assert get(port, "/healthz")[:1] == (200,)  # alive: no restart for a database outage

            proxy.start()
            # The database circuit breaker closes once its probe gets through again.
            ready_within(port, 10)
            proxy.hang = True  # connections open, but no answer comes
            status, _headers, body = get(port, "/readyz")
            assert (status, body["detail"]) == (503, "The database did not answer within 1 s.")
            # Every WSGI thread stuck on the database: the event loop still answers liveness.
            stuck = [
                threading.Thread(target=try_get, args=(port, f"/restaurant/1/item/{n + 1}"))
                for n in range(THREADS)
            ]
            for thread in stuck:
                thread.start()
            time.sleep(0.3)
            started = time.monotonic()
            assert get(port, "/healthz")[:1] == (200,)
            assert time.monotonic() - started < 1

            proxy.hang = False
            proxy.stop()
            proxy.start()
            ready_within(port, 10)
    finally:
        proxy.stop()
        for thread in stuck:
            thread.join(10)
