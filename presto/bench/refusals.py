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
during the flood. Two floods: new categories, which the event loop answers from the cached
menu (`presto.serving.menu_filters`), and new categories with the parameter repeated,
which the loop leaves to Flask (as it does any query it does not read exactly as the
route would), so that each is a render and most are shed with 503.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
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
# wrk: menu reads, each with a query string never asked before (so never cached), after
# `/restaurant/1/item?` + the flood's prefix.
UNCACHED_READS = """local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
local count = 0
function request()
  count = count + 1
  return wrk.format("GET", "/restaurant/1/item?PREFIXcategory=flood-" .. id .. "-" .. count)
end
"""
# The floods: a label and the query string before the new category. The loop answers a
# category from the cached menu; a repeated parameter goes to Flask, which renders it.
FLOODS = (("new categories", ""), ("new repeated categories", "category=flood&"))


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
    # Before the uncached read's new category, as the flood's.
    prefix: str = ""
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
                f"{MENU_PATH}?{self.prefix}category=probe-{count}",
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


def flood_row(server: servers.Server, duration: float, label: str, prefix: str) -> Row:
    """wrk's flood of uncached reads (`prefix` before each new category) on `server`,
    the probe's view of it, and the workers' CPU time per answer."""
    probe = Probe(servers.HOST, server.port, prefix)
    prober = threading.Thread(target=probe.run, daemon=True)
    pids = server.worker_pids()
    before = cpu_seconds(pids)
    prober.start()
    try:
        result: LoadResult = run_wrk(
            server.url(MENU_PATH), duration=duration, connections=FLOOD_CONNECTIONS,
            script=UNCACHED_READS.replace("PREFIX", prefix),
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
    }
    return measured_row(
        "k", f"flood: {FLOOD_CONNECTIONS} connections of {label}, defaults", result,
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
        for label, prefix in FLOODS:
            rows.append(flood_row(server, duration, label, prefix))
    finally:
        server.stop()
    hit, refusal = rows[0].details["cpu_us_per_answer"], rows[1].details["cpu_us_per_answer"]
    if hit and refusal:
        rows[1].details["cpu_vs_hit"] = refusal / hit
        rows[1].notes += f", {refusal / hit:.2f}x a hit's"
    return rows
