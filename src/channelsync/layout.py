"""What one load of the config reads: an environment's folders, target and variables.

Made by ``environments.py`` from the project file; read by the loader (``load_config``) and
``variables.py``. Apart from them so that neither imports the project file's reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from channelsync.defaults import PROJECT_FILE

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

    def with_dirs(self, dirs: tuple[Path, ...]) -> Environment:
        return Environment(self.name, dirs, self.target, self.variables, self.project)
