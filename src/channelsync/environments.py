"""Environments: the optional project file ``channelsync.yaml`` and the one a command uses.

A project file names environments (a target, the config folders read in order, the values of
``${var:NAME}``). ``select`` picks one for a command line: ``--env NAME``, else
``$CHANNELSYNC_ENV``, else ``default_environment``; an explicit ``--dir`` or ``--target``
still wins over the environment's. Without a project file nothing changes. The file is
checked against its generated schema (``project.py``) with errors positioned like the
channel files'; pydantic is not imported.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from channelsync.defaults import PACKAGED_PROJECT_SCHEMA, PROJECT_FILE
from channelsync.errors import ConfigError, Diagnostic, UsageError, did_you_mean
from channelsync.layout import Environment as Environment
from channelsync.layout import Variable
from channelsync.yamlsource import Path_, SourceFile, read_source

ENV_VAR = "CHANNELSYNC_ENV"
_ENVIRONMENT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def is_environment_name(name: str) -> bool:
    return _ENVIRONMENT_NAME.match(name) is not None


@dataclass(frozen=True)
class Project:
    environments: dict[str, Environment]
    default: str | None
    display: str

    def get(self, name: str, *, where: str = "--env") -> Environment:
        found = self.environments.get(name)
        if found is None:
            known = ", ".join(self.environments)
            hint = did_you_mean(name, self.environments)
            raise UsageError(
                f"{where} {name}: no such environment in {self.display}{hint}; known: {known}"
            )
        return found


def find(folder: Path | None = None) -> Path | None:
    """The project file of the current folder (where the commands run), if there is one."""
    path = (folder or Path()) / PROJECT_FILE
    return path if path.exists() else None


def load(path: Path) -> Project:
    """The project file, checked; ConfigError (every problem, positioned) when it is wrong."""
    display = str(path)
    source = read_source(str(path), display)
    problems = list(source.problems)
    document = source.documents[0] if len(source.documents) == 1 else None
    if not problems and document is None:
        problems.append(Diagnostic(display, 1, 1, "error", "expected one YAML document"))
    if problems or document is None:
        raise _refused(problems, display)
    data = document.data
    if not isinstance(data, dict):
        problems.append(
            Diagnostic(display, 1, 1, "error", "expected a mapping with 'environments'")
        )
        raise _refused(problems, display)
    positioned = source.document(0)
    problems.extend(_schema_problems(source, data))
    problems.extend(_name_problems(source, data))
    if problems:
        raise _refused(problems, display)
    base = path.parent
    environments = {
        name: _environment(name, body, base, positioned, display)
        for name, body in data["environments"].items()
    }
    environments = _shared_targets(environments, positioned, display)
    default = data.get("default_environment")
    if default is not None and default not in environments:
        line, column = positioned.position(("default_environment",))
        hint = did_you_mean(default, environments)
        message = (
            f"default_environment '{default}' is not one of the environments{hint}; "
            f"known: {', '.join(environments)}"
        )
        raise _refused([Diagnostic(display, line, column, "error", message)], display)
    return Project(environments, default, display)


def _shared_targets(
    environments: dict[str, Environment], positioned: Any, display: str
) -> dict[str, Environment]:
    """A warning on each environment whose target another one names too: applying one would
    undo the other (each deletes or changes what only the other defines)."""
    by_target: dict[str, list[str]] = {}
    for name, environment in environments.items():
        if environment.target is not None:
            by_target.setdefault(environment.target.rstrip("/"), []).append(name)
    out = dict(environments)
    for target, names in by_target.items():
        for name in names if len(names) > 1 else ():
            others = " and ".join(repr(n) for n in names if n != name)
            line, column = positioned.position(("environments", name, "target"))
            note = Diagnostic(
                display,
                line,
                column,
                "warning",
                f"environment '{name}' has the same target as {others} ({target}): applying "
                "one undoes the other; give each environment its own tenant",
            )
            out[name] = replace(environments[name], notes=(note,))
    return out


def _refused(problems: list[Diagnostic], display: str) -> ConfigError:
    errors = sum(1 for p in problems if p.severity == "error")
    return ConfigError(
        sorted(problems), summary=f"{display} has {errors} error(s); fix it or remove it"
    )


def _environment(
    name: str, body: dict[str, Any], base: Path, positioned: Any, display: str
) -> Environment:
    dirs = tuple(base / d if base != Path() else Path(d) for d in body.get("dirs", ["channels.d"]))
    variables = {}
    for key, value in body.get("variables", {}).items():
        line, column = positioned.position(("environments", name, "variables", key), key=True)
        variables[key] = Variable(value, line, column)
    return Environment(name, dirs, body.get("target"), variables, display)


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    try:
        schema = json.loads(PACKAGED_PROJECT_SCHEMA.read_text(encoding="utf-8"))
    except FileNotFoundError:  # pragma: no cover - broken install
        raise UsageError(
            f"{PACKAGED_PROJECT_SCHEMA} is missing: reinstall channelsync (in a checkout: "
            "channelsync schema --write)"
        ) from None
    return Draft202012Validator(schema)


def _schema_problems(source: SourceFile, data: dict[str, Any]) -> list[Diagnostic]:
    from channelsync.loader import explain_schema_error

    document = source.document(0)
    out = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.path))):
        for path, message, at_key in explain_schema_error(error):
            line, column = document.position(path, key=at_key)
            out.append(Diagnostic(source.display, line, column, "error", message))
    return out


def _name_problems(source: SourceFile, data: dict[str, Any]) -> list[Diagnostic]:
    """Environment and variable names the schema's patternProperties let through."""
    document = source.document(0)
    out = []

    def check(path: Path_, name: str, pattern: re.Pattern[str], what: str) -> None:
        if not pattern.match(name):
            line, column = document.position(path, key=True)
            out.append(Diagnostic(source.display, line, column, "error", f"{what} '{name}'"))

    environments = data.get("environments")
    if not isinstance(environments, dict):
        return out
    for name, body in environments.items():
        check(
            ("environments", name),
            name,
            _ENVIRONMENT_NAME,
            "an environment name is letters, digits, '_', '.' or '-' (GitHub's environment "
            "names), not",
        )
        variables = body.get("variables") if isinstance(body, dict) else None
        for key in variables if isinstance(variables, dict) else ():
            check(
                ("environments", name, "variables", key),
                key,
                _VARIABLE_NAME,
                "a variable name is letters, digits and '_', not starting with a digit, not",
            )
    return out


