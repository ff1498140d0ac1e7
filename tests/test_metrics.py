"""`/metrics`: Prometheus text from every worker, one coherent set.

The end-to-end test runs `presto serve --workers 2`, sends a known mix of requests over new
connections (so the kernel spreads them over both workers), and parses the scrape with
`prometheus_client.parser`: the counts add up to exactly what was sent.
"""

from __future__ import annotations

import dataclasses
import http.client
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from prometheus_client import values
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from presto.serving.telemetry import instruments
from presto.serving.telemetry.counters import ProtectionCounters
from presto.serving.telemetry.metrics import METRICS_PATH, route_templates
from presto.serving.telemetry.routes import UNMATCHED
from presto.serving.webhook_relay import RelayMetrics
from tests.helpers.server_process import running_presto

MENU_ROUTE = "/restaurant/<int:restaurant_id>/item"
README = Path(__file__).resolve().parent.parent / "README.md"
THREADS = 3


def fetch(port: int, method: str, path: str) -> tuple[int, str, bytes]:
    """One request on a connection of its own; status, worker prefix, body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    return response.status, (response.getheader("X-Request-ID") or "").split("-")[0], body


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(
        value for (sample, have), value in found.items() if sample == name and wanted <= set(have)
    )


@pytest.fixture
def two_workers(db_url: str, tmp_path: Path) -> Iterator[int]:
    with running_presto(db_url, tmp_path, "--threads", str(THREADS), workers=2) as presto:
        if db_url.startswith("postgresql"):
            # Until its listener is connected a worker bypasses its cache: wait for both.
            presto.server.wait_for_line("listening for menu changes", count=2)
        yield presto.port


@pytest.mark.e2e
@pytest.mark.slow
def test_counts_add_up_across_two_workers(two_workers: int) -> None:
    port = two_workers
    sent = (
        [("GET", "/restaurant/1/item")] * 30
        + [("GET", "/healthz")] * 10
        + [("GET", "/restaurant/999/item")] * 4
        + [("GET", "/no/such/path")] * 3
        + [("DELETE", "/restaurant/1/item")] * 2
    )
    workers = set()
    for method, path in sent:
        status, worker, _body = fetch(port, method, path)
        workers.add(worker)
    assert len(workers) == 2  # both workers answered some
    time.sleep(instruments.FLUSH_SECONDS * 2 + 0.2)  # each worker has flushed its counts

    status, _worker, body = fetch(port, "GET", "/metrics")

    assert status == 200
    found = samples(body.decode())
    assert total(found, "presto_http_requests_total") == len(sent)
    assert total(found, "presto_http_requests_total", route=MENU_ROUTE, status="200") == 30
    assert total(found, "presto_http_requests_total", route=MENU_ROUTE, status="404") == 4
    assert total(found, "presto_http_requests_total", route="/healthz", method="GET") == 10
    assert total(found, "presto_http_requests_total", route="unmatched", status="404") == 3
    assert total(found, "presto_http_requests_total", method="DELETE", status="405") == 2
    assert total(found, "presto_http_request_duration_seconds_count", route=MENU_ROUTE) == 34
    assert (
        total(found, "presto_http_request_duration_seconds_bucket", route=MENU_ROUTE, le="+Inf")
        == 34
    )
    assert total(found, "presto_http_request_duration_seconds_sum", route=MENU_ROUTE) > 0
    # The scrape itself is in flight in the worker answering it, and nothing else.
    assert total(found, "presto_http_requests_in_flight") == 1
    # Each worker loads the menu once (or the requests for 999, which are not cached).
    hits = total(found, "presto_menu_cache_hits_total")
    misses = total(found, "presto_menu_cache_misses_total")
    assert hits + misses == 34
    assert 2 <= misses <= 2 + 4
    assert total(found, "presto_menu_load_duration_seconds_count") == misses
    assert total(found, "presto_menu_cache_bytes") > 30_000 * 2
    assert total(found, "presto_menu_cache_evictions_total") == 0
    assert total(found, "presto_db_pool_size") == 2 * THREADS
    assert total(found, "presto_db_pool_in_use") == 0
    assert total(found, "presto_db_pool_waits_total") == 0


@pytest.mark.e2e
def test_metrics_refuses_other_methods(two_workers: int) -> None:
    status, _worker, body = fetch(two_workers, "POST", "/metrics")
    assert status == 405
    assert b'"status":405' in body


@pytest.fixture
def multiprocess_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test process in prometheus-client's multiprocess mode, for one test."""
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    monkeypatch.setenv(instruments.MULTIPROC_DIR_VARIABLE, str(tmp_path))
    instruments.enable_multiprocess(str(tmp_path))
    yield tmp_path


def test_counts_reach_the_shared_files_only_when_flushed(multiprocess_dir: Path) -> None:
    counted = instruments.RequestMetrics()
    counted.request_done("/healthz", "GET", 200, 0.0004)
    counted.request_done("/healthz", "GET", 200, 0.003)
    counted.menu_loaded(0.2)
    assert total(samples(instruments.exposition().decode()), "presto_http_requests_total") == 0

    counted.flush()
    counted.flush()  # nothing is counted twice

    found = samples(instruments.exposition().decode())
    assert total(found, "presto_http_requests_total", route="/healthz", status="200") == 2
    assert total(found, "presto_http_request_duration_seconds_bucket", le="0.0005") == 1
    assert total(found, "presto_http_request_duration_seconds_bucket", le="0.005") == 2
    assert total(found, "presto_http_request_duration_seconds_sum") == pytest.approx(0.0034)
    assert total(found, "presto_menu_load_duration_seconds_bucket", le="0.1") == 0
    assert total(found, "presto_menu_load_duration_seconds_bucket", le="0.25") == 1


