"""Configuration: `PRESTO_*` variables and options through one parser, and mistakes that
end in one line and exit status 2, never a traceback."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from presto.cli import build_parser, main
from presto.config import Settings
from presto.settings_parser import (
    SettingsError,
    env_name,
    settings_from_args,
    settings_from_environ,
)


def presto(
    *args: str, env: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`python -m presto ARGS` with `env` added to a clean `PRESTO_*`-free environment."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("PRESTO_")}
    return subprocess.run(
        [sys.executable, "-m", "presto", *args],
        env={**base, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def serve_settings(argv: list[str], environ: dict[str, str]) -> Settings:
    """What `presto serve ARGV` would run with under `environ`."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [name for name in os.environ if name.startswith("PRESTO_")]:
            patch.delenv(name)
        for name, value in environ.items():
            patch.setenv(name, value)
        return settings_from_args(build_parser().parse_args(["serve", *argv]))


def test_every_setting_comes_from_its_variable() -> None:
    environ = {
        "PRESTO_DATABASE_URL": "sqlite:////srv/menus.db",
        "PRESTO_LISTEN_URL": "postgresql+psycopg://presto@db1/presto",
        "PRESTO_REPLICA_URL": "postgresql+psycopg://presto@db2/presto",
        "PRESTO_DATABASE_POOLER": "Transaction",
        "PRESTO_HOST": "0.0.0.0",
        "PRESTO_PORT": "8080",
        "PRESTO_WORKERS": "3",
        "PRESTO_THREADS": "8",
        "PRESTO_LOG_LEVEL": "warning",
        "PRESTO_MAX_BODY_BYTES": "2048",
        "PRESTO_SHUTDOWN_TIMEOUT": "2.5",
        "PRESTO_CACHE_BYTES": "0",
        "PRESTO_LOG_FORMAT": "JSON",
        "PRESTO_PUBLISH_ON_WRITE": "transaction",
        "PRESTO_CORS_ORIGINS": "https://a.example, https://b.example",
        "PRESTO_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8",
        "PRESTO_LOG_HEALTH_CHECKS": "yes",
        "PRESTO_IDEMPOTENCY_RETENTION": "3600",
        "PRESTO_READINESS_TIMEOUT": "0.5",
        "PRESTO_DB_CONNECT_TIMEOUT": "3",
        "PRESTO_STATEMENT_TIMEOUT": "7.5",
        "PRESTO_HEADER_TIMEOUT": "4",
        "PRESTO_BODY_TIMEOUT": "6",
        "PRESTO_IDLE_TIMEOUT": "30",
        "PRESTO_MAX_CONNECTIONS": "500",
        "PRESTO_MAX_QUEUE": "0",
        "PRESTO_SHED_LOOP_LAG": "0.2",
        "PRESTO_WRITE_RATE_LIMIT": "60",
        "PRESTO_WRITE_RATE_WINDOW": "30",
        "PRESTO_AUTH_FAILURE_LIMIT": "5",
        "PRESTO_AUTH_FAILURE_WINDOW": "120",
        "PRESTO_PREVIEW_RATE_LIMIT": "20",
        "PRESTO_PREVIEW_RATE_WINDOW": "10",
        "PRESTO_WEBHOOK_ALLOW_PRIVATE": "on",
        "PRESTO_WEBHOOK_CONCURRENCY": "3",
        "PRESTO_WEBHOOK_RETRY_SCALE": "0.01",
    }
    # A new field without a variable in this test fails here.
    assert set(environ) == {env_name(field) for field in dataclasses.fields(Settings)}

    expected = Settings(
        database_url="sqlite:////srv/menus.db",
        listen_url="postgresql+psycopg://presto@db1/presto",
        replica_url="postgresql+psycopg://presto@db2/presto",
        database_pooler="transaction",
        host="0.0.0.0",
        port=8080,
        workers=3,
        threads=8,
        log_level="WARNING",
        max_body_bytes=2048,
        shutdown_timeout=2.5,
        cache_bytes=0,
        log_format="json",
        publish_on_write="transaction",
        cors_origins=("https://a.example", "https://b.example"),
        trusted_proxies=("127.0.0.1", "10.0.0.0/8"),
        log_health_checks=True,
        idempotency_retention=3600.0,
        readiness_timeout=0.5,
        db_connect_timeout=3.0,
        statement_timeout=7.5,
        header_timeout=4.0,
        body_timeout=6.0,
        idle_timeout=30.0,
        max_connections=500,
        max_queue=0,
        shed_loop_lag=0.2,
        write_rate_limit=60,
        write_rate_window=30.0,
        auth_failure_limit=5,
        auth_failure_window=120.0,
        preview_rate_limit=20,
        preview_rate_window=10.0,
        webhook_allow_private=True,
        webhook_concurrency=3,
        webhook_retry_scale=0.01,
    )
    assert serve_settings([], environ) == expected
    assert settings_from_environ(environ) == expected


