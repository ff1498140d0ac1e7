"""Case k: what a refusal costs beside a cache hit, and the warm path under a flood of
requests it has never seen.

A refusal must be the cheapest answer presto gives, or a flood of requests it cannot serve
starves the requests it can. This case measures, on a worker of its own, the CPU time per
answer (the worker's user and system time over the answers wrk counted) of cached menu
calls and of writes refused with 429 (a key nobody has, past the failed-authentication
limit: every answer after the first few is a refusal written from its prepared head).
Then, with 2 workers and the defaults, wrk floods 1,024 connections with menu reads of a
new query string each while a probe apart from the load reads the cached menu and a new
query string of the same kind in turn; the probe's p99 of each is what a client sees
during the flood. Three floods, each answered on the event loop from the cached menu
(`presto.serving.menu_filters`): new categories (each keeps no item: answered from the
index, never cached), new categories with the parameter repeated (read by its first
value, as the route reads it), and new orders of allergens no demo item has (each keeps
the whole menu: answered with its own bytes); then, for reference, the same connections
reading the cached menu itself.
"""

from __future__ import annotations

import http.client
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from presto.bench import servers
from presto.bench.load import LoadResult, percentile, run_wrk, wrk_available
from presto.bench.report import Row, measured_row

MENU_PATH = "/restaurant/1/item"
FLOOD_CONNECTIONS = 1024
FLOOD_WORKERS = 2
# Seconds between two probe requests (cached and uncached in turn).
PROBE_PAUSE = 0.02
# wrk: writes with a key nobody has; past the failed-authentication limit each is a 429.
REFUSED_WRITES = """wrk.method = "PATCH"
wrk.body = '{"price": 1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer presto_nobody_has_this_key"
"""
# Allergens no demo item contains, and the n-th order of them (of 8! = 40,320), in Lua.
ABSENT_ALLERGENS = (
    "celery", "crustaceans", "fish", "lupin", "molluscs", "mustard", "peanuts", "sulphites"
)  # fmt: skip
NTH_ORDER = """local names = {NAMES}
local function nth_order(n)
  local pool, order = {}, {}
  for i = 1, #names do pool[i] = names[i] end
  for i = #pool, 1, -1 do
    local f = 1
    for j = 2, i - 1 do f = f * j end
    table.insert(order, table.remove(pool, math.floor(n / f) + 1))
    n = n % f
  end
  return table.concat(order, ",")
end
""".replace("{NAMES}", "{" + ", ".join(f'"{name}"' for name in ABSENT_ALLERGENS) + "}")
ORDERS = math.factorial(len(ABSENT_ALLERGENS))
# wrk: menu reads, each with a query string never asked before (so never cached), with
# `nth_order` to hand: QUERY is a Lua expression of `id` (the wrk thread) and `count`.
UNCACHED_READS = (
    """local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
local count = 0
"""
    + NTH_ORDER
    + """
function request()
  count = count + 1
  return wrk.format("GET", "/restaurant/1/item?" .. QUERY)
end
"""
)