# ---- the environment of one command line ------------------------------------------------------


def select(
    wanted: str | None, *, dir_given: Path | None, project: Path | None = None
) -> Environment | None:
    """The environment a command uses (None: no project file, or none chosen while --dir
    names the folder). UsageError for an unknown name, or a project file without a default
    when nothing chose one."""
    project = find() if project is None else project
    name = wanted or os.environ.get(ENV_VAR) or None
    if project is None:
        if name is not None:
            how = "--env" if wanted else f"${ENV_VAR}"
            raise UsageError(
                f"{how} {name}: there is no {PROJECT_FILE} in this folder; run channelsync "
                "from the folder that holds it, or drop the environment"
            )
        return None
    loaded = load(project)
    if name is None:
        name = loaded.default
    if name is None:
        if dir_given is not None:
            return None
        known = ", ".join(loaded.environments)
        raise UsageError(
            f"{loaded.display} defines the environments {known} and no default_environment: "
            f"choose one with --env NAME (or ${ENV_VAR}), or pass --dir"
        )
    environment = loaded.get(name, where="--env" if wanted else f"${ENV_VAR}")
    if dir_given is not None:
        environment = environment.with_dirs((dir_given,))
    return environment


def all_environments(project: Path | None = None) -> list[Environment]:
    """Every environment of the project file, in its order (``plan --all-envs``)."""
    path = find() if project is None else project
    if path is None:
        raise UsageError(
            f"--all-envs: there is no {PROJECT_FILE} in this folder; it lists the environments"
        )
    return list(load(path).environments.values())
