"""Load generators: wrk when it is installed, else a small aiohttp client.

Both keep `connections` keep-alive connections busy for `duration` seconds and report
requests per second, the 50th and 99th latency percentiles and the errors (failed
connections and non-2xx/3xx answers). The aiohttp client runs in one Python process, so
on a small machine it saturates before a fast server does: its numbers compare servers
with each other only roughly, and are never comparable with wrk's.
"""

from __future__ import annotations

import asyncio
import random
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

import aiohttp
import uvloop

# wrk threads; each drives connections / threads connections. Two cores here.
WRK_THREADS = 2


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    generator: str
    requests: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


@dataclass(frozen=True)
class Spread:
    """Requests spread uniformly at random over restaurants `first`..`last`'s menu calls,
    with extra request headers (e.g. `Accept-Encoding: gzip`)."""

    first: int
    last: int
    headers: dict[str, str] = field(default_factory=dict)
    seed: int = 1

    def path(self, rng: random.Random) -> str:
        """One menu call path, at random."""
        return f"/restaurant/{rng.randint(self.first, self.last)}/item"

    def wrk_script(self) -> str:
        """The same spread as a wrk Lua script; each wrk thread seeds its own generator."""
        headers = "".join(
            f'wrk.headers["{name}"] = "{value}"\n' for name, value in self.headers.items()
        )
        return (
            headers
            + "local threads = 0\n"
            + 'function setup(thread) threads = threads + 1; thread:set("id", threads) end\n'
            + f"function init(args) math.randomseed({self.seed} + id) end\n"
            + "function request()\n"
            + f"  local restaurant = math.random({self.first}, {self.last})\n"
            + '  return wrk.format("GET", "/restaurant/" .. restaurant .. "/item")\n'
            + "end\n"
        )


def wrk_available() -> bool:
    """True if the `wrk` command is on PATH."""
    return shutil.which("wrk") is not None


def run_load(
    url: str,
    *,
    duration: float,
    connections: int,
    generator: str = "auto",
    spread: Spread | None = None,
) -> LoadResult:
    """Drive `url` with `generator` ("wrk", "aiohttp", or "auto": wrk if installed); with
    `spread`, `url` is the server's root and the paths are drawn from it."""
    if generator == "auto":
        generator = "wrk" if wrk_available() else "aiohttp"
    if generator == "wrk":
        return run_wrk(url, duration=duration, connections=connections, spread=spread)
    return uvloop.run(run_aiohttp(url, duration=duration, connections=connections, spread=spread))


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int,
    spread: Spread | None = None,
    script: str | None = None,
) -> LoadResult:
    """One `wrk --latency` run, its text output parsed; `script` is a wrk Lua script (or
    the one `spread` makes)."""
    threads = max(1, min(WRK_THREADS, connections))
    seconds = max(1, round(duration))
    command = ["wrk", "--latency", "-t", str(threads), "-c", str(connections)]
    command += ["-d", f"{seconds}s", "--timeout", "10s"]
    if spread is not None:
        script = spread.wrk_script()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="presto-bench-") as lua:
        if script is not None:
            lua.write(script)
            lua.flush()
            command += ["-s", lua.name]
        completed = subprocess.run(
            [*command, url], capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr.strip()}")
    return parse_wrk(completed.stdout)


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_WRK_TOTAL = re.compile(r"(\d+) requests in ([\d.]+)(us|ms|s|m),")
_WRK_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_WRK_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"
)
_WRK_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def _wrk_percentile(output: str, percent: int) -> float:
    match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if match is None:
        raise ValueError(f"no {percent}% latency in wrk output:\n{output}")
    return float(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_wrk(output: str) -> LoadResult:
    """Read requests, rate, p50, p99 and errors from `wrk --latency` output."""
    total = _WRK_TOTAL.search(output)
    rate = _WRK_RATE.search(output)
    if total is None or rate is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    errors = 0
    socket_errors = _WRK_SOCKET_ERRORS.search(output)
    if socket_errors is not None:
        errors += sum(int(count) for count in socket_errors.groups())
    non_2xx = _WRK_NON_2XX.search(output)
    if non_2xx is not None:
        errors += int(non_2xx.group(1))
    return LoadResult(
        generator="wrk",
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNIT_MS[total.group(3)] / 1000,
        requests_per_second=float(rate.group(1)),
        p50_ms=_wrk_percentile(output, 50),
        p99_ms=_wrk_percentile(output, 99),
        errors=errors,
    )


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values)) - 1))
    return sorted_values[rank]


async def run_aiohttp(
    url: str, *, duration: float, connections: int, spread: Spread | None = None
) -> LoadResult:
    """`connections` client tasks GET `url` (or paths of `spread` below it) back to back
    for `duration` seconds."""
    latencies: list[float] = []
    errors = 0
    rng = random.Random(spread.seed if spread else 1)
    headers = spread.headers if spread else {}

    async def client(session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal errors
        while time.monotonic() < deadline:
            target = url.rstrip("/") + spread.path(rng) if spread else url
            started = time.perf_counter()
            try:
                async with session.get(target, headers=headers) as response:
                    await response.read()
                    ok = response.status < 400
            except (TimeoutError, aiohttp.ClientError, OSError):
                ok = False
            if ok:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1

    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        deadline = started + duration
        await asyncio.gather(*(client(session, deadline) for _ in range(connections)))
        elapsed = time.monotonic() - started
    latencies.sort()
    requests = len(latencies) + errors
    return LoadResult(
        generator="aiohttp",
        requests=requests,
        seconds=elapsed,
        requests_per_second=requests / elapsed if elapsed else 0.0,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        errors=errors,
    )
