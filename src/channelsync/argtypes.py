"""The parser class, argument types and shared options of every channelsync command line.

argparse words a failing ``type=`` by the function's name ("invalid _seconds value: 'x'") and
exits 2, which channelsync keeps for "changes pending" and "drift". Every type here refuses with
a sentence instead, and ``Parser`` exits 1. Only argparse is imported: ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from channelsync.defaults import BINDINGS_ENV, BINDINGS_FILE, DEFAULT_TARGET
from channelsync.exitcodes import EXIT_ERROR

EXIT_USAGE = EXIT_ERROR  # a usage error is an error like any other, never 2 or 3
DIR_ENV = "CHANNELSYNC_DIR"
TARGET_ENV = "CHANNELSYNC_TARGET"
DEFAULT_DIR = "channels.d"
MAX_SECONDS = 86_400
MAX_COUNT = 1024


class UsageExit(SystemExit):
    """A refused command line (exit 1), with the message shown (``cli.main`` also writes it
    as a JSON error document under ``--format json``)."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USAGE)
        self.message = message


class Parser(argparse.ArgumentParser):
    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Unknown arguments are refused by the (sub)command that met them, so the usage
        shown is that command's, not the top level's."""
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise UsageExit(f"{self.prog}: {message}")


def _number(text: str, kind: type[int] | type[float], what: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not {what}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"'{text}' is not {what}")
    return value


def positive_int(text: str) -> int:
    """A count of things done at once: 1 up to MAX_COUNT (each is a thread and a connection)."""
    value = int(_number(text, int, "a whole number"))
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"'{text}' must be between 1 and {MAX_COUNT}")
    return value


def byte_count(text: str) -> int:
    """A size in bytes: 1 up to 1 GiB."""
    value = int(_number(text, int, "a whole number of bytes"))
    if not 1 <= value <= 2**30:
        raise argparse.ArgumentTypeError(f"'{text}' must be between 1 and {2**30} bytes")
    return value


def per_minute(text: str) -> int:
    """A rate: 1 up to ten million a minute."""
    value = int(_number(text, int, "a whole number"))
    if not 1 <= value <= 10**7:
        raise argparse.ArgumentTypeError(f"'{text}' must be between 1 and {10**7}")
    return value


def seconds(text: str) -> float:
    """A wait in seconds, 0 up to a day."""
    value = _number(text, float, "a number of seconds")
    if not 0 <= value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"'{text}' must be between 0 and {MAX_SECONDS} seconds")
    return value


def positive_seconds(text: str) -> float:
    """A timeout: more than 0, up to a day."""
    value = _number(text, float, "a number of seconds")
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"'{text}' must be more than 0 and at most {MAX_SECONDS} seconds"
        )
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration(text: str) -> float:
    """An interval such as 30s, 5m or 1h (a bare number is seconds): at least 1 s, up to a
    day."""
    stripped = text.strip().lower()
    unit = _UNITS.get(stripped[-1:], 0)
    try:
        value = _number(stripped[:-1] if unit else stripped, float, "")
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a duration such as 30s, 5m or 1h"
        ) from None
    seconds = value * (unit or 1)
    if not 1 <= seconds <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"'{text}' must be from 1s to {MAX_SECONDS // 3600}h (e.g. 30s, 5m, 1h)"
        )
    return seconds


def positive_minutes(text: str) -> float:
    """A duration in minutes: more than 0, up to a day."""
    value = _number(text, float, "a number of minutes")
    if not 0 < value <= MAX_SECONDS / 60:
        raise argparse.ArgumentTypeError(
            f"'{text}' must be more than 0 and at most {MAX_SECONDS // 60} minutes"
        )
    return value


def date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def port(text: str) -> int:
    value = int(_number(text, int, "a port number (1-65535)"))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {text} is outside 1-65535")
    return value


def host(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty; e.g. 127.0.0.1, or 0.0.0.0 for all")
    if any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"'{text}' is not a host name or IP address")
    return text


def path(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty; give a path")
    return Path(text)


def target(text: str) -> str:
    """A target URL as given; never echoed in the message (it may hold credentials)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must not be empty; give a URL such as {DEFAULT_TARGET}")
    return text


