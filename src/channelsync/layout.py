"""What one load of the config reads: an environment's folders, target and variables.

Made by ``environments.py`` from the project file; read by the loader (``load_config``) and
``variables.py``. Apart from them so that neither imports the project file's reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from channelsync.defaults import PROJECT_FILE

if TYPE_CHECKING:
    from channelsync.errors import Diagnostic

Scalar = str | int | float | bool


@dataclass(frozen=True)
class Variable:
    value: Scalar
    line: int
    column: int


@dataclass(frozen=True)
class Environment:
    """One environment of the project file: what ``load_config`` reads for it."""

    name: str
    dirs: tuple[Path, ...]
    target: str | None = None
    variables: dict[str, Variable] = field(default_factory=dict)
    project: str = PROJECT_FILE  # the project file as shown in messages
    notes: tuple[Diagnostic, ...] = ()  # the project file's warnings about this environment

    def with_dirs(self, dirs: tuple[Path, ...]) -> Environment:
        return replace(self, dirs=dirs)
