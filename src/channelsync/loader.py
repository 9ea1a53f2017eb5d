"""Config directory -> desired state, with every problem found in one run.

Each document is checked by the pydantic model (fast, strict); only a document that fails is
checked again by jsonschema against the generated schema, whose errors become the messages
users see, positioned through ruamel.yaml. Relations between fields and resources are checked
afterwards by ``rules.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from channelsync.errors import ConfigError, Diagnostic, Severity
from channelsync.model import KINDS, Resource
from channelsync.secrets import ref_problem
from channelsync.yamlsource import Document, Path_, SourceFile, read_source

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaError

DEFAULT_DIR = Path("channels.d")
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Loaded:
    """A valid resource and where it came from."""

    resource: Resource
    source: SourceFile
    index: int

    @property
    def kind(self) -> str:
        return self.resource.kind

    @property
    def name(self) -> str:
        return self.resource.name

    @property
    def base_dir(self) -> Path:
        return self.source.path.parent

    def diagnostic(
        self, path: Path_, severity: Severity, message: str, *, key: bool = False
    ) -> Diagnostic:
        self.source.ensure_positions()
        line, column = self.source.documents[self.index].position(path, key=key)
        return Diagnostic(self.source.display, line, column, severity, message)


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

    def raise_on_errors(self) -> None:
        if self.errors:
            raise ConfigError(self.diagnostics)


def load_config(root: Path) -> Config:
    from channelsync import rules

    config = Config(root)
    if not root.is_dir():
        config.diagnostics.append(
            Diagnostic(
                str(root), 1, 1, "error", "config directory does not exist; create it or pass --dir"
            )
        )
        return config
    for path in find_files(root):
        config.files += 1
        source = read_source(path, _display(path))
        for document in source.documents:
            loaded = _validate_document(source, document)
            if loaded is not None:
                config.resources.append(loaded)
        config.diagnostics.extend(source.problems)
    config.diagnostics.extend(rules.check(config))
    config.diagnostics.sort(key=lambda d: (d.file, d.line, d.column, d.severity, d.message))
    return config


def find_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _kinds_list() -> str:
    return ", ".join(KINDS)


def _validate_document(source: SourceFile, document: Document) -> Loaded | None:
    data = document.data
    if not isinstance(data, dict):
        if data is None:
            message = "empty document; remove the stray '---' or add a resource"
        else:
            message = (
                f"document is {_describe(data)}; each document must be a mapping "
                f"with a 'kind' ({_kinds_list()})"
            )
        source.error(document.line, document.column, message)
        return None
    kind = data.get("kind")
    if kind is None:
        source.error(document.line, document.column, f"missing 'kind'; one of {_kinds_list()}")
        return None
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        source.ensure_positions()
        line, column = source.documents[document.index].position(("kind",))
        hint = did_you_mean(str(kind), KINDS)
        source.error(line, column, f"unknown kind '{kind}'{hint}; one of {_kinds_list()}")
        return None
    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        _report_invalid(source, document.index, kind, exc)
        return None
    return Loaded(resource, source, document.index)


def _report_invalid(source: SourceFile, index: int, kind: str, exc: ValidationError) -> None:
    source.ensure_positions()
    document = source.documents[index]
    found = False
    for path, message, at_key in _schema_problems(kind, document.data):
        found = True
        line, column = document.position(path, key=at_key)
        source.error(line, column, message)
    if not found:  # the model and the schema disagree: still report, without echoing input
        for err in exc.errors(include_input=False, include_url=False):
            path = tuple(err["loc"])
            line, column = document.position(path)
            source.error(line, column, f"{_dotted(path)}: {err['msg']}")


# --- schema errors -> user messages -------------------------------------------------------


@cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator

    from channelsync.schema import schema_for

    return Draft202012Validator(schema_for(KINDS[kind]))


def _schema_problems(kind: str, data: dict[str, Any]) -> Iterator[tuple[Path_, str, bool]]:
    for error in sorted(_validator(kind).iter_errors(data), key=lambda e: list(map(str, e.path))):
        yield from _explain(_leaf(error))


def _leaf(error: SchemaError) -> SchemaError:
    """For anyOf (optional fields), the branch that explains the failure best."""
    from jsonschema.exceptions import best_match

    while error.validator in ("anyOf", "oneOf") and error.context:
        branches = [
            e
            for e in error.context
            if not (isinstance(e.schema, dict) and e.schema.get("type") == "null")
        ]
        error = best_match(branches or error.context)
    return error


_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}


def _describe(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "document"


def _explain(error: SchemaError) -> Iterator[tuple[Path_, str, bool]]:
    path: Path_ = tuple(error.absolute_path)
    where = _dotted(path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    secret = bool(schema.get("writeOnly"))
    value: Any = error.instance
    validator = error.validator
    if validator == "required":
        missing = str(error.message).split("'")[1]
        yield path, f"missing required field '{_dotted((*path, missing))}'", bool(path)
    elif validator == "additionalProperties":
        allowed = list(schema.get("properties", {}))
        for key in value:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed) or f"; allowed: {', '.join(allowed)}"
                inside = f" in {where}" if path else ""
                yield (*path, key), f"unknown field '{key}'{inside}{hint}", True
    elif validator == "type":
        expected = schema.get("type")
        wanted = _TYPE_WORDS.get(str(expected), str(expected))
        yield path, f"{where}: expected {wanted}, got {_describe(value)}", False
    elif validator in ("enum", "const"):
        options = schema.get("enum") or [schema.get("const")]
        hint = did_you_mean(str(value), [str(o) for o in options])
        yield (
            path,
            f"{where}: '{value}' is not one of {', '.join(map(str, options))}{hint}",
            False,
        )
    elif validator in ("minimum", "maximum") and path and path[-1] == "port":
        yield path, f"{where}: port {value} is outside 1-65535", False
    elif secret:
        problem = ref_problem(value) if isinstance(value, str) else None
        yield path, f"{where}: {problem or 'must be a secret reference'}", False
    elif validator == "pattern":
        yield path, f"{where}: {_pattern_message(schema, value)}", False
    elif validator == "minLength":
        yield path, f"{where}: must not be empty", False
    elif validator == "maxLength":
        yield path, f"{where}: longer than {schema.get('maxLength')} characters", False
    else:
        yield path, f"{where}: {error.message}", False


def _pattern_message(schema: dict[str, Any], value: Any) -> str:
    if schema.get("format") == "email":
        return f"'{value}' is not a valid email address (expected name@domain.tld)"
    if schema.get("pattern") == r"\S":
        return "must not be blank"
    if schema.get("format") == "hostname":
        return f"'{value}' is not a valid host name or IP address"
    return f"'{value}' does not match {schema.get('pattern')}"
