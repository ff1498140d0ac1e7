"""The benchmark harness: a quick run end to end, and its parts one by one.

Nothing here asserts on a timing or a ratio (the machine is shared): only that every
case ran, produced numbers of the right kind, and that the checks can tell good from bad.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvloop
from aiohttp import web
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.api.session import app_database
from presto.bench import servers
from presto.bench.catalog import copy_restaurant, publish_catalog
from presto.bench.cold import count_nodes, measure_cold
from presto.bench.generated_menus import generate_menu, layer_sizes
from presto.bench.load import Spread, parse_wrk, run_load, wrk_available
from presto.bench.memory import menu_paths
from presto.bench.mixed import MixedResult, WriteApiUnavailable, create_key, parse_key, run_mixed
from presto.bench.report import Row, check_targets, format_table
from presto.services.keys import authenticate
from presto.storage.engine import make_sessionmaker
from presto.storage.models import Restaurant
from tests.helpers.ports import released_port

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:5005/restaurant/1/item
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.52ms  402.11us  12.06ms   91.20%
    Req/Sec    21.35k     1.20k   24.01k    70.50%
  Latency Distribution
     50%  468.00us
     75%    1.61ms
     90%    1.90ms
     99%    1.20s
  424913 requests in 10.00s, 2.13GB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  42489.22
Transfer/sec:    218.31MB
"""


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """One `python -m presto.bench --quick` run: its printed table and its JSON."""
    json_path = tmp_path_factory.mktemp("bench") / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "presto.bench", "--quick", "--json", str(json_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout, json.loads(json_path.read_text())


def rows_of(results: dict[str, Any], case: str) -> list[dict[str, Any]]:
    return [row for row in results["rows"] if row["case"] == case]


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_measures_every_server_at_each_worker_count(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    _table, results = quick_run
    for case in "abc":
        rows = rows_of(results, case)
        assert [row["workers"] for row in rows] == [1, 2]
        for row in rows:
            assert isinstance(row["requests_per_second"], float)
            assert row["requests_per_second"] > 0
            assert 0 < row["p50_ms"] <= row["p99_ms"]
            assert isinstance(row["errors"], int)
            assert row["reference"] == "ceiling"
            assert row["ratio"] > 0
    for row in rows_of(results, "b"):
        assert row["ratio"] == 1.0
    for row in rows_of(results, "a"):
        rss = row["details"]["rss_mib"]
        assert len(rss) == row["workers"]
        assert all(mib > 10 for mib in rss)


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_measures_the_cold_path(quick_run: tuple[str, dict[str, Any]]) -> None:
    _table, results = quick_run
    measured = [row for row in rows_of(results, "d") if "statements" in row["details"]]
    references = [row for row in rows_of(results, "d") if row["label"].startswith("orjson")]
    assert [row["details"]["items"] for row in measured] == [200, 500]
    assert [row["details"]["items"] for row in references] == [200, 500]
    small, large = measured
    assert small["details"]["statements"] == large["details"]["statements"] > 0
    assert small["details"]["nodes"] < large["details"]["nodes"]
    for row in measured:
        assert row["p50_ms"] > 0
        assert row["reference"] == "orjson"
        assert row["ratio"] > 0


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_states_the_cost_of_a_refusal_beside_a_hit(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    table, results = quick_run
    rows = rows_of(results, "k")
    if not wrk_available():
        assert [row["notes"] for row in rows] == ["skipped: needs wrk"]
        return
    hit, refusal, *floods = rows
    assert (hit["label"], refusal["label"]) == ("cached menu call (hit)", "write refused (429)")
    for row in (hit, refusal):
        assert row["workers"] == 1 and row["requests_per_second"] > 0
        assert row["details"]["cpu_us_per_answer"] > 0
    assert hit["details"]["non_2xx_or_errors"] == 0
    # Every refused write is a 429 (the first few, before the limit, are 401s).
    assert refusal["details"]["non_2xx_or_errors"] > 0.9 * refusal["requests_per_second"]
    assert refusal["details"]["cpu_vs_hit"] == pytest.approx(
        refusal["details"]["cpu_us_per_answer"] / hit["details"]["cpu_us_per_answer"]
    )
    assert [flood["label"] for flood in floods] == [
        "flood: 1024 connections of new categories, defaults",
        "flood: 1024 connections of new repeated categories, defaults",
        "flood: 1024 connections of new orders of absent allergens, defaults",
        "flood: 1024 connections of the cached menu, defaults",
    ]
    for flood in floods:
        assert flood["workers"] == 2 and flood["details"]["probe_reads"] > 0
        # The loop answers every flood from the cached menu: none is shed.
        assert flood["details"]["probe_uncached_statuses"].keys() == {"200"}
    assert [flood["details"]["reference"] for flood in floods] == [False, False, False, True]
    for kind in ("new categories", "new repeated categories", "new orders of absent allergens"):
        assert f"flood of {kind}: probe's cached menu p99 <= 100 ms" in table
    assert "flood of the cached menu:" not in table
    assert "us CPU per answer" in table


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_reads_the_catalog_at_random(quick_run: tuple[str, dict[str, Any]]) -> None:
    _table, results = quick_run
    for case in "gh":
        single, identity, gzip = rows_of(results, case)
        assert single["details"]["catalog"] is False and single["ratio"] == 1.0
        assert identity["label"].startswith("50 restaurants") and identity["label"].endswith(
            "identity"
        )
        assert gzip["label"].endswith("gzip")
        for row in (identity, gzip):
            assert row["details"]["catalog"] is True
            assert row["requests_per_second"] > 0 and row["errors"] == 0
            expected = row["requests_per_second"] / single["requests_per_second"]
            assert row["ratio"] == pytest.approx(expected)
    assert rows_of(results, "g")[0]["details"]["cache_bytes"] is None
    assert rows_of(results, "h")[0]["details"]["cache_bytes"] == 256 * 1024


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_compares_the_gzip_path_with_the_ceiling(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    table, results = quick_run
    presto, ceiling = rows_of(results, "i")
    for row in (presto, ceiling):
        assert row["workers"] == 2 and row["errors"] == 0
        assert row["requests_per_second"] > 0
        assert row["details"]["content_encoding"] == "gzip"
        assert 0 < row["details"]["body_bytes"] < row["details"]["identity_bytes"] / 20
    assert ceiling["ratio"] == 1.0
    assert presto["ratio"] == pytest.approx(
        presto["requests_per_second"] / ceiling["requests_per_second"]
    )
    assert "menu on the wire >= 20x smaller with gzip" in table


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_times_each_kind_of_write(quick_run: tuple[str, dict[str, Any]]) -> None:
    _table, results = quick_run
    rows = rows_of(results, "j")
    kinds = [
        "PATCH a menu entry's name",
        "PATCH a shared leaf's price",
        "PUT an item's modifiers",
        "PATCH 300 prices in one batch",
        "PUT an item's sold-out",
    ]
    plain = [row for row in rows if not row["details"].get("webhook")]
    assert [(row["label"].split(",")[0], row["details"]["publish_on_write"]) for row in plain] == [
        (kind, mode) for mode in ("background", "transaction") for kind in kinds
    ]
    for row in plain:
        assert row["errors"] == 0
        assert row["details"]["writes"] == 3
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    # Then with one webhook endpoint, beside the same writes with it disabled.
    hooked = rows[len(plain) :]
    assert [row["label"].split(",")[0] for row in hooked] == kinds
    for row in hooked:
        assert row["label"].endswith("1 webhook endpoint")
        assert row["details"]["writes"] == 4 and row["details"]["delivered"] > 0
        assert row["p50_ms"] > 0 and row["ratio"] > 0


def test_catalog_copies_a_restaurant_with_its_items_and_links(
    engine: Engine, db_url: str, demo: None
) -> None:
    with engine.connect() as connection:
        items = connection.scalar(sa.text("SELECT count(*) FROM item WHERE restaurant_id = 1"))
        links = connection.scalar(
            sa.text("SELECT count(*) FROM item_modifier WHERE restaurant_id = 1")
        )
    first, last = copy_restaurant(db_url, 1, 3)
    assert (first, last) == (4, 6)
    with engine.connect() as connection:
        for restaurant_id in range(first, last + 1):
            assert (
                connection.scalar(
                    sa.text("SELECT count(*) FROM item WHERE restaurant_id = :r"),
                    {"r": restaurant_id},
                )
                == items
            )
            # Each copy's links join its own items only.
            assert (
                connection.scalar(
                    sa.text(
                        "SELECT count(*) FROM item_modifier l JOIN item i ON i.id = l.modifier_id "
                        "WHERE l.restaurant_id = :r AND i.restaurant_id = :r"
                    ),
                    {"r": restaurant_id},
                )
                == links
            )
    # New rows get fresh ids after the copies (the sequences moved on).
    with make_sessionmaker(engine)() as session, session.begin():
        restaurant = Restaurant(name="After the copies", currency="USD")
        session.add(restaurant)
        session.flush()
        assert restaurant.id == last + 1


def test_publishing_the_catalog_publishes_every_copy(
    engine: Engine, db_url: str, demo: None
) -> None:
    first, last = copy_restaurant(db_url, 1, 3)

    publish_catalog(db_url, first, last)

    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT p.restaurant_id, p.menu_version = r.menu_version FROM published_menu p "
                "JOIN restaurant r ON r.id = p.restaurant_id WHERE p.variant = '' "
                "ORDER BY p.restaurant_id"
            )
        ).all()
    assert [tuple(row) for row in rows] == [(n, True) for n in range(first, last + 1)]


def test_spread_script_draws_menu_paths_in_range() -> None:
    spread = Spread(4, 9, {"Accept-Encoding": "gzip"}, seed=3)
    script = spread.wrk_script()
    assert 'wrk.headers["Accept-Encoding"] = "gzip"' in script
    assert "math.random(4, 9)" in script
    rng = random.Random(1)
    paths = {spread.path(rng) for _ in range(200)}
    assert paths == {f"/restaurant/{n}/item" for n in range(4, 10)}


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_reports_the_mixed_load(quick_run: tuple[str, dict[str, Any]]) -> None:
    _table, results = quick_run
    (row,) = rows_of(results, "e")
    assert row["workers"] == 2
    assert row["details"]["reads"] > 0
    assert row["details"]["writes"] > 0
    assert isinstance(row["details"]["stale_reads"], int)
    assert isinstance(row["details"]["not_modified"], int)
    assert isinstance(row["errors"], int)
    # Both workers answered reads, and the counts add up.
    per_worker = row["details"]["reads_per_worker"]
    assert len(per_worker) == 2 and min(per_worker) > 0
    assert sum(per_worker) == row["details"]["reads"]
    assert "stale of" in row["notes"]


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_measures_memory_with_the_cache_full(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    _table, results = quick_run
    baseline, full = rows_of(results, "f")
    assert (baseline["details"]["cache_bytes"], full["details"]["cache_bytes"]) == (0, 2 * 2**20)
    for row in (baseline, full):
        assert row["workers"] == 2
        assert row["errors"] == 0
        assert len(row["details"]["rss_mib"]) == 2
        assert all(mib > 10 for mib in row["details"]["rss_mib"])
        assert row["details"]["urls"] == 27
        # Each response read at least twice on each worker.
        assert row["details"]["requests"] >= 27 * 2 * 2
    # Well over the budget, so the cache is full and evicting.
    assert full["details"]["distinct_bytes"] > 2 * full["details"]["cache_bytes"]
    assert full["details"]["baseline_mib"] > 10
    assert len(full["details"]["growth_mib"]) == 2
    assert "over baseline" in full["notes"]


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_prints_the_table_and_targets(quick_run: tuple[str, dict[str, Any]]) -> None:
    table, results = quick_run
    lines = table.splitlines()
    header = next(line for line in lines if line.startswith("case "))
    for column in ["req/s", "p50 ms", "p99 ms", "errors", "ratio"]:
        assert column in header
    for row in results["rows"]:
        assert any(line.startswith(row["case"]) and row["label"] in line for line in lines)
    assert "Targets (printed, never asserted):" in lines
    goals = [target["goal"] for target in results["targets"]]
    assert "warm >= 0.8x ceiling, 1 worker(s)" in goals
    assert "warm >= 5x gunicorn, 2 worker(s)" in goals
    assert "2 workers >= 1.6x 1 worker" in goals
    assert "statements constant across menu sizes" in goals
    assert "mixed load: 0 stale reads and 0 errors" in goals
    assert "RSS per worker with the cache full - baseline <= budget + 25%" in goals
    for target in results["targets"]:
        assert target["goal"] in table
    generator = "wrk" if wrk_available() else "aiohttp"
    assert results["meta"]["load"].startswith(generator)
    assert {row["details"]["generator"] for row in results["rows"] if row["case"] in "abc"} == {
        generator
    }


@pytest.fixture
def ceiling(tmp_path: Path) -> Iterator[servers.Server]:
    """The bare ceiling server answering a small body."""
    body_file = tmp_path / "body.json"
    body_file.write_bytes(b'[{"id": 1}]')
    server = servers.start_ceiling(body_file, workers=1, log_path=tmp_path / "ceiling.log")
    try:
        server.wait_until_ready("/")
        yield server
    finally:
        server.stop()
    assert server.process.returncode == 0


@pytest.mark.e2e
def test_the_fallback_load_generator_counts_requests(ceiling: servers.Server) -> None:
    result = run_load(ceiling.url("/"), duration=0.5, connections=4, generator="aiohttp")

    assert result.generator == "aiohttp"
    assert result.requests > 0
    assert result.errors == 0
    assert result.requests_per_second > 0
    assert 0 < result.p50_ms <= result.p99_ms


def test_the_fallback_load_generator_counts_errors() -> None:
    url = f"http://127.0.0.1:{released_port()}/"  # nothing listens there

    result = run_load(url, duration=0.3, connections=2, generator="aiohttp")

    assert result.errors > 0
    assert result.requests == result.errors


def test_wrk_output_is_parsed() -> None:
    result = parse_wrk(WRK_OUTPUT)

    assert result.generator == "wrk"
    assert result.requests == 424913
    assert result.seconds == 10.0
    assert result.requests_per_second == 42489.22
    assert result.p50_ms == pytest.approx(0.468)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.errors == 2 + 3 + 7


def test_parse_key_takes_the_printed_key_alone() -> None:
    assert parse_key("presto_3fA9_x-Qq7LmN0pZ2rT8v\n") == "presto_3fA9_x-Qq7LmN0pZ2rT8v"
    assert parse_key("no key here\n") is None
    assert parse_key("presto_a\npresto_b\n") is None
    assert parse_key("") is None


def test_create_key_makes_a_key_the_write_api_accepts(
    db_url: str, demo: None, session: Session
) -> None:
    key = create_key(db_url, restaurant_id=1)

    row = authenticate(session, key)
    assert row is not None and row.restaurant_id == 1


def test_layer_sizes_fill_the_menu() -> None:
    assert layer_sizes(2000, 4, 2) == [1000, 500, 250, 250]
    with pytest.raises(ValueError):
        layer_sizes(7, 4, 2)


def test_generated_menu_nests_four_deep_with_shared_modifiers(
    session: Session, client: FlaskClient
) -> None:
    restaurant_id = generate_menu(session, items=400)
    session.commit()

    menu = client.get(f"/restaurant/{restaurant_id}/item").get_json()

    assert len(menu) == 200  # the first layer: menu entries
    node = menu[0]
    for _ in range(3):
        assert len(node["modifiers"]) == 2
        node = node["modifiers"][0]
    assert node["modifiers"] == []
    assert count_nodes(menu) == 200 * (1 + 2 + 4 + 8)
    # 200 entries share 100 choice groups: entries 0 and 50 both carry group 1.
    assert menu[0]["modifiers"][0] == menu[50]["modifiers"][0]


def test_cold_measurement_counts_statements_per_request(db_url: str) -> None:
    small, large = measure_cold(db_url, (40, 120), repeats=2)

    assert (small.items, large.items) == (40, 120)
    assert small.statements == large.statements > 0
    assert small.nodes == 20 * 15
    assert large.nodes == 60 * 15
    assert small.body_bytes < large.body_bytes
    assert small.median_ms > 0
    assert small.reference_median_ms > 0


class FakeMenuServer:
    """A menu call and a price write. `stale`: reads serve the first price forever;
    `stale_304`: full reads are fresh, but any `If-None-Match` gets 304."""

    def __init__(self, *, stale: bool, stale_304: bool = False, write_api: bool = True) -> None:
        self.stale = stale
        self.stale_304 = stale or stale_304
        self.write_api = write_api
        self.price = 100
        self.writes: list[int] = []

    async def handle(self, request: web.BaseRequest) -> web.Response:
        if request.method == "GET" and request.path == "/restaurant/1/item":
            price = 100 if self.stale else self.price
            etag = f'"p{price}"'
            if_none_match = request.headers.get("If-None-Match")
            if if_none_match == etag or (if_none_match and self.stale_304):
                return web.Response(status=304, headers={"ETag": if_none_match})
            return web.json_response(
                [{"id": 7, "price": price, "modifiers": []}], headers={"ETag": etag}
            )
        if self.write_api and request.method == "PATCH" and request.path == "/restaurant/1/item/7":
            assert request.headers["Authorization"] == "Bearer secret-key"
            self.price = (await request.json())["price"]
            self.writes.append(self.price)
            return web.json_response({"id": 7, "price": self.price})
        return web.Response(status=404)


def mixed_against(fake: FakeMenuServer) -> MixedResult:
    """Half a second of mixed load against `fake` on a free port."""

    async def run() -> MixedResult:
        server = web.Server(fake.handle, access_log=None)
        tcp_server = await asyncio.get_running_loop().create_server(server, "127.0.0.1", 0)
        port = tcp_server.sockets[0].getsockname()[1]
        try:
            return await run_mixed(
                f"http://127.0.0.1:{port}",
                restaurant_id=1,
                api_key="secret-key",
                duration=0.5,
                connections=4,
                write_share=0.2,
            )
        finally:
            tcp_server.close()
            await server.shutdown(1.0)

    return uvloop.run(run())


def test_mixed_load_finds_no_stale_read_where_there_is_none() -> None:
    fake = FakeMenuServer(stale=False)

    result = mixed_against(fake)

    assert result.writes == len(fake.writes) > 1
    assert fake.writes == sorted(set(fake.writes))  # strictly increasing prices
    assert result.reads > 0
    assert result.stale_reads == 0
    assert result.errors == 0
    # One worker, and the fake names none.
    assert result.reads_per_worker == (result.reads,)


def test_mixed_load_counts_stale_reads() -> None:
    result = mixed_against(FakeMenuServer(stale=True))

    assert result.writes > 1
    assert 0 < result.stale_reads <= result.reads
    assert result.errors == 0


def test_mixed_load_counts_a_304_for_an_old_tag_as_stale() -> None:
    result = mixed_against(FakeMenuServer(stale=False, stale_304=True))

    assert result.not_modified > 0
    assert 0 < result.stale_reads <= result.not_modified
    assert result.errors == 0


def test_mixed_load_without_a_write_api_says_so() -> None:
    with pytest.raises(WriteApiUnavailable, match="404"):
        mixed_against(FakeMenuServer(stale=False, write_api=False))


def warm_rows(presto: float, ceiling: float, gunicorn: float, workers: int) -> list[Row]:
    return [
        Row("a", "presto", workers, presto, 1.0, 2.0, 0),
        Row("b", "ceiling", workers, ceiling, 1.0, 3.0, 0),
        Row("c", "gunicorn", workers, gunicorn, 5.0, 9.0, 0),
    ]


def test_targets_pass_fail_and_not_measured() -> None:
    rows = warm_rows(900.0, 1000.0, 100.0, 1) + warm_rows(1700.0, 2000.0, 400.0, 2)
    rows.append(
        Row(
            "d",
            "cold",
            1,
            10.0,
            100.0,
            110.0,
            0,
            "orjson",
            0.5,
            details={"items": 10, "statements": 3},
        )
    )
    rows.append(
        Row(
            "d",
            "cold",
            1,
            5.0,
            200.0,
            210.0,
            0,
            "orjson",
            0.2,
            details={"items": 20, "statements": 4},
        )
    )
    rows.append(Row("e", "mixed", 2, notes="n/a: write API unavailable"))
    rows.append(Row("f", "full", 2, details={"cache_bytes": 8 * 2**20, "growth_mib": [9.5, 10.5]}))

    verdicts = {target.goal: target.passed for target in check_targets(rows, [1, 2])}

    assert verdicts == {
        "warm >= 0.8x ceiling, 1 worker(s)": True,
        "warm >= 5x gunicorn, 1 worker(s)": True,
        "warm p99 <= 2x ceiling p99, 1 worker(s)": True,
        "warm >= 0.8x ceiling, 2 worker(s)": True,
        "warm >= 5x gunicorn, 2 worker(s)": False,
        "warm p99 <= 2x ceiling p99, 2 worker(s)": True,
        "2 workers >= 1.6x 1 worker": True,
        "cold 10 items within 3x of orjson from dicts": True,
        "cold 20 items within 3x of orjson from dicts": False,
        "statements constant across menu sizes": False,
        "mixed load: 0 stale reads and 0 errors": None,
        "RSS per worker with the cache full - baseline <= budget + 25%": False,
    }


def test_memory_target_passes_within_a_quarter_over_the_budget() -> None:
    rows = [Row("f", "full", 2, details={"cache_bytes": 8 * 2**20, "growth_mib": [9.9, 3.0]})]

    (target,) = [target for target in check_targets(rows, []) if target.goal.startswith("RSS")]

    assert target.passed is True
    assert target.measured == "+9.9 MiB at most vs 10.0 MiB (8 MiB budget)"


def test_menu_paths_cover_every_variant_once() -> None:
    paths = menu_paths([3, 4])

    assert len(paths) == len(set(paths)) == 2 * 27
    assert paths[:3] == ["/restaurant/3/item", "/restaurant/3/item?all=true",
                         "/restaurant/3/item?available=true"]  # fmt: skip
    assert "/restaurant/4/item?all=true&category=Category%2012" in paths


def test_the_table_lines_up_every_row() -> None:
    rows = warm_rows(900.0, 1000.0, 100.0, 1)
    meta = {"date": "today", "machine": "m", "load": "l", "database": "sqlite", "menu": "demo"}

    table = format_table(meta, rows, check_targets(rows, [1]))

    lines = table.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("case")))
    assert [line.split()[0] for line in lines[header + 2 : header + 5]] == ["a", "b", "c"]
    assert "  pass  warm >= 0.8x ceiling, 1 worker(s): 0.90x" in lines
    assert "  pass  warm >= 5x gunicorn, 1 worker(s): 9.00x" in lines


@pytest.mark.usefixtures("demo")
def test_the_wsgi_entry_point_serves_the_menu(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESTO_DATABASE_URL", db_url)
    sys.modules.pop("presto.wsgi", None)
    wsgi = importlib.import_module("presto.wsgi")
    try:
        response = wsgi.app.test_client().get("/restaurant/1/item")
    finally:
        app_database(wsgi.app).engine.dispose()
        sys.modules.pop("presto.wsgi", None)

    assert response.status_code == 200
    assert response.get_json()[0]["name"] == "Classic Burger"


@pytest.mark.e2e
def test_quick_run_says_why_the_pooler_case_did_not_run_on_sqlite(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    _table, results = quick_run
    assert [row["notes"] for row in rows_of(results, "l")] == ["needs PostgreSQL (--database-url)"]
