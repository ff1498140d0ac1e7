"""The `presto` command: `presto serve` runs the server, `presto db` migrates the
database, `presto keys` manages the API keys that writes need."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from alembic.util import CommandError
from sqlalchemy.orm import Session

from presto.config import Settings, database_url_from_env
from presto.demo import load_demo
from presto.errors import NotFoundError
from presto.services import keys
from presto.storage import migrate
from presto.storage.engine import drop_schema, make_engine, make_sessionmaker
from presto.storage.models import ApiKey

log = logging.getLogger("presto.cli")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `presto` sub-command."""
    parser = argparse.ArgumentParser(prog="presto", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_command(commands)
    add_db_commands(commands)
    add_keys_commands(commands)
    return parser


def add_serve_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`presto serve`: every option of the server, defaults from `Settings`."""
    defaults = Settings()
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server",
        description="Serve the menu API over HTTP until SIGINT or SIGTERM.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    serve.add_argument("--host", default=defaults.host, help="address to listen on")
    serve.add_argument(
        "--port", type=int, default=defaults.port, help="TCP port to listen on (0: any free port)"
    )
    add_capacity_options(serve, defaults)
    add_protection_options(serve, defaults)
    add_database_url(serve)
    serve.add_argument(
        "--reset-db",
        action="store_true",
        help="drop all presto tables, migrate to the current schema and load the demo menus",
    )
    serve.add_argument(
        "--log-level",
        default=defaults.log_level,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="lowest level logged; INFO includes one access line per request",
    )
    serve.set_defaults(handler=run_serve)


def add_capacity_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """How much a server takes on: processes, threads, body size, cache, shutdown grace."""
    serve.add_argument(
        "--workers",
        type=positive_int,
        default=defaults.workers,
        help="worker processes sharing the port with SO_REUSEPORT",
    )
    serve.add_argument(
        "--threads",
        type=positive_int,
        default=defaults.threads,
        help="WSGI threads per worker; each worker's database pool holds as many connections",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=defaults.max_body_bytes,
        help="largest request body accepted; larger ones get 413",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        default=defaults.shutdown_timeout,
        help="seconds in-flight requests get to finish after SIGINT/SIGTERM",
    )
    serve.add_argument(
        "--cache-bytes",
        type=non_negative_int,
        default=defaults.cache_bytes,
        help="byte budget of each worker's menu cache (least recently used out); 0: no cache",
    )


def add_protection_options(serve: argparse.ArgumentParser, defaults: Settings) -> None:
    """Timeouts and limits against outages, overload and abuse (doc/reliability.md)."""
    group = serve.add_argument_group("outages, overload and abuse (0 turns a limit off)")
    add_timeout_options(group, defaults)
    add_limit_options(group, defaults)


def add_timeout_options(group: argparse._ArgumentGroup, defaults: Settings) -> None:
    """How long the database and clients may take."""
    group.add_argument(
        "--db-connect-timeout",
        type=non_negative_float,
        default=defaults.db_connect_timeout,
        help="seconds one PostgreSQL connection attempt may take (2 at least)",
    )
    group.add_argument(
        "--statement-timeout",
        type=non_negative_float,
        default=defaults.statement_timeout,
        help="seconds one SQL statement may run on PostgreSQL",
    )
    group.add_argument(
        "--header-timeout",
        type=non_negative_float,
        default=defaults.header_timeout,
        help="seconds a client has to send a request line and headers",
    )
    group.add_argument(
        "--idle-timeout",
        type=non_negative_float,
        default=defaults.idle_timeout,
        help="seconds an idle keep-alive connection stays open",
    )


def add_limit_options(group: argparse._ArgumentGroup, defaults: Settings) -> None:
    """How much one worker takes on, and from whom."""
    group.add_argument(
        "--max-connections",
        type=non_negative_int,
        default=defaults.max_connections,
        help="open connections per worker; past it new ones get 503",
    )
    group.add_argument(
        "--max-queue",
        type=non_negative_int,
        default=defaults.max_queue,
        help="requests waiting for a WSGI thread per worker; past it, 503",
    )
    group.add_argument(
        "--write-rate-limit",
        type=non_negative_int,
        default=defaults.write_rate_limit,
        help="writes per API key per --write-rate-window, per worker",
    )
    group.add_argument(
        "--write-rate-window",
        type=positive_float,
        default=defaults.write_rate_window,
        help="seconds over which --write-rate-limit refills",
    )
    group.add_argument(
        "--auth-failure-limit",
        type=non_negative_int,
        default=defaults.auth_failure_limit,
        help="failed authentications per client address per --auth-failure-window, per worker",
    )
    group.add_argument(
        "--auth-failure-window",
        type=positive_float,
        default=defaults.auth_failure_window,
        help="seconds over which --auth-failure-limit refills",
    )


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """The `--database-url` option, shared by every command that opens the database."""
    parser.add_argument(
        "--database-url",
        default=database_url_from_env(),
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
        "(default: $PRESTO_DATABASE_URL, else an SQLite file presto.db here)",
    )


def add_db_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`presto db ...`: schema migrations."""
    db = commands.add_parser(
        "db",
        help="migrate the database schema",
        description="Bring a database's schema to this version of presto, or write a new "
        "migration after changing the models.",
    )
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser(
        "upgrade",
        help="apply migrations",
        description="Apply every migration up to a revision, in one transaction.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    upgrade.add_argument("--revision", default="head", help="revision to end at")
    downgrade = db_commands.add_parser(
        "downgrade",
        help="undo migrations",
        description="Undo migrations down to a revision; 'base' drops every presto table.",
    )
    downgrade.add_argument("--revision", required=True, help="revision to end at, or 'base'")
    current = db_commands.add_parser(
        "current",
        help="show the database's revision",
        description="Show the revision the database is at and whether it is the newest.",
    )
    stamp = db_commands.add_parser(
        "stamp",
        help="record a revision without migrating",
        description="Record that the database's schema is already at a revision, running "
        "no migration: for a database whose schema was made to match by hand.",
    )
    stamp.add_argument("--revision", required=True, help="revision the schema is at")
    for command, handler in (
        (upgrade, run_db_upgrade),
        (downgrade, run_db_downgrade),
        (current, run_db_current),
        (stamp, run_db_stamp),
    ):
        add_database_url(command)
        command.set_defaults(handler=handler)
    revision = db_commands.add_parser(
        "revision",
        help="write a new migration from the models",
        description="Compare the models with the newest migration and write the difference "
        "as a new migration script into presto/storage/migrations/versions. Needs no database.",
    )
    revision.add_argument("-m", "--message", required=True, help="what the migration does")
    revision.set_defaults(handler=run_db_revision)


def add_keys_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`presto keys create|revoke|list`."""
    keys_parser = commands.add_parser(
        "keys",
        help="create, revoke and list API keys",
        description="API keys authorize writes: one restaurant's key changes that "
        "restaurant's menu; an admin key changes any, and creates and deletes restaurants.",
    )
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)

    create = keys_commands.add_parser(
        "create",
        help="make a key and print it (the only time it is shown)",
        description="Make a key and print it on standard output. Only its hash is "
        "stored: it cannot be shown again.",
    )
    scope = create.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--restaurant", type=positive_int, metavar="ID", help="the restaurant the key may change"
    )
    scope.add_argument("--admin", action="store_true", help="a key that may change everything")
    add_database_url(create)
    create.set_defaults(handler=run_keys_create)

    revoke = keys_commands.add_parser(
        "revoke", help="revoke a key", description="Revoke a key; it stops working at once."
    )
    revoke.add_argument("key_id", type=positive_int, metavar="ID", help="the key's id")
    add_database_url(revoke)
    revoke.set_defaults(handler=run_keys_revoke)

    list_parser = keys_commands.add_parser(
        "list",
        help="list keys",
        description="List every key: id, prefix, scope, when made and when revoked.",
    )
    add_database_url(list_parser)
    list_parser.set_defaults(handler=run_keys_list)


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a number of at least 0."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not at least 0")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not above 0")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def run_serve(args: argparse.Namespace) -> int:
    """`presto serve`: prepare the database, then run the server."""
    from presto.serving.server import configure_logging, run

    if args.port == 0 and args.workers > 1:
        raise SystemExit("presto serve: --port 0 needs --workers 1 (each would get its own port)")
    settings = Settings(
        database_url=args.database_url,
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        log_level=args.log_level,
        max_body_bytes=args.max_body_bytes,
        shutdown_timeout=args.shutdown_timeout,
        cache_bytes=args.cache_bytes,
        db_connect_timeout=args.db_connect_timeout,
        statement_timeout=args.statement_timeout,
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
        max_queue=args.max_queue,
        write_rate_limit=args.write_rate_limit,
        write_rate_window=args.write_rate_window,
        auth_failure_limit=args.auth_failure_limit,
        auth_failure_window=args.auth_failure_window,
    )
    configure_logging(settings.log_level)
    prepare_database(settings.database_url, reset=args.reset_db)
    return run(settings)


def prepare_database(url: str, *, reset: bool) -> None:
    """Migrate the database to the current schema; with `reset`, start over from the
    demo menus."""
    engine = make_engine(url, pool_size=1)
    try:
        if reset:
            drop_schema(engine)
        migrate.upgrade(url)
        if reset:
            with make_sessionmaker(engine)() as session, session.begin():
                load_demo(session)
            log.info("database reset and demo menus loaded")
    finally:
        engine.dispose()


def run_db_upgrade(args: argparse.Namespace) -> int:
    """`presto db upgrade`."""
    configure_command_logging()
    migrate.upgrade(args.database_url, args.revision)
    print(describe_revision(migrate.current(args.database_url)))
    return 0


def run_db_downgrade(args: argparse.Namespace) -> int:
    """`presto db downgrade`."""
    configure_command_logging()
    migrate.downgrade(args.database_url, args.revision)
    print(describe_revision(migrate.current(args.database_url)))
    return 0


def run_db_current(args: argparse.Namespace) -> int:
    """`presto db current`."""
    print(describe_revision(migrate.current(args.database_url)))
    return 0


def run_db_stamp(args: argparse.Namespace) -> int:
    """`presto db stamp`."""
    configure_command_logging()
    migrate.stamp(args.database_url, args.revision)
    print(describe_revision(migrate.current(args.database_url)))
    return 0


def run_db_revision(args: argparse.Namespace) -> int:
    """`presto db revision`."""
    path = migrate.make_revision(args.message)
    if path is None:
        print("the models match the newest migration; no script written")
    else:
        print(f"wrote {path}; review it before committing")
    return 0


def describe_revision(revisions: tuple[str, ...]) -> str:
    """One line naming the database's revision and how it stands to the newest one."""
    if not revisions:
        return "database revision: none (no migration history)"
    if set(revisions) == set(migrate.heads()):
        state = "newest"
    elif set(revisions) <= migrate.known_revisions():
        state = "not the newest"
    else:
        state = "unknown to this version of presto; a newer one migrated it"
    return f"database revision: {', '.join(revisions)} ({state})"


def configure_command_logging() -> None:
    """Show each migration step as alembic runs it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def quiet_alembic_set_up() -> None:
    """Keep alembic's lines about setting itself up on each connection out of the log."""
    logging.getLogger("alembic.runtime.migration").addFilter(is_not_alembic_set_up)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def is_not_alembic_set_up(record: logging.LogRecord) -> bool:
    """False for alembic's "Context impl ..." and "Will assume ..." lines."""
    return not record.getMessage().startswith(("Context impl", "Will assume"))


@contextmanager
def open_session(url: str) -> Iterator[Session]:
    """A session on `url`, its tables created if missing, and its engine closed after."""
    prepare_database(url, reset=False)
    engine = make_engine(url, pool_size=1)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


def run_keys_create(args: argparse.Namespace) -> int:
    """`presto keys create`: print the new key alone on standard output."""
    with open_session(args.database_url) as session:
        try:
            new = keys.create_key(session, restaurant_id=None if args.admin else args.restaurant)
        except NotFoundError as exc:
            print(f"presto keys create: {exc.detail}", file=sys.stderr)
            return 1
        print(
            f"Key {new.row.id} ({describe_scope(new.row)}) created. "
            "It is shown only now: keep it secret.",
            file=sys.stderr,
        )
        print(new.secret)
    return 0


def run_keys_revoke(args: argparse.Namespace) -> int:
    """`presto keys revoke ID`."""
    with open_session(args.database_url) as session:
        try:
            row = keys.revoke_key(session, args.key_id)
        except NotFoundError as exc:
            print(f"presto keys revoke: {exc.detail}", file=sys.stderr)
            return 1
        print(f"Key {row.id} ({row.prefix}...) revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S%z}.")
    return 0


def run_keys_list(args: argparse.Namespace) -> int:
    """`presto keys list`: one line per key, oldest first."""
    with open_session(args.database_url) as session:
        rows = keys.list_keys(session)
        print(f"{'ID':>4}  {'PREFIX':<19}  {'SCOPE':<14}  {'CREATED':<20}  REVOKED")
        for row in rows:
            revoked = f"{row.revoked_at:%Y-%m-%d %H:%M:%S}" if row.revoked_at else "-"
            print(
                f"{row.id:>4}  {row.prefix + '...':<19}  {describe_scope(row):<14}  "
                f"{row.created_at:%Y-%m-%d %H:%M:%S}  {revoked}"
            )
    return 0


def describe_scope(row: ApiKey) -> str:
    """`admin`, or `restaurant N`."""
    return "admin" if row.admin else f"restaurant {row.restaurant_id}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the sub-command."""
    args = build_parser().parse_args(argv)
    quiet_alembic_set_up()
    try:
        status: int = args.handler(args)
    except (migrate.MigrationError, CommandError) as error:
        # A database or revision the operator must decide about: a message, no traceback.
        raise SystemExit(f"presto {args.command}: {error}") from None
    return status


if __name__ == "__main__":
    sys.exit(main())
