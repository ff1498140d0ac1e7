"""Settings of a presto process, from the command line and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///presto.db"


def database_url_from_env() -> str:
    """`PRESTO_DATABASE_URL`, or an SQLite file in the working directory."""
    return os.environ.get("PRESTO_DATABASE_URL", DEFAULT_DATABASE_URL)


@dataclass(frozen=True)
class Settings:
    """Everything a worker process needs to serve requests."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 5005
    # Processes sharing the port through SO_REUSEPORT.
    workers: int = 1
    # WSGI executor threads per process; the connection pool gets as many connections.
    threads: int = 4
    log_level: str = "INFO"
    # Requests with a larger body get 413 before the WSGI app sees them.
    max_body_bytes: int = 1024 * 1024
    # Seconds in-flight requests get to finish after SIGINT/SIGTERM.
    shutdown_timeout: float = 10.0
    # Byte budget of each worker's menu cache; 0 turns the cache off.
    cache_bytes: int = 64 * 1024 * 1024
    # Outages, overload and abuse (doc/reliability.md); 0 turns a limit off.
    # Seconds one attempt to connect to PostgreSQL may take (libpq: whole seconds, 2 at least).
    db_connect_timeout: float = 2.0
    # Seconds one SQL statement may run on PostgreSQL before it is cancelled.
    statement_timeout: float = 5.0
    # Seconds a client has to send a request line and headers once it starts one.
    header_timeout: float = 10.0
    # Seconds an idle keep-alive connection stays open.
    idle_timeout: float = 75.0
    # Open connections per worker; past it a new one gets 503 and is closed.
    max_connections: int = 1000
    # Requests waiting for a WSGI thread per worker; past it, 503 at once.
    max_queue: int = 64
    # Writes per API key, and failed authentications per client address, per window.
    write_rate_limit: int = 120
    write_rate_window: float = 60.0
    auth_failure_limit: int = 10
    auth_failure_window: float = 60.0