def test_pool_waits_are_counted(multiprocess_dir: Path) -> None:
    engine = sa.create_engine(
        f"sqlite:///{multiprocess_dir.parent / 'pool.db'}",
        pool_size=1,
        max_overflow=0,
        pool_timeout=5,
    )
    counted = instruments.RequestMetrics()
    counted.watch_pool(engine.pool)
    try:
        first = engine.connect()
        found = samples(instruments.exposition().decode())
        assert total(found, "presto_db_pool_in_use") == 1
        threading.Timer(0.2, first.close).start()
        with engine.connect():  # waits for the first connection to come back
            pass
        found = samples(instruments.exposition().decode())
        assert total(found, "presto_db_pool_waits_total") == 1
        assert total(found, "presto_db_pool_wait_seconds_total") >= 0.15
        assert total(found, "presto_db_pool_in_use") == 0
        assert total(found, "presto_db_pool_size") == 1
    finally:
        engine.dispose()


def test_protections_and_the_breaker_are_counted(multiprocess_dir: Path) -> None:
    counted = instruments.RequestMetrics()
    protections = {"rate_limited": 0, "shed": 0, "stale_if_error": 0}
    database: dict[str, Any] = {"available": True, "openings": 0}
    counted.watch_protections(
        lambda: dict(protections), lambda: (database["available"], database["openings"])
    )
    counted.flush()
    found = samples(instruments.exposition().decode())
    assert total(found, "presto_protection_events_total") == 0
    assert total(found, "presto_database_available") == 1

    protections.update(rate_limited=3, shed=2)
    database.update(available=False, openings=1)
    counted.flush()
    counted.flush()  # nothing is counted twice
    found = samples(instruments.exposition().decode())
    assert total(found, "presto_protection_events_total", kind="rate_limited") == 3
    assert total(found, "presto_protection_events_total", kind="shed") == 2
    assert total(found, "presto_protection_events_total", kind="stale_if_error") == 0
    assert total(found, "presto_database_available") == 0
    assert total(found, "presto_database_breaker_openings_total") == 1


@pytest.mark.e2e
def test_a_write_burst_shows_in_the_scrape(db_url: str, tmp_path: Path) -> None:
    with running_presto(db_url, tmp_path, "--write-rate-limit", "2") as presto:
        port = presto.port
        statuses = []
        for _ in range(4):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("DELETE", "/restaurant/1", headers={"Authorization": "Bearer x"})
            statuses.append(connection.getresponse().status)
            connection.close()
        assert statuses.count(429) == 2
        _status, _worker, body = fetch(port, "GET", "/metrics")
        found = samples(body.decode())
        assert total(found, "presto_protection_events_total", kind="rate_limited") == 2
        assert total(found, "presto_database_available") == 1


def test_a_scrape_is_labelled_as_itself_and_unmatched_is_only_404s(app: Flask) -> None:
    routes = route_templates(app.url_map)
    assert routes.template("GET", METRICS_PATH) == "/metrics"
    assert routes.template("GET", "/healthz") == "/healthz"
    assert routes.template("GET", "/restaurant/1/item") == MENU_ROUTE
    assert routes.template("GET", "/no/such/path") == UNMATCHED


def readme_metrics_table() -> dict[str, str]:
    """The README's metrics table: each metric name (a row may name several) with its row."""
    text = README.read_text()
    table = text[text.index("| metric | type | labels |") :].split("\n\n", 1)[0]
    rows = {}
    for row in table.splitlines()[2:]:
        first_column = row.split("|")[1]
        for name in re.findall(r"`(presto_[a-z_]+)`", first_column):
            rows[name] = row
    return rows


def exposed_names(family: MetricWrapperBase) -> set[str]:
    """The names a family's samples go by in a scrape, as the README table lists them."""
    [described] = family.describe()
    return {f"{described.name}_total" if described.type == "counter" else described.name}


def test_every_metric_family_is_in_the_readme_table() -> None:
    made = instruments.Instruments()
    families = [value for value in vars(made).values() if isinstance(value, MetricWrapperBase)]
    families.append(instruments.process_restarts())
    families += [
        value for value in vars(RelayMetrics()).values() if isinstance(value, MetricWrapperBase)
    ]
    exposed = set().union(*(exposed_names(family) for family in families))
    assert {"presto_protection_events_total", "presto_database_available"} <= exposed
    assert exposed == set(readme_metrics_table())


def test_the_readme_lists_every_protection_event_kind() -> None:
    row = readme_metrics_table()["presto_protection_events_total"]
    listed = re.findall(r"`([a-z_]+)`", row.split("|")[3].split(":", 1)[1])
    assert listed == [field.name for field in dataclasses.fields(ProtectionCounters)]