def web_url(text: str) -> str:
    """An http(s) address to link to from a web page (no quotes, spaces or angle brackets)."""
    if not text.startswith(("https://", "http://")) or set(text) & set(" \t\"'<>\\"):
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an http(s) URL; give a web address such as "
            "https://github.com/ORG/channels"
        )
    return text


def email_address(text: str) -> str:
    """One plain address (name@domain): it goes into RCPT TO and the To header as it is."""
    local, at, domain = text.partition("@")
    named = "." in domain.strip(".") or domain == "localhost"
    plain = at and local and named and not set(text) & set(' \t<>,;"\\')
    if not plain or "@" in domain or not text.isprintable() or len(text) > 254:
        raise argparse.ArgumentTypeError(f"'{text}' is not an email address; use name@domain")
    return text


def from_env(variable: str) -> str | None:
    """The value of an option's environment variable; one that is set but empty counts as
    unset (README "Commands"). The one rule for ``--dir`` and ``--target``."""
    return os.environ.get(variable) or None


class _Given(argparse.Action):
    """Stores the value and notes that it was given: an explicit --dir or --target wins over
    the environment's (``environments.select``)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, values)
        setattr(namespace, f"{self.dest}_given", True)


def dir_option(p: argparse.ArgumentParser) -> None:
    """``--dir``, defaulting to ``$CHANNELSYNC_DIR``, else channels.d; and ``--env``."""
    p.add_argument(
        "--dir",
        type=path,
        action=_Given,
        default=Path(from_env(DIR_ENV) or DEFAULT_DIR),
        help=f"config directory (default: {DEFAULT_DIR}, or ${DIR_ENV})",
    )
    p.add_argument(
        "--env",
        metavar="NAME",
        help="environment of channelsync.yaml: its dirs, target and variables (default: "
        "$CHANNELSYNC_ENV, else its default_environment)",
    )


def target_option(p: argparse.ArgumentParser, what: str = "tenant to manage") -> None:
    """``--target``; unset, ``targets.target_url`` takes ``$CHANNELSYNC_TARGET``, else the
    embedded tenant (the variable is read when the target is opened: ``serve`` re-reads it)."""
    p.add_argument(
        "--target",
        type=target,
        metavar="URL",
        help=f"{what} (default: ${TARGET_ENV} or {DEFAULT_TARGET})",
    )


def format_option(p: argparse.ArgumentParser, *choices: str) -> None:
    """``--format``, the first choice by default."""
    p.add_argument("--format", choices=choices, default=choices[0])


def only_option(p: argparse.ArgumentParser, what: str = "limit to these resources") -> None:
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        default=[],
        help=f"{what}: NAME or Kind/NAME (e.g. EmailChannel/Support)",
    )


def secret_options(
    p: argparse.ArgumentParser, *, bindings: bool = True, files: bool = True
) -> None:
    """``--secret-bindings`` (where secrets may be sent) and ``--allow-secret-files-outside``
    (where secrets are read)."""
    if bindings:
        p.add_argument(
            "--secret-bindings",
            type=path,
            metavar="FILE",
            default=Path(os.environ[BINDINGS_ENV]) if os.environ.get(BINDINGS_ENV) else None,
            help=f"send each secret only to the endpoints this file ({BINDINGS_FILE}) binds it "
            f"to (default: ${BINDINGS_ENV}; none: no restriction)",
        )
    if files:
        p.add_argument(
            "--allow-secret-files-outside",
            action="store_true",
            help="allow ${file:...} secrets outside the config repository",
        )


def verbose_options(p: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``--log-format`` (``channelsync.log``), on the top-level parser and
    every command's, so that they go before or after the command (unset unless given)."""
    from channelsync.log import FORMATS

    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log what each step does and how long it takes, on stderr",
    )
    p.add_argument(
        "--log-format",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="with --verbose: text (default) or JSON lines",
    )


def wants_json(words: Sequence[str]) -> bool:
    """Whether a command line that did not parse asked for ``--format json``."""
    pairs = zip(words, [*words[1:], ""], strict=True)
    return "--format=json" in words or any(a == "--format" and b == "json" for a, b in pairs)
