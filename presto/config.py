"""Settings of a presto process, from the command line and the environment.

Each field carries its help text in `metadata`; `presto.settings_parser` turns the fields
into `presto serve` options and `PRESTO_<FIELD>` environment variables, so a new setting is
one field here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")

DEFAULT_DATABASE_URL = "sqlite:///presto.db"
# The `presto serve --help` group of the settings against outages, overload and abuse.
PROTECTION = "outages, overload and abuse (0 turns a limit off)"
# The group of the optional connections beside the pool (doc/deploy.md).
ROLES = "database connections beside --database-url (PostgreSQL)"
# The `presto serve --help` group of the webhook settings.
WEBHOOKS = "webhooks"


def database_url_from_env() -> str:
    """`PRESTO_DATABASE_URL`, or an SQLite file in the working directory."""
    return os.environ.get("PRESTO_DATABASE_URL", DEFAULT_DATABASE_URL)


def setting(default: T, help: str, **metadata: object) -> T:
    """A `Settings` field: its default, the help text of its option and variable, and
    `minimum`, `maximum`, `above`, `choices` or `host` where the value is bounded."""
    made: T = field(default=default, metadata={"help": help, **metadata})
    return made


def protection(default: T, help: str) -> T:
    """A `Settings` field of the protections: never negative, 0 turns it off."""
    return setting(default, help, minimum=0, group=PROTECTION)


def refill_window(limit: str) -> float:
    """The window of the rate limit `--<limit>`: a minute by default."""
    return setting(60.0, f"seconds over which `--{limit}` refills", above=0, group=PROTECTION)


@dataclass(frozen=True)
class Settings:
    """Everything a worker process needs to serve requests."""

    database_url: str = setting(
        DEFAULT_DATABASE_URL,
        "SQLAlchemy URL, e.g. `postgresql+psycopg://user@host:5432/presto`",
    )
    listen_url: str = setting(
        "",
        "URL of the connection that `LISTEN`s for other hosts' menu changes: a session, "
        "straight to the primary or through a session-mode pooler (empty: `--database-url`)",
        group=ROLES,
    )
    replica_url: str = setting(
        "",
        "URL of a streaming replica for reads of published menus; the primary answers when it "
        "lags or is down (empty: none)",
        group=ROLES,
    )
    database_pooler: str = setting(
        "none",
        "what `--database-url` leads to: `none` (PostgreSQL, or a session-mode pooler) or "
        "`transaction` (a transaction-mode pooler such as PgBouncer's: no prepared statements, "
        "`statement_timeout` set in each transaction)",
        choices=("none", "transaction"),
        group=ROLES,
    )
    host: str = setting("127.0.0.1", "address to listen on (an IP address or host name)", host=True)
    port: int = setting(
        5005,
        "TCP port to listen on (0: any free port, with one worker)",
        minimum=0,
        maximum=65535,
    )
    workers: int = setting(1, "worker processes sharing the port with SO_REUSEPORT", minimum=1)
    threads: int = setting(
        4,
        "WSGI threads per worker; each worker's database pool holds as many connections",
        minimum=1,
    )
    log_level: str = setting(
        "INFO",
        "lowest level logged; INFO includes one access line per request",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
    )
    max_body_bytes: int = setting(
        1024 * 1024, "largest request body accepted; larger ones get 413", minimum=1
    )
    shutdown_timeout: float = setting(
        10.0, "seconds in-flight requests get to finish after SIGINT/SIGTERM", minimum=0
    )
    cache_bytes: int = setting(
        64 * 1024 * 1024,
        "byte budget of each worker's menu cache (least recently used out); 0: no cache",
        minimum=0,
    )
    publish_on_write: str = setting(
        "background",
        "when a write's menu is rendered and stored for every worker to read: `background` "
        "(after the commit, off the request path) or `transaction` (in the write's "
        "transaction: slower writes)",
        choices=("background", "transaction"),
    )
    log_format: str = setting(
        "text", "`text` lines, or `json`: one object per line", choices=("text", "json")
    )
    cors_origins: tuple[str, ...] = setting(
        (),
        "browser origins allowed to write (comma-separated, e.g. `https://admin.example.com`); "
        "reads are open to every origin",
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        "addresses or networks of reverse proxies whose `X-Forwarded-For` names the client, "
        "for the access log and the failed-authentication limit "
        "(comma-separated, e.g. `127.0.0.1,10.0.0.0/8`)",
        networks=True,
    )
    log_health_checks: bool = setting(False, "write access lines for `/healthz` and `/readyz` too")
    idempotency_retention: float = setting(
        86400.0,
        "seconds a write's `Idempotency-Key` and its answer are kept for retries (then purged)",
        above=0,
    )
    readiness_timeout: float = setting(
        2.0, "seconds `/readyz` waits for the database before answering 503", minimum=0
    )
    # Outages, overload and abuse (doc/reliability.md); 0 turns a limit off.
    db_connect_timeout: float = protection(
        2.0,
        "seconds one PostgreSQL connection attempt may take (libpq: whole seconds, 2 at least)",
    )
    statement_timeout: float = protection(
        5.0,
        "seconds one SQL statement may run on PostgreSQL before it is cancelled",
    )
    header_timeout: float = protection(
        10.0,
        "seconds a client has to send a request line and headers once it starts one",
    )
    body_timeout: float = protection(
        10.0,
        "seconds a client has to send a request's body once its headers are complete; "
        "past it, 408 and the connection closes",
    )
    idle_timeout: float = protection(75.0, "seconds an idle keep-alive connection stays open")
    max_connections: int = protection(
        1000,
        "open connections per worker; at it, the oldest connection awaiting a request head "
        "(else the oldest idle one) is closed to make room; a new one gets 503 only when "
        "every connection is busy with a request",
    )
    max_queue: int = protection(
        64,
        "requests waiting for a WSGI thread per worker; past it, 503 at once",
    )
    shed_loop_lag: float = protection(
        0.05,
        "seconds a worker's event loop may run behind; past it, a read that needs a WSGI "
        "thread gets 503 at once unless no other request holds one, so that cached menus "
        "stay quick under a flood of uncached reads (0: off)",
    )
    write_rate_limit: int = protection(
        120, "writes per API key per `--write-rate-window`, per worker"
    )
    write_rate_window: float = refill_window("write-rate-limit")
    auth_failure_limit: int = protection(
        10,
        "failed authentications per client address (through `--trusted-proxies`) per "
        "`--auth-failure-window`, per worker; past it the client's writes get 429",
    )
    auth_failure_window: float = refill_window("auth-failure-limit")
    preview_rate_limit: int = protection(
        60,
        "menu previews (`?at=`, rendered for each request) per client address per "
        "`--preview-rate-window`, per worker; past it 429",
    )
    preview_rate_window: float = refill_window("preview-rate-limit")
    # Webhooks (doc/webhooks.md).
    webhook_allow_private: bool = setting(
        False,
        "let webhook endpoints be http and resolve to private, loopback or link-local "
        "addresses (for tests and private networks; otherwise https to public addresses only)",
        group=WEBHOOKS,
    )
    webhook_concurrency: int = setting(
        8,
        "webhook deliveries in flight at once per worker (one at a time per endpoint)",
        minimum=1,
        group=WEBHOOKS,
    )
    webhook_retry_scale: float = setting(
        1.0,
        "factor on the retry schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h); tests shrink it",
        above=0,
        group=WEBHOOKS,
    )