def nth_order(n: int) -> str:
    """The n-th order of the absent allergens, as the Lua `nth_order` makes it."""
    pool, order = list(ABSENT_ALLERGENS), []
    for size in range(len(pool), 0, -1):
        factorial = math.factorial(size - 1)
        order.append(pool.pop(n // factorial))
        n %= factorial
    return ",".join(order)


@dataclass(frozen=True)
class Flood:
    """A flood's label, the Lua expression of each new query string, and the probe's
    query string of the same kind for its `count`-th read."""

    label: str
    query: str
    probe: Callable[[int], str]
    # A flood of reads that are no new query strings: shown beside the others, no target.
    reference: bool = False

    def script(self) -> str:
        return UNCACHED_READS.replace("QUERY", self.query)


# Each flood's query strings are answered on the event loop from the cached menu: new
# categories keep no item (answered from the index, never cached); a repeated parameter is
# read by its first value, as the route reads it; orders of allergens no item has keep the
# whole menu, so each is answered with the menu's own 76 KB. The last flood, for
# reference, reads the cached menu itself: what 1,024 connections of 76 KB answers cost.
FLOODS = (
    Flood(
        "new categories",
        '"category=flood-" .. id .. "-" .. count',
        lambda count: f"category=probe-{count}",
    ),
    Flood(
        "new repeated categories",
        '"category=flood&category=flood-" .. id .. "-" .. count',
        lambda count: f"category=flood&category=probe-{count}",
    ),
    Flood(
        "new orders of absent allergens",
        '"exclude_allergens=" .. nth_order((id * 7919 + count) % ORDERS)'.replace(
            "ORDERS", str(ORDERS)
        ),
        lambda count: f"exclude_allergens={nth_order(count * 104_729 % ORDERS)}",
    ),
    Flood("the cached menu", '""', lambda count: f"category=probe-{count}", reference=True),
)


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time the processes have used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        # Fields after the command name (which may hold spaces): utime and stime are 14, 15.
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(stat[11]) + int(stat[12])) / ticks
    return total


def cost_row(
    server: servers.Server, label: str, path: str, script: str | None, duration: float
) -> Row:
    """A wrk run of `path` (with `script`) and the worker's CPU time per answer."""
    pids = server.worker_pids()
    before = cpu_seconds(pids)
    result = run_wrk(server.url(path), duration=duration, connections=64, script=script)
    cpu = cpu_seconds(pids) - before
    per_answer = cpu / result.requests * 1e6 if result.requests else None
    return measured_row(
        "k", label, result, workers=len(pids),
        notes=f"{per_answer:.0f} us CPU per answer" if per_answer else "no answers",
        details={"cpu_us_per_answer": per_answer, "non_2xx_or_errors": result.errors},
    )  # fmt: skip


@dataclass
class Probe:
    """A client apart from the load: the cached menu and an uncached read in turn, each on
    its own keep-alive connection, until stopped."""

    url_host: str
    port: int
    # The uncached read's query string for its count-th read, of the flood's kind.
    query: Callable[[int], str]
    stop: threading.Event = field(default_factory=threading.Event)
    cached: list[float] = field(default_factory=list)
    uncached: list[float] = field(default_factory=list)
    # Statuses of the uncached reads (JSON keys: text); `503-no-retry-after` apart.
    statuses: dict[str, int] = field(default_factory=dict)
    failures: int = 0

    def run(self) -> None:
        connections = [http.client.HTTPConnection(self.url_host, self.port, timeout=30)]
        connections.append(http.client.HTTPConnection(self.url_host, self.port, timeout=30))
        count = 0
        while not self.stop.is_set():
            count += 1
            self._read(connections[0], MENU_PATH, self.cached, False)
            self._read(
                connections[1],
                f"{MENU_PATH}?{self.query(count)}",
                self.uncached,
                True,
            )
            time.sleep(PROBE_PAUSE)
        for connection in connections:
            connection.close()

    def _read(
        self, connection: http.client.HTTPConnection, path: str, into: list[float], uncached: bool
    ) -> None:
        started = time.perf_counter()
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            self.failures += 1
            connection.close()
            return
        into.append(time.perf_counter() - started)
        if uncached:
            status = str(response.status)
            if status == "503" and response.getheader("Retry-After") is None:
                status = "503-no-retry-after"
            self.statuses[status] = self.statuses.get(status, 0) + 1


def flood_row(server: servers.Server, duration: float, flood: Flood) -> Row:
    """wrk's flood of uncached reads (a new query string of `flood`'s kind each) on `server`,
    the probe's view of it, and the workers' CPU time per answer."""
    # One read of the flood's kind first: what it needs (the normalized menu of every item,
    # for the allergens) is then cached, as on a server that has been up a while.
    warm = http.client.HTTPConnection(servers.HOST, server.port, timeout=30)
    warm.request("GET", f"{MENU_PATH}?{flood.probe(0)}")
    warm.getresponse().read()
    warm.close()
    probe = Probe(servers.HOST, server.port, flood.probe)
    prober = threading.Thread(target=probe.run, daemon=True)
    pids = server.worker_pids()
    before = cpu_seconds(pids)
    prober.start()
    try:
        result: LoadResult = run_wrk(
            server.url(MENU_PATH), duration=duration, connections=FLOOD_CONNECTIONS,
            script=flood.script(),
        )  # fmt: skip
    finally:
        probe.stop.set()
        prober.join(60)
    cpu = cpu_seconds(pids) - before
    cached = sorted(probe.cached)
    uncached = sorted(probe.uncached)
    details = {
        "cpu_us_per_answer": cpu / result.requests * 1e6 if result.requests else None,
        "refused_share": result.errors / result.requests if result.requests else None,
        "probe_cached_p99_ms": percentile(cached, 0.99) * 1000,
        "probe_uncached_p99_ms": percentile(uncached, 0.99) * 1000,
        "probe_reads": len(cached) + len(uncached),
        "probe_uncached_statuses": probe.statuses,
        "probe_failures": probe.failures,
        "reference": flood.reference,
    }
    return measured_row(
        "k", f"flood: {FLOOD_CONNECTIONS} connections of {flood.label}, defaults", result,
        workers=len(pids),
        notes=(
            f"{details['refused_share']:.0%} non-2xx; probe p99: cached "
            f"{details['probe_cached_p99_ms']:.1f} ms, uncached "
            f"{details['probe_uncached_p99_ms']:.0f} ms"
        ),
        details=details,
    )  # fmt: skip


def run_refusal_case(database_url: str, work_dir: Path, duration: float) -> list[Row]:
    """Case k: CPU per hit and per refusal on one worker; the flood on two."""
    if not wrk_available():
        return [Row("k", "refusals beside hits", notes="skipped: needs wrk")]
    rows = []
    server = servers.start_presto(
        database_url, workers=1, log_path=work_dir / "presto-k1.log", reset_db=True
    )
    try:
        server.wait_until_ready(MENU_PATH)
        cost_row(server, "warm-up", MENU_PATH, None, 1)
        rows.append(cost_row(server, "cached menu call (hit)", MENU_PATH, None, duration))
        path = f"{MENU_PATH}/1"
        rows.append(cost_row(server, "write refused (429)", path, REFUSED_WRITES, duration))
    finally:
        server.stop()
    server = servers.start_presto(
        database_url, workers=FLOOD_WORKERS, log_path=work_dir / "presto-k2.log",
        options=("--write-rate-limit", "120"),
    )  # fmt: skip
    try:
        server.wait_until_ready(MENU_PATH)
        for flood in FLOODS:
            rows.append(flood_row(server, duration, flood))
    finally:
        server.stop()
    hit, refusal = rows[0].details["cpu_us_per_answer"], rows[1].details["cpu_us_per_answer"]
    if hit and refusal:
        rows[1].details["cpu_vs_hit"] = refusal / hit
        rows[1].notes += f", {refusal / hit:.2f}x a hit's"
    return rows