def test_the_option_wins_over_the_variable() -> None:
    environ = {"PRESTO_PORT": "8080", "PRESTO_LOG_HEALTH_CHECKS": "on", "PRESTO_WORKERS": "4"}
    settings = serve_settings(["--port", "9090", "--log-health-checks", "false"], environ)
    assert (settings.port, settings.log_health_checks, settings.workers) == (9090, False, 4)
    assert serve_settings(["--log-health-checks"], {}).log_health_checks is True


def test_without_variables_the_defaults_are_the_settings_defaults() -> None:
    assert serve_settings([], {}) == Settings()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PRESTO_PORT", "eighty", "PRESTO_PORT='eighty': 'eighty' is not an integer"),
        ("PRESTO_WORKERS", "0", "PRESTO_WORKERS='0': 0 is not at least 1"),
        ("PRESTO_LOG_FORMAT", "xml", "PRESTO_LOG_FORMAT='xml': 'xml' is not one of text, json"),
        ("PRESTO_LOG_HEALTH_CHECKS", "maybe", "PRESTO_LOG_HEALTH_CHECKS='maybe': 'maybe' is not"),
        ("PRESTO_TRUSTED_PROXIES", "10.0.0.300", "PRESTO_TRUSTED_PROXIES='10.0.0.300': "),
    ],
)
def test_a_bad_variable_is_named(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        settings_from_environ({name: value})
    assert str(raised.value).startswith(message)


def test_serve_help_shows_each_default_once_with_its_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PRESTO_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(Settings):
        assert text.count(f"[{env_name(field)}; default:") == 1, field.name
    assert text.count("default") == len(dataclasses.fields(Settings))
    assert "[PRESTO_PORT; default: 5005]" in text
    assert "[PRESTO_CACHE_BYTES; default: 67108864]" in text


def test_help_shows_the_variables_value_without_its_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRESTO_DATABASE_URL", "postgresql+psycopg://presto:s3cret@db/menus")
    monkeypatch.setenv("PRESTO_WORKERS", "3")
    # serve: every default but the two the variables set; db upgrade: --revision's.
    defaults_shown = {"serve": len(dataclasses.fields(Settings)) - 2, "db": 1, "keys": 0}
    for command in (["serve"], ["db", "upgrade"], ["keys", "list"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "[from PRESTO_DATABASE_URL: postgresql+psycopg://presto:***@db/menus]" in text
        assert "s3cret" not in text
        assert text.count("default") == defaults_shown[command[0]], command


def test_wsgi_module_reads_the_same_variables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'wsgi.db'}"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from presto.wsgi import app; from presto.api.session import app_database; "
            "print(app_database(app).engine.url, app.config['MAX_CONTENT_LENGTH'], "
            "app.config['PRESTO_READINESS_TIMEOUT'])",
        ],
        env={
            **os.environ,
            "PRESTO_DATABASE_URL": url,
            "PRESTO_MAX_BODY_BYTES": "4096",
            "PRESTO_READINESS_TIMEOUT": "0.25",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.stdout.split() == [url, "4096", "0.25"], done.stderr


CONFIGURATION_MISTAKES = [
    (
        ["--database-url", "postgresql://nobody@127.0.0.1:1/x"],
        "presto serve: cannot connect to postgresql://nobody@127.0.0.1:1/x: connection failed: "
        'connection to server at "127.0.0.1", port 1 failed: Connection refused',
    ),
    (
        ["--database-url", "mysql://presto@127.0.0.1/menus"],
        "presto serve: unsupported database 'mysql' in mysql://presto@127.0.0.1/menus: presto "
        "runs on SQLite (sqlite:///FILE) and PostgreSQL (postgresql+psycopg://...)",
    ),
    (
        ["--database-url", "postgresql+asyncpg://presto@127.0.0.1/menus"],
        "presto serve: unknown or missing database driver 'postgresql+asyncpg'; use sqlite:// "
        "or postgresql+psycopg://",
    ),
    (
        ["--database-url", "menus.db"],
        "presto serve: 'menus.db' is not a database URL; expected e.g. sqlite:///presto.db or "
        "postgresql+psycopg://user@host:5432/presto",
    ),
    (
        ["--database-url", "sqlite:///no/such/directory/menus.db"],
        "presto serve: directory no/such/directory of the SQLite database does not exist",
    ),
    (
        ["--listen-url", "postgresql+psycopg://presto@127.0.0.1/menus"],
        "presto serve: --listen-url needs PostgreSQL for it and --database-url",
    ),
    (
        ["--replica-url", "sqlite:///replica.db"],
        "presto serve: --replica-url needs PostgreSQL for it and --database-url",
    ),
    (
        ["--database-pooler", "transaction"],
        "presto serve: --database-pooler transaction needs a PostgreSQL --database-url",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "line"), CONFIGURATION_MISTAKES)
def test_a_configuration_mistake_is_one_line_and_status_2(
    argv: list[str], line: str, tmp_path: Path
) -> None:
    done = presto("serve", *argv, cwd=tmp_path)
    assert (done.returncode, done.stderr, done.stdout) == (2, line + "\n", "")
    assert list(tmp_path.iterdir()) == []  # no database file made on the way


def test_a_bad_variable_is_one_line_and_status_2(tmp_path: Path) -> None:
    done = presto("serve", env={"PRESTO_PORT": "eighty"}, cwd=tmp_path)
    assert (done.returncode, done.stderr) == (
        2,
        "presto: PRESTO_PORT='eighty': 'eighty' is not an integer\n",
    )


def test_a_database_url_variable_mistake_is_one_line_and_status_2(tmp_path: Path) -> None:
    done = presto("db", "upgrade", env={"PRESTO_DATABASE_URL": "menus.db"}, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("presto db: 'menus.db' is not a database URL")


def missing_database(db_url: str, tmp_path: Path) -> str:
    """A URL like `db_url` naming a database that does not exist."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'misspelt.db'}"
    return sa.make_url(db_url).set(database="presto_no_such_database").render_as_string(False)


@pytest.mark.parametrize("command", [["keys", "list"], ["db", "current"]])
def test_reading_commands_never_create_a_database(
    command: list[str], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = missing_database(db_url, tmp_path)

    assert main([*command, "--database-url", url]) == 2

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    if db_url.startswith("sqlite"):
        assert err == f"presto {command[0]}: no database at {tmp_path / 'misspelt.db'}\n"
        assert not (tmp_path / "misspelt.db").exists()
    else:
        assert 'database "presto_no_such_database" does not exist' in err


def test_keys_list_on_a_database_without_tables_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty SQLite file, as another program might leave (PostgreSQL databases are
    never created by connecting)."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    (tmp_path / "empty.db").touch()

    assert main(["keys", "list", "--database-url", url]) == 2

    assert capsys.readouterr().err == (
        "presto keys: the database has no presto tables; `presto db upgrade` creates them\n"
    )
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            assert sa.inspect(connection).get_table_names() == []
    finally:
        engine.dispose()


DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def test_the_shipped_environment_file_is_valid_and_trusts_the_proxies_in_front() -> None:
    """`deploy/systemd/presto.env` parses as the settings it names, and it trusts the nginx
    hosts, whose site appends the client's address to `X-Forwarded-For`: without that, the
    failed-authentication limit would count every client behind nginx as one."""
    lines = (DEPLOY / "systemd" / "presto.env").read_text().splitlines()
    environ = dict(
        line.split("=", 1) for line in lines if line.strip() and not line.startswith("#")
    )
    settings = serve_settings([], environ)
    assert set(environ) <= {env_name(field) for field in dataclasses.fields(Settings)}
    assert settings.trusted_proxies == ("10.0.0.0/8",)
    site = (DEPLOY / "nginx" / "presto.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in site
