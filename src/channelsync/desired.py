"""The desired state: the valid resources of the config and every diagnostic found on the way.

``loader`` builds it, ``rules`` checks it, the commands plan and apply it. It imports
neither, so that loader -> rules -> desired has no circle.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channelsync import kinds
from channelsync.errors import ConfigError, Diagnostic, Severity
from channelsync.yamlsource import Path_, SourceFile


@dataclass(slots=True)
class Loaded:
    """A valid resource in normalised form (every default applied) and where it came from."""

    kind: str
    name: str
    data: dict[str, Any]
    source: SourceFile
    index: int
    layer: int = 0  # which folder of the environment (its dirs) defined it
    # the documents of patches (from later folders) that set a path and what is below it
    overrides: dict[Path_, tuple[SourceFile, int]] | None = None

    def origin(self, path: Path_) -> tuple[SourceFile, int]:
        """The file and document that set the value at ``path``."""
        if self.overrides:
            while True:
                if path in self.overrides:
                    return self.overrides[path]
                if not path:
                    break
                path = path[:-1]
        return self.source, self.index

    @property
    def base_dir(self) -> Path:
        return _folder(os.path.dirname(self.source.path))

    def diagnostic(
        self, path: Path_, severity: Severity, message: str, *, key: bool = False
    ) -> Diagnostic:
        source, index = self.origin(path)
        line, column = source.document(index).position(path, key=key)
        return Diagnostic(source.display, line, column, severity, message)


@functools.lru_cache(maxsize=256)
def _folder(path: str) -> Path:
    """One Path per folder: ten thousand files in one folder need it ten thousand times."""
    return Path(path)


@dataclass
class Config:
    """The desired state: valid resources plus every diagnostic found on the way."""

    root: Path
    resources: list[Loaded] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def of_kind(self, kind: str) -> list[Loaded]:
        return [r for r in self.resources if r.kind == kind]

    def by_kind(self) -> dict[str, list[Loaded]]:
        """The resources grouped by kind, in one pass (for the rules)."""
        groups: dict[str, list[Loaded]] = {kind: [] for kind in kinds.names()}
        for item in self.resources:
            groups[item.kind].append(item)
        return groups

    def raise_on_errors(self, *, already_shown: bool = False) -> None:
        if self.errors:
            raise ConfigError(self.diagnostics, already_shown=already_shown)
