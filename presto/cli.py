"""The `presto` command: `presto serve` runs the server, `presto db` migrates the
database, `presto keys` manages the API keys that writes need, `presto menus publish`
renders menus changed outside presto."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeAlias

from alembic.util import CommandError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from presto.config import database_url_from_env
from presto.demo.loading import beyond_demo, load_demo
from presto.errors import NotFoundError
from presto.menus.publishing import publish_menus
from presto.services import keys
from presto.services.published import published_variants
from presto.settings_parser import (
    SettingsError,
    add_settings_options,
    database_url_field,
    env_name,
    option_help,
    positive_int,
    settings_from_args,
)
from presto.storage import migrate
from presto.storage.checks import DatabaseConfigError, check_database, require_schema
from presto.storage.engine import drop_schema, make_engine, make_sessionmaker
from presto.storage.models import ApiKey
from presto.storage.published_menus import unpublished_restaurants
from presto.storage.roles import TRANSACTION_POOLER, check_roles

log = logging.getLogger("presto.cli")

# Exit status of a configuration mistake, as argparse exits on a bad option.
USAGE_ERROR = 2


# The sub-commands of a command, as argparse adds them.
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
# What runs a sub-command: its parsed arguments in, its exit status out.
Handler = Callable[[argparse.Namespace], int]


class ResetRefusedError(SettingsError):
    """`--reset-db` without `--force` on a database holding more than the demo menus."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every `presto` sub-command."""
    parser = argparse.ArgumentParser(prog="presto", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_serve_command(commands)
    add_db_commands(commands)
    add_keys_commands(commands)
    add_menus_commands(commands)
    return parser


def add_serve_command(commands: Commands) -> None:
    """`presto serve`: one option per `Settings` field, each also a `PRESTO_*` variable."""
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server",
        description="Serve the menu API over HTTP until SIGINT or SIGTERM. Every option "
        "can also be set by the environment variable named with it; the option wins.",
    )
    add_settings_options(serve, os.environ)
    serve.add_argument(
        "--reset-db",
        action="store_true",
        help="drop all presto tables, migrate to the current schema and load the demo menus "
        "(deliberately not settable from the environment); refused, with exit status 2, on a "
        "database holding anything but the unchanged demo menus unless `--force` is given",
    )
    serve.add_argument(
        "--force",
        action="store_true",
        help="with `--reset-db`: drop the database even if it holds keys, other restaurants "
        "or changed menus (deletes all data)",
    )
    serve.set_defaults(handler=run_serve)


def add_database_url(parser: argparse.ArgumentParser) -> None:
    """The `--database-url` option, shared by every command that opens the database."""
    field = database_url_field()
    from_env = env_name(field) in os.environ
    parser.add_argument(
        "--database-url",
        default=database_url_from_env(),
        help=option_help(field, from_env, database_url_from_env()),
    )


def add_command_group(commands: Commands, name: str, *, help: str, description: str) -> Commands:
    """`presto <name> ...`: a command whose own sub-command is required."""
    group = commands.add_parser(name, help=help, description=description)
    return group.add_subparsers(dest=f"{name}_command", required=True)


def add_database_command(
    commands: Commands, name: str, handler: Handler, *, help: str, description: str
) -> argparse.ArgumentParser:
    """A sub-command that opens the database (`--database-url`) and runs `handler`."""
    command = commands.add_parser(name, help=help, description=description)
    add_database_url(command)
    command.set_defaults(handler=handler)
    return command


def add_restaurant_option(
    parser: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, help: str
) -> None:
    """`--restaurant ID`: the one restaurant a command is about."""
    parser.add_argument("--restaurant", type=positive_int, metavar="ID", help=help)


def add_db_commands(commands: Commands) -> None:
    """`presto db ...`: schema migrations."""
    db_commands = add_command_group(
        commands,
        "db",
        help="migrate the database schema",
        description="Bring a database's schema to this version of presto, or write a new "
        "migration after changing the models.",
    )
    upgrade = add_database_command(
        db_commands,
        "upgrade",
        run_db_upgrade,
        help="apply migrations",
        description="Apply every migration up to a revision, in one transaction.",
    )
    upgrade.add_argument("--revision", default="head", help="revision to end at [default: head]")
    downgrade = add_database_command(
        db_commands,
        "downgrade",
        run_db_downgrade,
        help="undo migrations",
        description="Undo migrations down to a revision; 'base' drops every presto table.",
    )
    downgrade.add_argument("--revision", required=True, help="revision to end at, or 'base'")
    add_database_command(
        db_commands,
        "current",
        run_db_current,
        help="show the database's revision",
        description="Show the revision the database is at and whether it is the newest.",
    )
    stamp = add_database_command(
        db_commands,
        "stamp",
        run_db_stamp,
        help="record a revision without migrating",
        description="Record that the database's schema is already at a revision, running "
        "no migration: for a database whose schema was made to match by hand.",
    )
    stamp.add_argument("--revision", required=True, help="revision the schema is at")
    revision = db_commands.add_parser(
        "revision",
        help="write a new migration from the models",
        description="Compare the models with the newest migration and write the difference "
        "as a new migration script into presto/storage/migrations/versions. Needs no database.",
    )
    revision.add_argument("-m", "--message", required=True, help="what the migration does")
    revision.set_defaults(handler=run_db_revision)


