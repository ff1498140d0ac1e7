"""`presto serve`'s timeouts and limits against outages, overload and abuse: documented,
defaulting to `Settings`, and refusing values that make no sense."""

from __future__ import annotations

import dataclasses

import pytest

from presto.cli import build_parser, main
from presto.config import Settings

OPTIONS = {
    "--db-connect-timeout": "db_connect_timeout",
    "--statement-timeout": "statement_timeout",
    "--header-timeout": "header_timeout",
    "--body-timeout": "body_timeout",
    "--idle-timeout": "idle_timeout",
    "--max-connections": "max_connections",
    "--max-queue": "max_queue",
    "--write-rate-limit": "write_rate_limit",
    "--write-rate-window": "write_rate_window",
    "--auth-failure-limit": "auth_failure_limit",
    "--auth-failure-window": "auth_failure_window",
    "--preview-rate-limit": "preview_rate_limit",
    "--preview-rate-window": "preview_rate_window",
}


def test_every_protection_setting_has_a_documented_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = capsys.readouterr().out
    assert "outages, overload and abuse" in text
    assert all(option in text for option in OPTIONS)
    fields = {field.name for field in dataclasses.fields(Settings)}
    assert set(OPTIONS.values()) <= fields


def test_the_options_default_to_the_settings() -> None:
    args = build_parser().parse_args(["serve"])
    defaults = Settings()
    for field in OPTIONS.values():
        assert getattr(args, field) == getattr(defaults, field)
    assert (defaults.statement_timeout, defaults.max_queue, defaults.write_rate_limit) == (
        5,
        64,
        120,
    )


def test_zero_turns_a_limit_off() -> None:
    argv = ["serve", "--max-queue", "0", "--write-rate-limit", "0", "--statement-timeout", "0"]
    args = build_parser().parse_args(argv)
    assert (args.max_queue, args.write_rate_limit, args.statement_timeout) == (0, 0, 0.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-connections", "-1"], "-1 is negative"),
        (["--header-timeout", "-2"], "-2.0 is negative"),
        (["--write-rate-window", "0"], "0.0 is not above 0"),
        (["--auth-failure-window", "nan"], "nan is not above 0"),
    ],
)
def test_nonsense_is_refused(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
