"""Diagnostics (positioned problems in the config) and the exception hierarchy.

Every exception here carries a message a user can act on; the CLI prints it on one line and
maps the class to an exit code. Nothing else should reach the user as a traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from channelsync.defaults import HIDDEN_CHARACTERS

Severity = Literal["error", "warning"]
HIDDEN = re.compile(f"[{HIDDEN_CHARACTERS}]")


def visible(text: str) -> str:
    """``text`` with control characters and bidirectional overrides written as ``\\uXXXX``,
    so that a message quoting hostile input shows what is there."""
    if HIDDEN.search(text) is None:
        return text
    return HIDDEN.sub(lambda m: f"\\u{ord(m[0]):04X}", text)


@dataclass(frozen=True, order=True)
class Diagnostic:
    file: str
    line: int
    column: int
    severity: Severity
    message: str

    def __post_init__(self) -> None:
        # file names and messages may quote the config: show its hidden characters
        object.__setattr__(self, "file", visible(self.file))
        object.__setattr__(self, "message", visible(self.message))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"

    def as_json(self) -> dict[str, str | int]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "message": self.message,
        }


class ChannelsyncError(Exception):
    """Base of every error channelsync reports to the user (exit code 1)."""


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