def add_keys_commands(commands: Commands) -> None:
    """`presto keys create|revoke|list`."""
    keys_commands = add_command_group(
        commands,
        "keys",
        help="create, revoke and list API keys",
        description="API keys authorize writes: one restaurant's key changes that "
        "restaurant's menu; an admin key changes any, and creates and deletes restaurants.",
    )
    create = add_database_command(
        keys_commands,
        "create",
        run_keys_create,
        help="make a key and print it (the only time it is shown)",
        description="Make a key and print it on standard output. Only its hash is "
        "stored: it cannot be shown again.",
    )
    scope = create.add_mutually_exclusive_group(required=True)
    add_restaurant_option(scope, "the restaurant the key may change")
    scope.add_argument("--admin", action="store_true", help="a key that may change everything")
    revoke = add_database_command(
        keys_commands,
        "revoke",
        run_keys_revoke,
        help="revoke a key",
        description="Revoke a key; it stops working at once.",
    )
    revoke.add_argument("key_id", type=positive_int, metavar="ID", help="the key's id")
    add_database_command(
        keys_commands,
        "list",
        run_keys_list,
        help="list keys",
        description="List every key: id, prefix, scope, when made and when revoked.",
    )


def add_menus_commands(commands: Commands) -> None:
    """`presto menus publish`."""
    menus_commands = add_command_group(
        commands,
        "menus",
        help="publish menus",
        description="Menus are published (rendered and stored for every worker to read) "
        "when presto changes them; publish them again after changing them with plain SQL.",
    )
    publish = add_database_command(
        menus_commands,
        "publish",
        run_menus_publish,
        help="render and store menus now",
        description="Render every restaurant's menu (or one restaurant's) and store it as "
        "the menu call answers it, each menu call variant already published included.",
    )
    add_restaurant_option(publish, "only this restaurant's menu")


def run_serve(args: argparse.Namespace) -> int:
    """`presto serve`: prepare the database, then run the server."""
    from presto.serving.server import configure_logging, run

    settings = settings_from_args(args)
    if args.force and not args.reset_db:
        raise SettingsError("--force goes only with --reset-db")
    check_host_resolves(settings.host)
    check_database(settings.database_url)
    check_roles(settings)
    configure_logging(settings)
    pooled = settings.database_pooler == TRANSACTION_POOLER
    prepare_database(settings.database_url, reset=args.reset_db, force=args.force, pooled=pooled)
    publish_unpublished(settings.database_url, pooled=pooled)
    return run(settings)


def check_host_resolves(host: str) -> None:
    """A host name that does not resolve is a configuration mistake, found before the
    database is touched or the publisher starts (an IP address always passes)."""
    try:
        socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as error:
        raise SettingsError(f"--host {host} does not resolve: {error.strerror}") from None


@contextmanager
def command_engine(url: str, *, pooled: bool = False) -> Iterator[Engine]:
    """An engine of one connection for a command, disposed when it is done; `pooled`:
    `url` is a transaction-mode pooler."""
    engine = make_engine(url, pool_size=1, transaction_pooler=pooled)
    try:
        yield engine
    finally:
        engine.dispose()


def prepare_database(url: str, *, reset: bool, force: bool = False, pooled: bool = False) -> None:
    """Migrate the database to the current schema; with `reset`, start over from the
    demo menus, refusing (`ResetRefusedError`) to drop anything else unless `force`;
    `pooled`: `url` is a transaction-mode pooler."""
    with command_engine(url, pooled=pooled) as engine:
        shown = engine.url.render_as_string(hide_password=True)
        if reset:
            held = None if force else beyond_demo(engine)
            if held is not None:
                raise ResetRefusedError(
                    f"--reset-db would drop {shown}, which holds {held}; "
                    "add --force to drop it anyway"
                )
            drop_schema(engine)
        migrate.upgrade(url)
        if reset:
            with make_sessionmaker(engine)() as session, session.begin():
                load_demo(session)
            log.info("database %s reset and demo menus loaded", shown)


