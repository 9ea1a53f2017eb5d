"""``${var:NAME}``: an environment's value for a non-secret scalar of a channel file.

Substituted before the schema check, so the result is checked with its type. A value that is
a reference and nothing else takes the variable's own YAML type (``port: ${var:port}`` with
``port: 993`` is the integer 993); a reference inside other text is written into it as text
(``imap.${var:domain}`` is a string; ``true`` and numbers are spelt as YAML spells them). A
reference in a secret field, in ``kind`` or in ``name``, an undefined variable, or any
reference without an environment, is an error at the reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from channelsync.yamlsource import Path_
from channelsync.yamlsource import dotted as _dotted

if TYPE_CHECKING:
    from channelsync.layout import Environment, Scalar

MARK = "${var:"
REFERENCE = re.compile(r"\$\{var:([^{}]*)\}")
# (path, message, the reference text) -> reported at the reference
Report = Callable[[Path_, str, str], None]


@dataclass
class Scope:
    """The variables of one load (an environment's, or none) and the names used so far."""

    environment: Environment | None
    used: set[str] = field(default_factory=set)

    def _where(self) -> str:
        if self.environment is None:
            return ""
        return f" of environment '{self.environment.name}'"

    def substitute(
        self,
        data: dict[str, Any],
        secret_paths: frozenset[Path_],
        report: Report,
    ) -> tuple[dict[str, Any], dict[Path_, str]]:
        """A copy of the document ``data`` with its references replaced, and which path took
        which variable (for the schema's messages). Problems go to ``report``."""
        origins: dict[Path_, str] = {}

        def walk(value: Any, path: Path_) -> Any:
            if type(value) is dict:
                return {k: walk(v, (*path, k)) for k, v in value.items()}
            if type(value) is list:
                return [walk(v, (*path, i)) for i, v in enumerate(value)]
            if type(value) is not str or MARK not in value:
                return value
            return self._value(value, path, path in secret_paths, origins, report)

        return walk(data, ()), origins

    def _value(
        self, text: str, path: Path_, secret: bool, origins: dict[Path_, str], report: Report
    ) -> Any:
        first = REFERENCE.search(text)
        if first is None:
            report(path, f"'{MARK}' without its closing '}}': write ${{var:NAME}}", MARK)
            return text
        if path in (("kind",), ("name",)):
            report(
                path,
                f"{path[0]} cannot be a variable: it identifies the resource in every "
                "environment; write it out (the other fields may use ${var:NAME})",
                first[0],
            )
            return text
        if secret:
            report(
                path,
                f"{_dotted(path)}: a secret cannot come from a variable ({first[0]}); secrets "
                "stay references like ${env:NAME} or ${file:PATH}",
                first[0],
            )
            return text
        values: list[Scalar] = []
        for match in REFERENCE.finditer(text):
            found = self._lookup(match[1], path, match[0], report)
            if found is None:
                return text
            values.append(found)
        names = [m[1] for m in REFERENCE.finditer(text)]
        origins[path] = ", ".join(f"${{var:{n}}}" for n in dict.fromkeys(names))
        if first.span() == (0, len(text)):
            return values[0]
        spelt = iter(values)
        return REFERENCE.sub(lambda _m: _as_text(next(spelt)), text)

    def _lookup(self, name: str, path: Path_, reference: str, report: Report) -> Scalar | None:
        environment = self.environment
        if environment is None:
            report(
                path,
                f"{_dotted(path)}: {reference} needs an environment: variables are defined "
                "per environment in channelsync.yaml (choose one with --env NAME)",
                reference,
            )
            return None
        variable = environment.variables.get(name)
        if variable is None:
            from channelsync.errors import did_you_mean

            known = ", ".join(environment.variables) or "none"
            hint = did_you_mean(name, environment.variables)
            report(
                path,
                f"{_dotted(path)}: variable '{name}' is not defined in environment "
                f"'{environment.name}' ({environment.project}){hint}; defined: {known}",
                reference,
            )
            return None
        self.used.add(name)
        return variable.value

    def note(self, path: Path_, origins: dict[Path_, str]) -> str:
        """The words a schema message at ``path`` gets when a variable set that value."""
        name = origins.get(path)
        if name is None:
            return ""
        return f" (from {name}{self._where()})"

    def unused(self) -> list[tuple[str, int, int]]:
        """(name, line, column) of each variable of the environment that nothing used."""
        if self.environment is None:
            return []
        return [
            (name, v.line, v.column)
            for name, v in self.environment.variables.items()
            if name not in self.used
        ]


def _as_text(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
