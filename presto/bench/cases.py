"""The cases of the benchmark, each turning measurements into rows of the table.

a. presto's warm menu call, as shipped (access log on), at each worker count;
b. the ceiling: a bare aiohttp server answering the same bytes, same worker count;
c. the classic stack: presto's Flask app under gunicorn sync workers, same worker count;
d. the cold path of large generated menus, in process;
e. mixed reads and writes over two workers, every read checked for staleness;
f. resident memory of each of two workers with the menu cache full, against the cache off;
g. a platform's long tail: thousands of demo-sized menus read at random, against one menu;
h. the same with a cache too small for the catalog, so misses dominate;
i. the warm menu call to a gzip client, against the ceiling answering the same gzip bytes;
j. write latency on a large generated menu;
k. the CPU cost of a refusal beside a hit's, and the warm path under floods of new query
   strings, answered from the cached menu or mostly refused (`presto.bench.refusals`);
l. two workers through PgBouncer in transaction mode beside two on direct connections:
   the warm menu call, and reads over the catalog with case h's small cache (misses).
"""

from __future__ import annotations

import contextlib
import functools
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

from presto.bench import pooling, servers
from presto.bench.catalog import copy_restaurant, publish_catalog
from presto.bench.cold import measure_cold
from presto.bench.generated_menus import generate_menu
from presto.bench.load import LoadResult, Spread, percentile, run_load
from presto.bench.memory import MemoryDrive, menu_paths, prepare_restaurants, read_everywhere
from presto.bench.mixed import create_key, run_mixed
from presto.bench.report import Row, measured_row
from presto.bench.webhook_sink import WebhookSink
from presto.bench.writes import WriteLatency, measure_writes
from presto.storage.engine import create_schema, drop_schema, make_engine, make_sessionmaker

MENU_PATH = "/restaurant/1/item"
CEILING = "ceiling"
PRESTO_WORKERS_FOR_MIXED = 2
PRESTO_WORKERS_FOR_MEMORY = 2
PRESTO_WORKERS_FOR_CATALOG = 2
MIB = 1024 * 1024


@dataclass(frozen=True)
class BenchConfig:
    """What to run, and how hard."""

    cases: frozenset[str]
    workers: tuple[int, ...]
    duration: float
    warmup: float
    connections: int
    generator: str
    # Measured runs of each server in cases a-c, g-i, taken in turns (the median shows).
    rounds: int
    database_url: str
    # "demo": the demo menus (restaurant 1: the burger bar); "generated": a large menu.
    menu: str
    generated_items: int
    cold_sizes: tuple[int, ...]
    cold_repeats: int
    # Case f: the menu cache's byte budget, and the generated restaurants that overflow it.
    cache_budget: int
    memory_restaurants: int
    memory_items: int
    # Cases g and h: restaurants in the catalog, and case h's cache budget.
    catalog_restaurants: int
    small_cache_bytes: int
    # Case j: writes of each kind.
    write_repeats: int
    work_dir: Path


@contextmanager
def running(server: servers.Server, probe_path: str) -> Iterator[servers.Server]:
    """A started server, stopped on the way out whatever happens (Ctrl-C included)."""
    try:
        server.wait_until_ready(probe_path)
        yield server
    finally:
        server.stop()


def prepare_menu(config: BenchConfig) -> bytes:
    """Load the menu into the database and return the bytes of its menu call."""
    reset = config.menu == "demo"
    if not reset:
        engine = make_engine(config.database_url, pool_size=1)
        try:
            drop_schema(engine)
            create_schema(engine)
            with make_sessionmaker(engine)() as session, session.begin():
                generate_menu(session, items=config.generated_items)
        finally:
            engine.dispose()
    log = config.work_dir / "presto-prepare.log"
    server = servers.start_presto(config.database_url, workers=1, log_path=log, reset_db=reset)
    with (
        running(server, MENU_PATH),
        urllib.request.urlopen(server.url(MENU_PATH), timeout=60) as response,
    ):
        body: bytes = response.read()
    return body


def warm_up(server: servers.Server, config: BenchConfig, spread: Spread | None = None) -> None:
    """Load `server` for the warm-up time (the menu call, or reads spread over a catalog:
    those warm up as long as a run, so that the caches fill)."""
    duration = config.warmup if spread is None else config.duration
    url = server.url(MENU_PATH if spread is None else "/")
    run_load(
        url, duration=duration, connections=config.connections, generator=config.generator,
        spread=spread,
    )  # fmt: skip