def publish_unpublished(url: str, *, pooled: bool = False) -> int:
    """Publish every menu without a current published body (after a migration added the
    storage, or a restore); returns how many."""
    with command_engine(url, pooled=pooled) as engine:
        factory = make_sessionmaker(engine)
        with factory() as session:
            restaurant_ids = unpublished_restaurants(session)
        count = publish_menus(factory, restaurant_ids)
    if count:
        log.info("published %d menu%s", count, "" if count == 1 else "s")
    return count


def run_db_upgrade(args: argparse.Namespace) -> int:
    """`presto db upgrade`; at the newest revision, publishes the menus left unpublished."""
    revisions = move_revision(args, migrate.upgrade)
    if is_newest(revisions):
        publish_unpublished(args.database_url)
    print(describe_revision(revisions))
    return 0


def run_db_downgrade(args: argparse.Namespace) -> int:
    """`presto db downgrade`."""
    print(describe_revision(move_revision(args, migrate.downgrade)))
    return 0


def run_db_current(args: argparse.Namespace) -> int:
    """`presto db current`: reads only, so a database that is not there is an error."""
    check_database(args.database_url, must_exist=True)
    print(describe_revision(migrate.current(args.database_url)))
    return 0


def run_db_stamp(args: argparse.Namespace) -> int:
    """`presto db stamp`."""
    print(describe_revision(move_revision(args, migrate.stamp)))
    return 0


def move_revision(args: argparse.Namespace, move: Callable[[str, str], None]) -> tuple[str, ...]:
    """Bring the database of `--database-url` to `--revision` with `move` (upgrade,
    downgrade, stamp), each step logged; the revisions it is at then."""
    check_database(args.database_url)
    configure_command_logging()
    move(args.database_url, args.revision)
    return migrate.current(args.database_url)


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
    if is_newest(revisions):
        state = "newest"
    elif set(revisions) <= migrate.known_revisions():
        state = "not the newest"
    else:
        state = "unknown to this version of presto; a newer one migrated it"
    return f"database revision: {', '.join(revisions)} ({state})"


def is_newest(revisions: tuple[str, ...]) -> bool:
    """Whether the database's revisions are this version of presto's newest."""
    return set(revisions) == set(migrate.heads())


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
def open_session(url: str, *, read_only: bool = False) -> Iterator[Session]:
    """A session on `url` and its engine closed after. Unless `read_only`, the database
    is created and migrated if need be; a read-only command needs it there already."""
    check_database(url, must_exist=read_only)
    if read_only:
        require_schema(url)
    else:
        prepare_database(url, reset=False)
    with command_engine(url) as engine, make_sessionmaker(engine)() as session:
        yield session


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
    with open_session(args.database_url, read_only=True) as session:
        rows = keys.list_keys(session)
        print(f"{'ID':>4}  {'PREFIX':<19}  {'SCOPE':<14}  {'CREATED':<20}  REVOKED")
        for row in rows:
            revoked = f"{row.revoked_at:%Y-%m-%d %H:%M:%S}" if row.revoked_at else "-"
            print(
                f"{row.id:>4}  {row.prefix + '...':<19}  {describe_scope(row):<14}  "
                f"{row.created_at:%Y-%m-%d %H:%M:%S}  {revoked}"
            )
    return 0


def run_menus_publish(args: argparse.Namespace) -> int:
    """`presto menus publish`: the published variants of each menu, rendered again."""
    check_database(args.database_url, must_exist=True)
    require_schema(args.database_url)
    with command_engine(args.database_url) as engine:
        factory = make_sessionmaker(engine)
        with factory() as session:
            try:
                targets = published_variants(session, args.restaurant)
            except NotFoundError as exc:
                print(f"presto menus publish: {exc.detail}", file=sys.stderr)
                return 1
        # A menu too large to render (plain SQL past the expansion budget) is logged, not
        # counted.
        published = sum(
            publish_menus(factory, [restaurant_id], variants)
            for restaurant_id, variants in targets.items()
        )
    print(f"published {published} menu{'' if published == 1 else 's'}")
    return 0


def describe_scope(row: ApiKey) -> str:
    """`admin`, or `restaurant N`."""
    return "admin" if row.admin else f"restaurant {row.restaurant_id}"


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the sub-command."""
    try:
        parser = build_parser()
    except SettingsError as error:
        print(f"presto: {error}", file=sys.stderr)
        return USAGE_ERROR
    args = parser.parse_args(argv)
    quiet_alembic_set_up()
    try:
        status: int = args.handler(args)
    except (DatabaseConfigError, SettingsError) as error:
        # Configuration the operator must fix: one line, the status argparse uses too.
        print(f"presto {args.command}: {error}", file=sys.stderr)
        return USAGE_ERROR
    except (migrate.MigrationError, CommandError) as error:
        # A database or revision the operator must decide about: a message, no traceback.
        raise SystemExit(f"presto {args.command}: {error}") from None
    return status


if __name__ == "__main__":
    sys.exit(main())
