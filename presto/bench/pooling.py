"""A PgBouncer in transaction mode for case l (`presto.bench.cases.run_pooler_case`):
Debian's, started on a free port (as the `postgres` user when run as root); and the load
of several presto instances at once, as a load balancer in front of them spreads it."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import psycopg
import sqlalchemy as sa

from presto.bench import servers
from presto.bench.load import LoadResult

# Server connections PgBouncer may open for presto's pools and published reads.
POOL_SIZE = 8
# presto instances ("hosts") of each kind, direct and through PgBouncer.
INSTANCES = 2


def pgbouncer_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found is None and Path("/usr/sbin/pgbouncer").exists():
        found = "/usr/sbin/pgbouncer"
    return found


@contextlib.contextmanager
def pgbouncer(database_url: str, binary: str) -> Iterator[str]:
    """A transaction-mode PgBouncer in front of `database_url`'s server; the URL through it."""
    url = sa.make_url(database_url)
    directory = Path(tempfile.mkdtemp(prefix="presto-bench-pgbouncer-"))
    port = servers.free_port()
    (directory / "users.txt").write_text(f'"{url.username or "postgres"}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        f"[databases]\n* = host={url.host or '127.0.0.1'} port={url.port or 5432}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'users.txt'}\npool_mode = transaction\n"
        f"default_pool_size = {POOL_SIZE}\nmax_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    command = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        directory.chmod(0o755)
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pooled = url.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    try:
        wait_for(pooled, process)
        yield pooled
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    conninfo = sa.make_url(url).set(drivername="postgresql").render_as_string(False)
    for _ in range(100):
        if process.poll() is not None:
            raise servers.ServerError(f"pgbouncer exited with {process.returncode}")
        with contextlib.suppress(psycopg.OperationalError):
            psycopg.connect(conninfo, prepare_threshold=None).close()
            return
        time.sleep(0.1)
    raise servers.ServerError("pgbouncer does not answer")


def unavailable(database_url: str) -> str | None:
    """Why case l cannot run here, or None."""
    if sa.make_url(database_url).get_backend_name() != "postgresql":
        return "needs PostgreSQL (--database-url)"
    if pgbouncer_binary() is None:
        return "PgBouncer is not installed"
    return None


def load_instances(
    instances: Sequence[servers.Server], load: Callable[[servers.Server], LoadResult]
) -> LoadResult:
    """One measured run of `load` on every instance at once; the rates add up, the
    latency percentiles are the slowest instance's."""
    with ThreadPoolExecutor(len(instances)) as pool:
        results = list(pool.map(load, instances))
    return replace(
        results[0],
        requests=sum(result.requests for result in results),
        seconds=max(result.seconds for result in results),
        requests_per_second=sum(result.requests_per_second for result in results),
        p50_ms=max(result.p50_ms for result in results),
        p99_ms=max(result.p99_ms for result in results),
        errors=sum(result.errors for result in results),
    )
