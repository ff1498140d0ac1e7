"""The `presto` command line."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from presto.cli import build_parser, main, prepare_database
from presto.storage.engine import make_engine


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


def test_port_zero_needs_one_worker(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "0", "--workers", "2"]) == 2
    assert capsys.readouterr().err == (
        "presto serve: --port 0 needs --workers 1 (each would get its own port)\n"
    )


def test_prepare_database_resets_to_the_demo(db_url: str) -> None:
    prepare_database(db_url, reset=True)
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM restaurant WHERE id = 1"))
        prepare_database(db_url, reset=False)  # keeps what is there
        with engine.connect() as connection:
            assert connection.scalar(sa.text("SELECT count(*) FROM restaurant")) == 2
        prepare_database(db_url, reset=True)
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
