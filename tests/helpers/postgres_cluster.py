"""PgBouncer and PostgreSQL servers of a test's own, on free 127.0.0.1 ports.

A tool that is not installed skips the test, except in CI (`CI=true`), where it fails:
`.ci/run` installs PgBouncer and sets up replication on the machine's PostgreSQL.
Servers refuse to run as root, so as root they run as the `postgres` user, and their
directories belong to it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests.helpers.ports import released_port
from tests.helpers.waiting import wait_until


def server_binaries(port: int | None = None) -> Path:
    """Debian's PostgreSQL server programs: of the version of the server on `port` (a
    standby must run the primary's), else of the newest version installed."""
    if port is not None:
        conninfo = f"host=127.0.0.1 port={port} dbname=postgres user=postgres"
        with psycopg.connect(conninfo) as connection:
            row = connection.execute("SHOW server_version_num").fetchone()
        assert row is not None
        return Path(f"/usr/lib/postgresql/{int(row[0]) // 10000}/bin")
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


SERVER_USER = "postgres"


def require_tool(name: str, path: str | Path | None) -> str:
    """The tool's path; if it is missing, skip the test, or fail it in CI."""
    if path is not None and Path(path).exists():
        return str(path)
    message = f"{name} is not installed"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message}, and CI must run this test")
    pytest.skip(message)


def as_server_user(command: list[str]) -> list[str]:
    """`command` run as the `postgres` user when this process is root."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", SERVER_USER, "--", *command]


def server_directory(prefix: str) -> Path:
    """A new directory the server user owns (mode 0700, as PostgreSQL wants)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(path, user.pw_uid, user.pw_gid)
    path.chmod(0o700)
    return path


def with_port(url: str, host: str, port: int, database: str | None = None) -> str:
    """`url` pointed at another server (and database)."""
    parsed = sa.make_url(url).set(host=host, port=port)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


@dataclass
class PgBouncer:
    """A PgBouncer in front of one PostgreSQL server."""

    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    def admin(self, command: str) -> list[tuple[object, ...]]:
        """A `SHOW ...` of PgBouncer's console."""
        conninfo = f"host=127.0.0.1 port={self.port} dbname=pgbouncer user=postgres"
        connection = psycopg.connect(conninfo, autocommit=True, prepare_threshold=None)
        with connection, connection.cursor() as cursor:
            cursor.execute(command.encode(), prepare=False)
            return list(cursor.fetchall())


@contextlib.contextmanager
def pgbouncer(
    target_port: int, *, mode: str = "transaction", pool_size: int = 4
) -> Iterator[PgBouncer]:
    """PgBouncer on a free port in `mode`, every database on 127.0.0.1:`target_port`, at
    most `pool_size` server connections per database."""
    binary = require_tool("pgbouncer", shutil.which("pgbouncer") or "/usr/sbin/pgbouncer")
    directory = server_directory("presto-pgbouncer-")
    port = released_port()
    (directory / "users.txt").write_text('"postgres" ""\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={target_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {directory / 'users.txt'}\n"
        f"pool_mode = {mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
        "admin_users = postgres\nignore_startup_parameters = extra_float_digits\n"
    )
    if os.geteuid() == 0:
        for path in directory.iterdir():
            shutil.chown(path, SERVER_USER, SERVER_USER)
    command = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", SERVER_USER]
    log = (directory / "log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield PgBouncer(port, process, directory)
    finally:
        process.terminate()
        process.wait(10)
        log.close()
        shutil.rmtree(directory, ignore_errors=True)


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 15) -> None:

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"server on port {port} exited with {process.returncode}")
        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={port} dbname=postgres user=postgres connect_timeout=2"
            ):
                return True
        except psycopg.OperationalError:
            return False

    wait_until(answers, timeout, f"nothing answers on port {port}", interval=0.1)


@dataclass
class Postgres:
    """A PostgreSQL server of the test's own: a data directory and a port."""

    directory: Path
    port: int
    binaries: Path

    def pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        pg_ctl = require_tool("pg_ctl", self.binaries / "pg_ctl")
        return subprocess.run(
            as_server_user([pg_ctl, "-D", str(self.directory), "-w", "-t", "30", *args]),
            check=check,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
        log = str(self.directory / "server.log")
        self.pg_ctl("start", "-o", options, "-l", log)

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("stop", "-m", mode, check=False)

    def execute(self, sql: str, database: str = "postgres") -> object:
        conninfo = f"host=127.0.0.1 port={self.port} dbname={database} user=postgres"
        with psycopg.connect(conninfo, autocommit=True) as connection:
            cursor = connection.execute(sql.encode())
            row = cursor.fetchone() if cursor.description else None
            return None if row is None else row[0]


def write_server_files(directory: Path) -> None:
    """The configuration Debian keeps in /etc: trust on 127.0.0.1, replication too."""
    (directory / "postgresql.conf").write_text("hot_standby = on\n")
    (directory / "pg_hba.conf").write_text(
        "host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n"
    )
    if os.geteuid() == 0:
        for name in ("postgresql.conf", "pg_hba.conf"):
            shutil.chown(directory / name, SERVER_USER, SERVER_USER)


@contextlib.contextmanager
def standby_of(primary_port: int) -> Iterator[Postgres]:
    """A streaming replica of the server on `primary_port` (`pg_basebackup -R`), started
    on a free port, stopped and removed afterwards."""
    binaries = server_binaries(primary_port)
    basebackup = require_tool("pg_basebackup", binaries / "pg_basebackup")
    directory = server_directory("presto-standby-")
    server = Postgres(directory, released_port(), binaries)
    try:
        command = [basebackup, "-h", "127.0.0.1", "-p", str(primary_port), "-U", "postgres"]
        command += ["-D", str(directory), "-R", "-X", "stream", "-c", "fast"]
        subprocess.run(as_server_user(command), check=True, capture_output=True)
        write_server_files(directory)
        server.start()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def new_primary() -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster (`initdb`) on a free port, for tests that stop it."""
    binaries = server_binaries()
    initdb = require_tool("initdb", binaries / "initdb")
    directory = server_directory("presto-primary-")
    server = Postgres(directory, released_port(), binaries)
    try:
        command = [initdb, "-D", str(directory), "-U", "postgres", "-A", "trust", "--no-sync"]
        subprocess.run(as_server_user(command), check=True, capture_output=True)
        write_server_files(directory)
        server.start()
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)
