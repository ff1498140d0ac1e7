"""The ``presto`` command: ``presto serve`` runs the server."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from presto.config import Settings, database_url_from_env
from presto.db import create_schema, drop_schema, make_engine, make_sessionmaker
from presto.demo import load_demo

log = logging.getLogger("presto.cli")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``presto`` sub-command."""
    parser = argparse.ArgumentParser(prog="presto", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
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
        "--database-url",
        default=database_url_from_env(),
        help="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db "
        "(default: $PRESTO_DATABASE_URL, else an SQLite file presto.db here)",
    )
    serve.add_argument(
        "--reset-db",
        action="store_true",
        help="drop all presto tables, create them again and load the demo menus",
    )
    serve.add_argument(
        "--log-level",
        default=defaults.log_level,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="lowest level logged; INFO includes one access line per request",
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
    serve.set_defaults(handler=run_serve)
    return parser


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def run_serve(args: argparse.Namespace) -> int:
    """``presto serve``: prepare the database, then run the server."""
    from presto.server import configure_logging, run

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
    )
    configure_logging(settings.log_level)
    prepare_database(settings.database_url, reset=args.reset_db)
    return run(settings)


def prepare_database(url: str, *, reset: bool) -> None:
    """Create missing tables; with ``reset``, start over from the demo menus."""
    engine = make_engine(url, pool_size=1)
    try:
        if reset:
            drop_schema(engine)
        create_schema(engine)
        if reset:
            with make_sessionmaker(engine)() as session, session.begin():
                load_demo(session)
            log.info("database reset and demo menus loaded")
    finally:
        engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the sub-command."""
    args = build_parser().parse_args(argv)
    status: int = args.handler(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
