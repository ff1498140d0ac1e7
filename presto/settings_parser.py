"""One parser for `Settings`: `presto serve` options and `PRESTO_*` environment variables.

Every `Settings` field is an option `--field-name` and a variable `PRESTO_FIELD_NAME`;
the option wins over the variable, the variable over the field's default. `presto serve`
and `presto.wsgi` both read settings through here, so they cannot disagree.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from presto.config import Settings

ENV_PREFIX = "PRESTO_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
# `scheme://user:password@`: the password is not for `--help` to print.
_URL_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
# One label of a host name (RFC 1123): letters, digits and inner hyphens.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


class SettingsError(ValueError):
    """A setting whose value cannot be used; the message names the option or variable."""


def env_name(field: dataclasses.Field[Any]) -> str:
    """`database_url` -> `PRESTO_DATABASE_URL`."""
    return ENV_PREFIX + field.name.upper()


def option_name(field: dataclasses.Field[Any]) -> str:
    """`database_url` -> `--database-url`."""
    return "--" + field.name.replace("_", "-")


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def parse_bool(text: str) -> bool:
    """`1/true/yes/on` or `0/false/no/off`, any case."""
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not one of 1/0, true/false, yes/no, on/off")


def parse_list(text: str) -> tuple[str, ...]:
    """A comma-separated list; blanks dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parse_networks(text: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or networks, each checked."""
    values = parse_list(text)
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return values


def parse_host(text: str) -> str:
    """An IP address, or a host name whose last label is not all digits (so `999.1.1.1`,
    which no resolver answers, is refused here rather than when binding)."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.removesuffix(".").split(".")
    if (
        len(text) <= 253
        and all(_HOST_LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    ):
        return text
    raise argparse.ArgumentTypeError(f"{text!r} is not an IP address or a host name")


def converter(field: dataclasses.Field[Any]) -> Callable[[str], Any]:
    """Text to the field's type, refusing values outside its `minimum`, `above` or
    `choices` (and NaN, which no bound admits)."""
    kind = str(field.type)
    if field.metadata.get("networks"):
        return parse_networks
    if field.metadata.get("host"):
        return parse_host
    if kind.startswith("tuple"):
        return parse_list
    if kind == "bool":
        return parse_bool
    base: Callable[[str], Any] = {"int": int, "float": float}.get(kind, str)
    minimum = field.metadata.get("minimum")
    maximum = field.metadata.get("maximum")
    above = field.metadata.get("above")
    choices: tuple[str, ...] = field.metadata.get("choices", ())

    def convert(text: str) -> Any:
        if choices:
            for choice in choices:
                if text.lower() == choice.lower():
                    return choice
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(choices)}")
        try:
            value = base(text)
        except ValueError:
            noun = {"int": "an integer", "float": "a number"}.get(kind, kind)
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if minimum is not None and not value >= minimum:
            raise argparse.ArgumentTypeError(
                f"{value} is negative" if minimum == 0 else f"{value} is not at least {minimum}"
            )
        if maximum is not None and not value <= maximum:
            raise argparse.ArgumentTypeError(f"{value} is above {maximum}")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"{value} is not above {above}")
        return value

    return convert


def show(value: object) -> str:
    """A setting's value as an operator would type it, any password in a URL hidden."""
    if isinstance(value, str):
        return _URL_PASSWORD.sub(r"\1***@", value)
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def option_help(field: dataclasses.Field[Any], from_env: bool, value: object) -> str:
    """The help text of a setting's option, naming its variable and its default once."""
    if from_env:
        source = f"from {env_name(field)}: {show(value)}"
    else:
        source = f"{env_name(field)}; default: {show(field.default)}"
    # argparse %-formats help texts.
    return f"{field.metadata['help']} [{source}]".replace("%", "%%")


def from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings named by `PRESTO_*` variables in `environ`, converted and checked."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Settings):
        text = environ.get(env_name(field))
        if text is None:
            continue
        try:
            values[field.name] = converter(field)(text)
        except argparse.ArgumentTypeError as exc:
            raise SettingsError(f"{env_name(field)}={text!r}: {exc}") from None
    return values


def settings_from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    """`Settings` from the environment alone, as `presto.wsgi` takes them."""
    return Settings(**from_environ(os.environ if environ is None else environ))


def add_settings_options(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """One option per `Settings` field, its default from `environ` or the field."""
    from_env = from_environ(environ)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for field in dataclasses.fields(Settings):
        default = from_env.get(field.name, field.default)
        options: dict[str, Any] = {
            "dest": field.name,
            "type": converter(field),
            "default": default,
            "help": option_help(field, field.name in from_env, default),
        }
        if "choices" in field.metadata:
            options["metavar"] = "{" + ",".join(field.metadata["choices"]) + "}"
        if str(field.type) == "bool":
            options["nargs"] = "?"
            options["const"] = True
            options["metavar"] = "BOOL"
        title = field.metadata.get("group")
        if title is not None and title not in groups:
            groups[title] = parser.add_argument_group(title)
        (groups[title] if title is not None else parser).add_argument(option_name(field), **options)


def database_url_field() -> dataclasses.Field[Any]:
    """The `database_url` field, for the commands that take only that setting."""
    return next(field for field in dataclasses.fields(Settings) if field.name == "database_url")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """`Settings` from parsed options (which already fell back on the environment)."""
    names = [field.name for field in dataclasses.fields(Settings)]
    return Settings(**{name: getattr(args, name) for name in names})