def load(server: servers.Server, config: BenchConfig, spread: Spread | None = None) -> LoadResult:
    """One measured run of the menu call (or of reads spread over a catalog)."""
    url = server.url(MENU_PATH if spread is None else "/")
    return run_load(
        url, duration=config.duration, connections=config.connections,
        generator=config.generator, spread=spread,
    )  # fmt: skip


def alternate(runs: Mapping[str, Callable[[], LoadResult]], rounds: int) -> dict[str, Rounds]:
    """Every run `rounds` times, taking turns, so that a slow spell of a shared machine
    falls on all of them alike rather than on whichever ran then."""
    results: dict[str, list[LoadResult]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            results[name].append(run())
    return {name: Rounds(tuple(rounds_of)) for name, rounds_of in results.items()}


@dataclass(frozen=True)
class Rounds:
    """The rounds of one alternated run; the table shows the median round."""

    results: tuple[LoadResult, ...]

    @property
    def median(self) -> LoadResult:
        ranked = sorted(self.results, key=lambda result: result.requests_per_second)
        return ranked[(len(ranked) - 1) // 2]

    def details(self) -> dict[str, Any]:
        """Every round's rate, for the JSON results."""
        return {"rounds_requests_per_second": [r.requests_per_second for r in self.results]}


def load_row(
    case: str, label: str, workers: int, result: LoadResult | Rounds, rss: list[float]
) -> Row:
    """A row of a warm run (the median round of alternated ones); `rss` is each worker's
    resident memory in MiB afterwards."""
    rounds = result if isinstance(result, Rounds) else None
    if isinstance(result, Rounds):
        result = result.median
    notes = "RSS " + "/".join(f"{mib:.0f}" for mib in rss) + " MiB" if rss else ""
    return measured_row(
        case,
        label,
        result,
        workers=workers,
        notes=notes,
        details={
            "requests": result.requests,
            "seconds": result.seconds,
            "generator": result.generator,
            "rss_mib": rss,
            **(rounds.details() if rounds else {}),
        },
    )


def worker_rss(server: servers.Server) -> list[float]:
    """Resident memory of each worker of `server`, in MiB."""
    return [mib for pid in server.worker_pids() if (mib := servers.rss_mib(pid)) is not None]


def run_warm(config: BenchConfig, body: bytes) -> list[Row]:
    """Cases a, b and c at each worker count; ratios are to the ceiling of that count."""
    body_file = config.work_dir / "menu-body.json"
    body_file.write_bytes(body)
    rows: list[Row] = []
    for workers in config.workers:
        group: list[Row] = []
        starts = {
            "a": ("presto, access log on", lambda w=workers: servers.start_presto(
                config.database_url, workers=w, log_path=config.work_dir / f"presto-{w}.log"
            )),
            "b": ("bare aiohttp web.Server", lambda w=workers: servers.start_ceiling(
                body_file, workers=w, log_path=config.work_dir / f"ceiling-{w}.log"
            )),
            "c": ("Flask on gunicorn sync", lambda w=workers: servers.start_gunicorn(
                config.database_url, workers=w, log_path=config.work_dir / f"gunicorn-{w}.log"
            )),
        }  # fmt: skip
        with contextlib.ExitStack() as stack:
            started = {
                case: stack.enter_context(running(start(), MENU_PATH))
                for case, (_label, start) in starts.items()
                if case in config.cases
            }
            for server in started.values():
                warm_up(server, config)
            results = alternate(
                {case: functools.partial(load, server, config) for case, server in started.items()},
                config.rounds,
            )
            for case, server in started.items():
                group.append(
                    load_row(case, starts[case][0], workers, results[case], worker_rss(server))
                )
        ceiling = next((row for row in group if row.case == "b"), None)
        for row in group:
            if ceiling is not None and ceiling.requests_per_second:
                row.reference = CEILING
                row.ratio = (row.requests_per_second or 0.0) / ceiling.requests_per_second
        rows.extend(group)
    return rows


def run_cold_case(config: BenchConfig) -> list[Row]:
    """Case d: presto's cold menu call beside orjson from plain dicts, per menu size."""
    rows = []
    for result in measure_cold(config.database_url, config.cold_sizes, repeats=config.cold_repeats):
        reference_label = f"orjson from dicts, {result.items} items"
        shape = f"{result.nodes:,} nodes, {result.body_bytes / 1e6:.1f} MB"
        rows.append(
            cold_row(
                f"presto cold, {result.items} items",
                result.median_ms,
                result.max_ms,
                ratio=result.reference_median_ms / result.median_ms,
                notes=f"{result.statements} statements/request; {shape}; publishing it "
                f"once per change: {result.publish_median_ms:.0f} ms",
                details={
                    "publish_median_ms": result.publish_median_ms,
                    "items": result.items,
                    "nodes": result.nodes,
                    "body_bytes": result.body_bytes,
                    "statements": result.statements,
                    "repeats": result.repeats,
                    "median_ms": result.median_ms,
                },
            )
        )
        rows.append(
            cold_row(
                reference_label,
                result.reference_median_ms,
                result.reference_max_ms,
                ratio=1.0,
                notes=shape,
                details={"items": result.items, "median_ms": result.reference_median_ms},
            )
        )
    return rows


def cold_row(label: str, median_ms: float, max_ms: float, **others: Any) -> Row:
    """A row of case d, compared with orjson: one call at a time, so its throughput is
    1000 / its median in ms."""
    return Row(
        case="d",
        label=label,
        workers=1,
        requests_per_second=1000 / median_ms,
        p50_ms=median_ms,
        p99_ms=max_ms,
        errors=0,
        reference="orjson",
        **others,
    )


def run_mixed_case(config: BenchConfig) -> list[Row]:
    """Case e: 95% reads, 5% writes over two presto workers; stale reads and errors."""
    label = f"presto mixed 95% reads/5% writes, {PRESTO_WORKERS_FOR_MIXED} workers"
    server = servers.start_presto(
        config.database_url,
        workers=PRESTO_WORKERS_FOR_MIXED,
        log_path=config.work_dir / "presto-mixed.log",
        reset_db=True,
    )
    with running(server, MENU_PATH):
        key = create_key(config.database_url, restaurant_id=1)
        result = uvloop.run(
            run_mixed(
                server.url(""),
                restaurant_id=1,
                api_key=key,
                duration=config.duration,
                connections=config.connections,
            )
        )
    per_worker = "/".join(f"{count:,}" for count in result.reads_per_worker)
    return [
        measured_row(
            "e",
            label,
            result,
            workers=PRESTO_WORKERS_FOR_MIXED,
            notes=f"{result.stale_reads} stale of {result.reads:,} reads "
            f"({per_worker} per worker, {result.not_modified:,} 304s); {result.writes:,} writes",
            details={
                "reads": result.reads,
                "writes": result.writes,
                "stale_reads": result.stale_reads,
                "not_modified": result.not_modified,
                "reads_per_worker": list(result.reads_per_worker),
                "seconds": result.seconds,
            },
        )
    ]


def run_memory_case(config: BenchConfig) -> list[Row]:
    """Case f: each worker's RSS with the cache full, and with the cache off as baseline."""
    restaurant_ids = prepare_restaurants(
        config.database_url, restaurants=config.memory_restaurants, items=config.memory_items
    )
    paths = menu_paths(restaurant_ids)
    runs = [_measure_memory(config, paths, cache_bytes) for cache_bytes in (0, config.cache_budget)]
    baseline = statistics.fmean(runs[0][2]) if runs[0][2] else 0.0
    return [
        _memory_row(cache_bytes, drive, rss, baseline, len(restaurant_ids))
        for cache_bytes, drive, rss in runs
    ]


def _measure_memory(
    config: BenchConfig, paths: list[str], cache_bytes: int
) -> tuple[int, MemoryDrive, list[float]]:
    """Every path read on every worker of a presto with a `cache_bytes` cache (0: off);
    the budget, the drive and each worker's RSS in MiB afterwards."""
    server = servers.start_presto(
        config.database_url,
        workers=PRESTO_WORKERS_FOR_MEMORY,
        log_path=config.work_dir / f"presto-memory-{cache_bytes}.log",
        cache_bytes=cache_bytes,
    )
    with running(server, paths[0]):
        drive = uvloop.run(
            read_everywhere(server.url(""), paths, workers=PRESTO_WORKERS_FOR_MEMORY)
        )
        return cache_bytes, drive, worker_rss(server)


def _memory_row(
    cache_bytes: int, drive: MemoryDrive, rss: list[float], baseline: float, restaurants: int
) -> Row:
    """A row of case f: with the cache on, its growth over the baseline (the mean worker
    with the cache off); with it off, what the drive read."""
    notes = "RSS " + "/".join(f"{mib:.1f}" for mib in rss) + " MiB"
    details: dict[str, Any] = {
        "rss_mib": rss,
        "cache_bytes": cache_bytes,
        "urls": drive.urls,
        "distinct_bytes": drive.distinct_bytes,
        "requests": drive.requests,
    }
    if cache_bytes:
        growth = [mib - baseline for mib in rss]
        notes += ", " + "/".join(f"{mib:+.1f}" for mib in growth) + " over baseline"
        details.update(baseline_mib=baseline, growth_mib=growth)
        label = f"presto, cache full, {cache_bytes / MIB:g} MiB budget"
    else:
        notes += (
            f"; {drive.urls} distinct responses of {drive.distinct_bytes / MIB:.1f} MiB "
            f"from {restaurants} restaurants"
        )
        label = "presto, cache off (baseline)"
    return Row(
        case="f",
        label=label,
        workers=PRESTO_WORKERS_FOR_MEMORY,
        errors=drive.errors,
        notes=notes,
        details=details,
    )


def run_long_tail_case(config: BenchConfig) -> list[Row]:
    """Cases g and h: a catalog of demo-sized menus read uniformly at random over two
    workers (default cache, then one too small for the catalog), with and without
    `Accept-Encoding: gzip`, beside the single demo menu's warm rate in the same server."""
    prepare_menu(replace(config, menu="demo"))
    first, last = copy_restaurant(config.database_url, 1, config.catalog_restaurants)
    publishing = time.perf_counter()
    publish_catalog(config.database_url, first, last)
    publishing = time.perf_counter() - publishing
    rows: list[Row] = []
    for case, cache_bytes in (("g", None), ("h", config.small_cache_bytes)):
        if case not in config.cases:
            continue
        budget = "default cache" if cache_bytes is None else f"{cache_bytes / MIB:g} MiB cache"
        server = servers.start_presto(
            config.database_url,
            workers=PRESTO_WORKERS_FOR_CATALOG,
            log_path=config.work_dir / f"presto-catalog-{case}.log",
            cache_bytes=cache_bytes,
        )
        spreads = {
            "identity": Spread(first, last),
            "gzip": Spread(first, last, {"Accept-Encoding": "gzip"}),
        }
        with running(server, MENU_PATH):
            warm_up(server, config)
            for spread in spreads.values():
                warm_up(server, config, spread)
            runs = {"single": functools.partial(load, server, config)}
            for encoding, spread in spreads.items():
                runs[encoding] = functools.partial(load, server, config, spread)
            results = alternate(runs, config.rounds)
            rss = worker_rss(server)
        single = results.pop("single")
        reference = f"single menu, {budget}"
        group = [load_row(case, f"presto {reference}", PRESTO_WORKERS_FOR_CATALOG, single, [])]
        for encoding, result in results.items():
            label = f"{last - first + 1:,} restaurants, {budget}, {encoding}"
            group.append(load_row(case, label, PRESTO_WORKERS_FOR_CATALOG, result, rss))
        for row in group:
            row.reference = "single"
            row.ratio = (row.requests_per_second or 0.0) / (
                single.median.requests_per_second or 1.0
            )
            row.details.update(
                catalog=row is not group[0], cache_bytes=cache_bytes, publish_seconds=publishing
            )
        rows += group
    return rows


def run_write_case(config: BenchConfig) -> list[Row]:
    """Case j: latency of each kind of write on a generated menu, one at a time, with the
    menu published after the commit (the default) and in the write's transaction; then
    with one webhook endpoint registered (`run_webhook_writes`)."""
    prepare_menu(replace(config, menu="generated"))
    rows = []
    for mode in ("background", "transaction"):
        server = servers.start_presto(
            config.database_url,
            workers=1,
            log_path=config.work_dir / f"presto-writes-{mode}.log",
            options=("--publish-on-write", mode),
        )
        with running(server, MENU_PATH):
            key = create_key(config.database_url, restaurant_id=1)
            results = uvloop.run(
                measure_writes(
                    server.url(""), restaurant_id=1, api_key=key, repeats=config.write_repeats
                )
            )
        rows += [
            Row(
                case="j",
                label=f"{result.label}, {config.generated_items:,} items, publish {mode}",
                workers=1,
                p50_ms=result.p50_ms,
                p99_ms=result.p99_ms,
                errors=result.errors,
                notes=f"{result.writes} writes one at a time",
                details={
                    "writes": result.writes,
                    "items": config.generated_items,
                    "publish_on_write": mode,
                },
            )
            for result in results
        ]
    return rows + run_webhook_writes(config)


def run_webhook_writes(config: BenchConfig) -> list[Row]:
    """The writes of case j (publishing in the background) with one webhook endpoint
    registered (a local consumer answering 204) beside the same writes with it disabled,
    in one presto process, the endpoint switched on and off before each write (not
    timed): each write with it follows one without, so the background publishing and
    deliveries the writes before left running weigh on both alike. Each row's ratio: the
    p50 of the writes with the endpoint to the p50 of those without."""
    # As many writes with the endpoint as case j makes of each kind (at least 4), and as
    # many without.
    repeats = 4 * max(2, config.write_repeats // 2)
    with WebhookSink() as sink:
        server = servers.start_presto(
            config.database_url,
            workers=1,
            log_path=config.work_dir / "presto-writes-webhook.log",
            options=("--webhook-allow-private",),
        )
        with running(server, MENU_PATH):
            key = create_key(config.database_url, restaurant_id=1)
            endpoint = server.url(f"/restaurant/1/webhooks/{register_webhook(server, key, sink)}")
            headers = {"Authorization": f"Bearer {key}"}

            async def switch(session: aiohttp.ClientSession, position: int) -> None:
                # Off before the even writes, on before the odd ones.
                enabled = {"enabled": position % 2 == 1}
                async with session.patch(endpoint, json=enabled, headers=headers) as answer:
                    answer.raise_for_status()

            results = uvloop.run(
                measure_writes(
                    server.url(""), restaurant_id=1, api_key=key, repeats=repeats,
                    first=1000, before_each=switch,
                )
            )  # fmt: skip
            time.sleep(1)  # the last deliveries
    return [webhook_row(config, result, sink.received) for result in results]


def webhook_row(config: BenchConfig, result: WriteLatency, delivered: int) -> Row:
    """A kind of write with the endpoint (odd writes) beside without it (even writes)."""
    off = percentile(sorted(result.latencies[0::2]), 0.5)
    on = percentile(sorted(result.latencies[1::2]), 0.5)
    writes = result.writes // 2
    return Row(
        case="j",
        label=f"{result.label}, {config.generated_items:,} items, 1 webhook endpoint",
        workers=1,
        p50_ms=on,
        errors=result.errors,
        reference=f"{result.label}, endpoint disabled (p50 {off:.1f} ms)",
        ratio=on / (off or 1.0),
        notes=f"{writes} writes with, {writes} without, alternating; "
        f"p50 ratio (lower is better); {delivered} delivered",
        details={"writes": writes, "webhook": True, "delivered": delivered},
    )


def call_api(url: str, key: str, method: str, body: Any) -> Any:
    """One JSON call with the key; its parsed answer."""
    request = urllib.request.Request(
        url,
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return orjson.loads(response.read() or b"null")


def register_webhook(server: servers.Server, key: str, sink: WebhookSink) -> int:
    """Register the sink for every event of restaurant 1; the endpoint's id."""
    events = ["menu.updated", "item.sold_out", "item.back_in_stock"]
    body = {"url": sink.url, "events": events}
    endpoint = call_api(server.url("/restaurant/1/webhooks"), key, "POST", body)
    return int(endpoint["id"])


def run_gzip_case(config: BenchConfig, identity_body: bytes) -> list[Row]:
    """Case i: presto's warm menu call to a client asking for gzip, beside the ceiling
    answering the same gzip bytes, at the largest worker count."""
    workers = max(config.workers)
    gzip_spread = Spread(1, 1, {"Accept-Encoding": "gzip"})
    body_file = config.work_dir / "menu-body.json.gz"
    presto = servers.start_presto(
        config.database_url, workers=workers, log_path=config.work_dir / "presto-gzip.log"
    )
    with running(presto, MENU_PATH):
        request = urllib.request.Request(presto.url(MENU_PATH), headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=60) as response:
            body_file.write_bytes(response.read())
            encoding = response.headers.get("Content-Encoding")
        ceiling = servers.start_ceiling(
            body_file,
            workers=workers,
            log_path=config.work_dir / "ceiling-gzip.log",
            content_encoding=encoding,
        )
        with running(ceiling, MENU_PATH):
            started = {"presto": presto, "ceiling": ceiling}
            for server in started.values():
                warm_up(server, config, gzip_spread)
            results = alternate(
                {
                    name: functools.partial(load, server, config, gzip_spread)
                    for name, server in started.items()
                },
                config.rounds,
            )
            rss = {name: worker_rss(server) for name, server in started.items()}
    size = f"{body_file.stat().st_size:,} bytes {encoding or 'identity'}"
    rows = [
        load_row("i", "presto warm, gzip requested", workers, results["presto"], rss["presto"]),
        load_row("i", "bare aiohttp, same gzip bytes", workers, results["ceiling"], rss["ceiling"]),
    ]
    for row in rows:
        row.reference = CEILING
        row.ratio = (row.requests_per_second or 0.0) / (
            results["ceiling"].median.requests_per_second or 1.0
        )
        row.notes = f"{size}; {row.notes}"
        row.details.update(
            body_bytes=body_file.stat().st_size,
            identity_bytes=len(identity_body),
            content_encoding=encoding,
        )
    return rows


def run_pooler_case(config: BenchConfig) -> list[Row]:
    """Case l: two presto instances (hosts) of 2 workers each through PgBouncer
    (transaction mode, listener direct) and two on direct connections, all running, the
    load spread over both instances of a kind, the kinds taking turns; ratios to direct."""
    why = pooling.unavailable(config.database_url)
    binary = pooling.pgbouncer_binary()
    if why is not None or binary is None:
        return [Row(case="l", label="presto through PgBouncer", workers=2, notes=why or "")]
    prepare_menu(replace(config, menu="demo"))
    first, last = copy_restaurant(config.database_url, 1, config.catalog_restaurants)
    publish_catalog(config.database_url, first, last)
    catalog = Spread(first, last)
    with pooling.pgbouncer(config.database_url, binary) as pooled, contextlib.ExitStack() as stack:
        started = _start_pooler_instances(config, pooled, stack)
        for instances in started.values():
            for server in instances:
                warm_up(server, config)
                warm_up(server, config, catalog)
        results = alternate(_pooler_runs(config, started, catalog), config.rounds)
    return _pooler_rows(results)


def _start_pooler_instances(
    config: BenchConfig, pooled: str, stack: contextlib.ExitStack
) -> dict[str, list[servers.Server]]:
    """The instances on direct connections and those through PgBouncer at `pooled`, each
    kind by name, stopped when `stack` closes."""
    pooler = ("--database-pooler", "transaction", "--listen-url", config.database_url)
    return {
        name: [
            stack.enter_context(running(servers.start_presto(
                url, workers=2, log_path=config.work_dir / f"presto-{name}-{host}.log",
                cache_bytes=config.small_cache_bytes, options=options,
            ), MENU_PATH))
            for host in range(pooling.INSTANCES)
        ]
        for name, url, options in (
            ("direct", config.database_url, ()), ("pgbouncer", pooled, pooler)
        )
    }  # fmt: skip


def _pooler_runs(
    config: BenchConfig, started: Mapping[str, list[servers.Server]], catalog: Spread
) -> dict[str, Callable[[], LoadResult]]:
    """For each kind, the warm menu call and reads over the catalog, loading all of its
    instances at once, which share out the run's connections."""
    runs: dict[str, Callable[[], LoadResult]] = {}
    # The run's connections, shared out among the instances.
    share = replace(config, connections=max(1, config.connections // pooling.INSTANCES))
    for name, instances in started.items():
        runs[f"warm, {name}"] = functools.partial(
            pooling.load_instances, instances, functools.partial(load, config=share)
        )
        runs[f"catalog misses, {name}"] = functools.partial(
            pooling.load_instances,
            instances,
            functools.partial(load, config=share, spread=catalog),
        )
    return runs


def _pooler_rows(results: Mapping[str, Rounds]) -> list[Row]:
    """A row per run, each kind of load compared with its run on direct connections."""
    rows = {
        name: load_row("l", f"presto {name}, {pooling.INSTANCES} instances", 2, result, [])
        for name, result in results.items()
    }
    for kind in ("warm", "catalog misses"):
        direct = rows[f"{kind}, direct"].requests_per_second or 1.0
        for name in ("direct", "pgbouncer"):
            row = rows[f"{kind}, {name}"]
            row.reference = f"{kind}, direct"
            row.ratio = (row.requests_per_second or 0.0) / direct
    return list(rows.values())
