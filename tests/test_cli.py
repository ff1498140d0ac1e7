"""The `presto` command line."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from presto.cli import ResetRefusedError, build_parser, main, prepare_database
from presto.storage.engine import make_engine
from tests.helpers.data import snapshot
from tests.test_configuration import presto


def test_serve_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in [
        "--host",
        "--port",
        "--workers",
        "--threads",
        "--database-url",
        "--reset-db",
        "--log-level",
        "--max-body-bytes",
        "--shutdown-timeout",
        "--cache-bytes",
        "PRESTO_DATABASE_URL",
    ]:
        assert option in text


def test_serve_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRESTO_DATABASE_URL", raising=False)
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.workers, args.threads) == ("127.0.0.1", 5005, 1, 4)
    assert args.database_url == "sqlite:///presto.db"
    assert args.reset_db is False
    assert args.cache_bytes == 64 * 1024 * 1024


def test_serve_cache_bytes_may_be_zero_never_negative(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["serve", "--cache-bytes", "0"]).cache_bytes == 0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--cache-bytes", "-1"])
    assert "-1 is negative" in capsys.readouterr().err


def test_database_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRESTO_DATABASE_URL", "postgresql+psycopg://db.example/menu")
    args = build_parser().parse_args(["serve"])
    assert args.database_url == "postgresql+psycopg://db.example/menu"


@pytest.mark.parametrize("argv", [["serve", "--workers", "0"], ["serve", "--threads", "-1"]])
def test_counts_must_be_positive(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "is not at least 1" in capsys.readouterr().err


def test_prepare_database_resets_to_the_demo(db_url: str) -> None:
    prepare_database(db_url, reset=True)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM restaurant WHERE id = 1"))
        prepare_database(db_url, reset=False)  # keeps what is there
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM restaurant")) == 2
        prepare_database(db_url, reset=True, force=True)
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM restaurant")) == 3
            assert connection.scalar(sa.text("SELECT min(id) FROM restaurant")) == 1
    finally:
        engine.dispose()


def test_db_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["db", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in ["upgrade", "downgrade", "current", "stamp", "revision"]:
        assert command in text


@pytest.mark.parametrize("command", ["downgrade", "stamp"])
def test_db_commands_that_move_the_revision_need_one(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["db", command])
    assert exit_info.value.code == 2
    assert "--revision" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--help"], "`presto serve` runs the server"),
        (["serve", "--help"], "--cache-bytes"),
        (["db", "--help"], "upgrade"),
    ],
)
def test_help_is_markdown_not_restructured_text(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    text = capsys.readouterr().out
    assert "``" not in text
    assert expected in text


def shown(db_url: str) -> str:
    """The database as presto's messages name it: the URL without its password."""
    return sa.make_url(db_url).render_as_string(hide_password=True)


def test_reset_names_the_database_and_may_repeat_on_the_demo(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="presto.cli"):
        prepare_database(db_url, reset=True)  # no tables yet
        prepare_database(db_url, reset=True)  # the demo as loaded: nothing to lose
    lines = [record.getMessage() for record in caplog.records if record.name == "presto.cli"]
    assert lines == [f"database {shown(db_url)} reset and demo menus loaded"] * 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "held"),
    [
        (
            "INSERT INTO api_key (prefix, key_hash, admin, created_at) "
            "VALUES ('pk_x', 'h', true, CURRENT_TIMESTAMP)",
            "1 API key",
        ),
        (
            "INSERT INTO restaurant (name, currency) VALUES ('Mine', 'EUR')",
            "4 restaurants, not only the demo's",
        ),
        (
            "UPDATE item SET price = price + 1 WHERE id = 1",
            "demo menus changed since they were loaded",
        ),
        (
            "DELETE FROM item_modifier WHERE item_id = 1",
            "demo menus changed since they were loaded",
        ),
        ("UPDATE restaurant SET name = 'Mine' WHERE id = 3", "3 restaurants, not only the demo's"),
    ],
)
def test_reset_refuses_to_drop_more_than_the_demo(
    db_url: str, tmp_path: Path, change: str, held: str
) -> None:
    prepare_database(db_url, reset=True)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(change))
        before = snapshot(engine)
        with pytest.raises(ResetRefusedError):
            prepare_database(db_url, reset=True)
        done = presto("serve", "--port", "0", "--reset-db", "--database-url", db_url, cwd=tmp_path)
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == (
            f"presto serve: --reset-db would drop {shown(db_url)}, which holds {held}; "
            "add --force to drop it anyway\n"
        )
        assert snapshot(engine) == before
        prepare_database(db_url, reset=True, force=True)
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM restaurant")) == 3
            assert connection.scalar(sa.text("SELECT count(*) FROM api_key")) == 0
    finally:
        engine.dispose()


def test_force_goes_only_with_reset(tmp_path: Path) -> None:
    done = presto("serve", "--force", cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "presto serve: --force goes only with --reset-db\n",
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        ("--port", "70644", "70644 is above 65535"),
        ("--port", "65536", "65536 is above 65535"),
        ("--host", "999.1.1.1", "'999.1.1.1' is not an IP address or a host name"),
        ("--host", "bad host", "'bad host' is not an IP address or a host name"),
        ("--host", "x-.example", "'x-.example' is not an IP address or a host name"),
    ],
)
def test_port_and_host_are_checked_like_every_setting(
    tmp_path: Path, option: str, value: str, error: str
) -> None:
    done = presto("serve", option, value, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == f"presto serve: error: argument {option}: {error}"
    assert "publisher started" not in done.stderr
    assert list(tmp_path.iterdir()) == []
    variable = presto("serve", env={f"PRESTO_{option[2:].upper()}": value}, cwd=tmp_path)
    assert variable.returncode == 2
    assert variable.stderr == f"presto: PRESTO_{option[2:].upper()}={value!r}: {error}\n"


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "menu-1.example.com", "db."]
)
def test_hosts_that_are_addresses_or_names_pass(host: str) -> None:
    assert build_parser().parse_args(["serve", "--host", host]).host == host
    assert build_parser().parse_args(["serve", "--port", "65535"]).port == 65535


def test_a_host_name_that_does_not_resolve_is_one_line(tmp_path: Path) -> None:
    done = presto("serve", "--host", "no-such-host.invalid", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("presto serve: --host no-such-host.invalid does not resolve: ")
    assert done.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []
