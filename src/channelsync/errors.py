"""Diagnostics (positioned problems in the config) and every error a user can see.

Each exception here carries a message a user can act on and its ``exit_code``; ``cli.main``
prints the message on one line and exits with that code. Nothing else should reach the user
as a traceback. The tree (exit code in brackets)::

    ChannelsyncError [1]
    ├── UsageError [1]           the command line asks for something that cannot be done
    │   └── DiscoverError [1]    discover: not https, not an address
    ├── ConfigError [1]          the config has errors (``diagnostics``: all of them)
    ├── StalePlan [3]            apply PLANFILE: config, tenant or a secret changed since
    ├── SafetyError [1]          apply: deletes without --allow-delete, > 30 % without --force
    ├── SecretUnavailable [1]    a secret reference cannot be read here
    ├── TrustUnavailable [1]     the CA file in force cannot be read
    ├── ExportRefused [1]        export would throw the config away
    ├── ScaffoldError [1]        init: the folder cannot be written (``written``: done before)
    └── TargetError [1]          the target refused or failed an operation
        ├── ConflictError [1]    the live resource is not what the plan saw
        ├── LockTimeout [1]      another apply holds the tenant's lock
        └── HttpTargetError [1]  (targets.http) the REST API answered with an error:
                                 Unauthorized, Forbidden, NotFound, Unreachable

Errors a module handles itself stay there (probe.check.ProbeFailure/ServerRefusal become
check results, dnscheck.LookupFailed a result line, gitops.github.GitHubError a CI notice).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar, Literal

from channelsync.defaults import HIDDEN_CHARACTERS
from channelsync.exitcodes import EXIT_ERROR, EXIT_STALE

Severity = Literal["error", "warning"]
HIDDEN = re.compile(f"[{HIDDEN_CHARACTERS}]")


def visible(text: str) -> str:
    """``text`` with control, bidirectional and invisible format characters written as ``\\uXXXX``,
    so that a message quoting hostile input shows what is there."""
    if HIDDEN.search(text) is None:
        return text
    return HIDDEN.sub(lambda m: f"\\u{ord(m[0]):04X}", text)


def hidden_problem(text: str) -> str | None:
    """Why ``text`` may not be a name or any configured text (its first control,
    bidirectional or invisible format character), or None: the one rule the loader and the
    REST API apply to resource and tenant names."""
    found = HIDDEN.search(text)
    if found is None:
        return None
    at = found.start()
    code = ord(text[at])
    if code < 0xA0:
        what = "a control character"
    elif 0x202A <= code <= 0x202E or 0x2066 <= code <= 0x2069:
        what = "a bidirectional override"
    elif code in (0x061C, 0x200E, 0x200F):
        what = "a bidirectional mark"
    else:
        what = "an invisible format character"
    return (
        f"contains {what} (U+{code:04X}) at character {at + 1}; remove it: it hides or "
        "reorders text in terminals, plans and pull request comments"
    )


@functools.total_ordering
class Diagnostic:
    """One positioned problem. Immutable, ordered by (file, line, column, severity, message).

    A plain class rather than a dataclass: ``dataclasses`` imports ``inspect``, a cost every
    ``channelsync --help`` would pay."""

    __slots__ = ("column", "file", "line", "message", "severity")

    file: str
    line: int
    column: int
    severity: Severity
    message: str

    def __init__(self, file: str, line: int, column: int, severity: Severity, message: str):
        # file names and messages may quote the config: show its hidden characters
        set_ = object.__setattr__
        set_(self, "file", visible(file))
        set_(self, "line", line)
        set_(self, "column", column)
        set_(self, "severity", severity)
        set_(self, "message", visible(message))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Diagnostic is immutable (cannot set {name})")

    def _key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.column, self.severity, self.message)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Diagnostic) and self._key() == other._key()

    def __lt__(self, other: Diagnostic) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __reduce__(self) -> tuple[type[Diagnostic], tuple[str, int, int, str, str]]:
        return (Diagnostic, self._key())  # pickled to and from the loader's worker processes

    def __repr__(self) -> str:
        return (
            f"Diagnostic(file={self.file!r}, line={self.line!r}, column={self.column!r}, "
            f"severity={self.severity!r}, message={self.message!r})"
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def as_json(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity,
            "message": self.message,
        }


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    import difflib

    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def error_code(error: type[BaseException]) -> str:
    """The stable name of an error for machines (README "JSON error document"): the class
    name in snake case, ``ConfigError`` -> ``config_error``."""
    if error is ChannelsyncError:
        return "error"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", error.__name__).lower()


def error_json(
    message: str, code: str, exit_code: int, diagnostics: Iterable[Diagnostic] = ()
) -> dict[str, object]:
    """The ``error`` member of a JSON output (README "JSON error document")."""
    return {
        "message": message,
        "code": code,
        "exit_code": exit_code,
        "diagnostics": [d.as_json() for d in diagnostics],
    }


def error_document(
    message: str, code: str, exit_code: int, diagnostics: Iterable[Diagnostic] = ()
) -> str:
    """What a command with ``--format json`` prints on stdout when it fails."""
    import json

    error = error_json(message, code, exit_code, diagnostics)
    return json.dumps({"error": error}, indent=2, ensure_ascii=False) + "\n"


class ChannelsyncError(Exception):
    """Base of every error channelsync reports to the user."""

    exit_code: ClassVar[int] = EXIT_ERROR


class ConfigError(ChannelsyncError):
    """The configuration has errors; ``diagnostics`` lists them all."""

    def __init__(
        self,
        diagnostics: list[Diagnostic],
        *,
        already_shown: bool = False,
        summary: str = "",
    ) -> None:
        self.diagnostics = diagnostics
        self.already_shown = already_shown
        errors = sum(1 for d in diagnostics if d.severity == "error")
        default = f"the configuration has {errors} error(s); run 'channelsync validate'"
        super().__init__(summary or default)


class UsageError(ChannelsyncError):
    """The command line asks for something that cannot be done (exit code 1, like all errors:
    2 is kept for "changes pending" and "drift")."""


class DiscoverError(UsageError):
    """A usage problem (not https, bad address); one line for the user."""


class StalePlan(ChannelsyncError):
    """A saved plan no longer matches the config, the tenant or a secret: plan again."""

    exit_code = EXIT_STALE


class SafetyError(ChannelsyncError):
    """Apply refuses a plan that deletes or changes too much without the flag that allows it."""


class SecretUnavailable(ChannelsyncError):
    """A reference is well-formed but its value cannot be read here (unset variable, no file)."""


class TrustUnavailable(ChannelsyncError):
    """The CA file in force cannot be read."""


class ExportRefused(ChannelsyncError):
    """Export would throw the config away (an empty tenant); nothing was changed."""


class ScaffoldError(ChannelsyncError):
    """The folder cannot be written: one line for the user, and what was written before."""

    def __init__(self, message: str, written: list[Path]) -> None:
        super().__init__(message)
        self.written = written


class TargetError(ChannelsyncError):
    """The target refused or failed an operation."""


class ConflictError(TargetError):
    """The live resource is not what the plan saw (changed, created or deleted since)."""


class LockTimeout(TargetError):
    """Another apply held the tenant's lock for longer than --lock-timeout."""
