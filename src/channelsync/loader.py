"""Config directory -> desired state, with every problem found in one run.

Each document is checked by a compiled validator of the schema generated from the model;
only a document that fails is checked again by jsonschema, whose errors become the messages
users see, positioned through ruamel.yaml. Relations between fields and resources are checked
afterwards by ``rules.py``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from channelsync import document as documents
from channelsync import kinds
from channelsync.desired import Config as Config
from channelsync.desired import Loaded as Loaded
from channelsync.errors import Diagnostic, hidden_problem
from channelsync.errors import did_you_mean as did_you_mean
from channelsync.patches import merge
from channelsync.perf import paused_gc
from channelsync.secrets import ref_problem, repository_root
from channelsync.variables import MARK, Scope
from channelsync.yamlsource import Document, Path_, SourceFile, fast_documents, read_source
from channelsync.yamlsource import dotted as _dotted

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError as SchemaError

    from channelsync.layout import Environment

DEFAULT_DIR = Path("channels.d")
YAML_SUFFIXES = (".yaml", ".yml")


def load_config(root: Path | Environment) -> Config:
    """Every problem in the config under ``root`` (a folder, or an environment's folders
    with its variables), and its valid resources."""
    from channelsync import log

    where = {"dir": str(root)} if isinstance(root, Path) else {"environment": root.name}
    with log.step("load config", **where) as found, paused_gc():
        config = _load_config(root)
        found.update(files=config.files, resources=len(config.resources))
        found.update(
            errors=len(config.errors), warnings=len(config.diagnostics) - len(config.errors)
        )
    return config


@dataclass
class _Patch:
    source: SourceFile
    index: int
    layer: int
    kind: str
    name: str


@dataclass
class _Loading:
    """What one load keeps besides the config: the variables, the patches, and the
    (kind, name) of documents that were refused (a patch of one is not reported again)."""

    scope: Scope
    layer: int = 0
    patches: list[_Patch] = field(default_factory=list)
    refused: set[tuple[str, str]] = field(default_factory=set)
    _marked: dict[str, bool] = field(default_factory=dict)

    def marked(self, source: SourceFile) -> bool:
        """Whether the file holds ``${var:`` at all: searched once per file, not once per
        document (a file may hold thousands)."""
        found = self._marked.get(source.path)
        if found is None:
            found = self._marked[source.path] = _has_mark(source)
        return found


def _load_config(root: Path | Environment) -> Config:
    from channelsync import rules
    from channelsync.layout import Environment

    environment = root if isinstance(root, Environment) else None
    folders = environment.dirs if environment is not None else (cast(Path, root),)
    config = Config(folders[0])
    loading = _Loading(Scope(environment))
    for layer, folder in enumerate(folders):
        loading.layer = layer
        _load_folder(config, folder, loading, environment)
    if loading.patches:
        _apply_patches(config, loading.patches, loading.refused, loading.scope)
    if environment is not None:
        config.diagnostics.extend(environment.notes)
        for name, line, column in loading.scope.unused():
            config.diagnostics.append(
                Diagnostic(
                    environment.project,
                    line,
                    column,
                    "warning",
                    f"variable '{name}' of environment '{environment.name}' is not used by "
                    f"any resource; remove it, or use it as ${{var:{name}}}",
                )
            )
    config.diagnostics.extend(rules.check(config))
    config.diagnostics.sort(key=lambda d: (d.file, d.line, d.column, d.severity, d.message))
    return config


def _load_folder(
    config: Config, root: Path, loading: _Loading, environment: Environment | None
) -> None:
    if not root.is_dir():
        problem = "is a file, not a directory" if root.exists() else "does not exist"
        fix = (
            f"fix the dirs of environment '{environment.name}' in {environment.project}"
            if environment is not None
            else "pass --dir"
        )
        message = f"config directory {problem}; create it or {fix}"
        config.diagnostics.append(Diagnostic(str(root), 1, 1, "error", message))
        return
    cwd = os.getcwd() + os.sep

    def shown(path: str) -> str:
        return path[len(cwd) :] if path.startswith(cwd) else path

    paths, unread, unsure = find_files(root)
    for path, message in unread:
        config.diagnostics.append(Diagnostic(shown(path), 1, 1, "error", message))
    layer = loading.layer
    for path, fast in zip(paths, _fast_files(paths, unsure), strict=True):
        config.files += 1
        display = shown(path)
        if fast is not None:
            # documents are parsed again if positions are needed
            source = SourceFile(path, display, fast=len(fast))
            config.resources.extend(
                Loaded(doc["kind"], doc["name"], doc, source, i, layer)
                for i, doc in enumerate(fast)
            )
            continue
        source = read_source(path, display)
        for document in source.documents:
            loaded = _validate_document(source, document, loading)
            if loaded is not None:
                config.resources.append(loaded)
        config.diagnostics.extend(source.problems)


def is_config_name(name: str) -> bool:
    return name.lower().endswith(YAML_SUFFIXES)


def find_files(root: Path) -> tuple[list[str], list[tuple[str, str]], set[str]]:
    """Every *.yaml / *.yml file below ``root`` (any case), in a stable order; the paths that
    cannot be read as config, with why; and the files that are not plainly regular (links,
    FIFOs, devices: opening them decides). Hidden folders are skipped; a folder that cannot
    be listed is an error, never skipped (its resources would look deleted)."""
    found: list[str] = []
    unread: list[tuple[str, str]] = []
    unsure: set[str] = set()
    pending = [os.path.abspath(root)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    name = entry.name
                    if entry.is_dir():
                        if name.startswith("."):
                            continue
                        if is_config_name(name):
                            unread.append((entry.path, _CONFIG_FOLDER))
                        elif entry.is_symlink():
                            unread.append((entry.path, _FOLDER_LINK))
                        else:
                            pending.append(entry.path)
                    elif is_config_name(name):
                        if (
                            entry.is_symlink()
                            and entry.is_file()
                            and not _inside_repository(entry.path, root)
                        ):
                            unread.append((entry.path, _OUTSIDE_LINK))
                            continue
                        found.append(entry.path)
                        if not entry.is_file(follow_symlinks=False):
                            unsure.add(entry.path)
        except OSError as exc:
            unread.append((folder, _folder_problem(exc)))
    found.sort()
    return found, unread, unsure


_FOLDER_LINK = "is a link to a folder, which is not followed; use a real folder"
_CONFIG_FOLDER = "is a folder, not a file; rename it or move it out"
_OUTSIDE_LINK = (
    "is a link to a file outside the repository, which is not read; "
    "move the file into the repository or remove the link"
)


def _inside_repository(link: str, root: Path) -> bool:
    """Whether ``link`` (symlinks resolved) is a file of the config repository, the folder
    ``${file:}`` secrets are confined to (``secrets.repository_root``): a link in a pull
    request must not make the loader read, and echo in its errors, a file of the machine."""
    repo = str(repository_root(root))
    return os.path.realpath(link).startswith(repo.rstrip(os.sep) + os.sep)


def _folder_problem(exc: OSError) -> str:
    return (
        f"cannot read folder: {exc.strerror}; fix its permissions (a folder that is not "
        "read would look like deleted resources)"
    )


# --- the fast path: whole files that are valid, read in parallel on large trees ------------

PARALLEL_MIN_FILES = 2000


def _fast_file(path: str, regular: bool) -> list[dict[str, Any]] | None:
    """Normalised documents of a file that is valid on its own, or None (take the slow path)."""
    docs = fast_documents(path, regular=regular)
    if docs is None:
        return None
    out = []
    for data in docs:
        kind = data.get("kind")
        try:
            if kind not in kinds.names() or not documents.is_valid(kind, data):
                return None
        except (ValueError, UnicodeError):  # e.g. a non-text key: the careful path says why
            return None
        out.append(documents.normalize(kind, data))
    return out


def _fast_chunk(paths: list[str], unsure: set[str]) -> list[list[dict[str, Any]] | None]:
    return [_fast_file(p, p not in unsure) for p in paths]


def _fast_files(paths: list[str], unsure: set[str]) -> list[list[dict[str, Any]] | None]:
    """``_fast_file`` for each path; forked workers share the work on large trees."""
    import multiprocessing

    workers = min(os.cpu_count() or 1, 8)
    if (
        len(paths) < PARALLEL_MIN_FILES
        or workers < 2
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return _fast_chunk(paths, unsure)
    # this process takes a larger share: the workers also pay for sending their results back
    own = int(len(paths) * 1.2 / (workers + 0.2))
    size = -(-(len(paths) - own) // (workers - 1))
    chunks = [paths[:own]] + [paths[i : i + size] for i in range(own, len(paths), size)]
    with multiprocessing.get_context("fork").Pool(len(chunks) - 1) as pool:
        pending = pool.map_async(partial(_fast_chunk, unsure=unsure), chunks[1:])
        results = _fast_chunk(chunks[0], unsure)  # this process takes a share too
        for part in pending.get():
            results.extend(part)
    return results


def _kinds_list() -> str:
    return ", ".join(kinds.names())


def _validate_document(
    source: SourceFile, document: Document, loading: _Loading | None = None
) -> Loaded | None:
    loading = loading or _Loading(Scope(None))
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
    if kind is None or kind not in kinds.names():
        positioned = source.document(document.index)
        if positioned.data is None:
            return None  # the careful parser refused the document and said why
        if kind is None:
            line, column = positioned.position(())
            source.error(line, column, f"missing 'kind'; one of {_kinds_list()}")
            return None
        line, column = positioned.position(("kind",))
        hint = did_you_mean(str(kind), kinds.names())
        source.error(line, column, f"unknown kind '{kind}'{hint}; one of {_kinds_list()}")
        return None
    if "patch" in data:
        flag = data["patch"]
        if flag is True and isinstance(data.get("name"), str):
            patch = _Patch(source, document.index, loading.layer, kind, data["name"])
            loading.patches.append(patch)
            return None
        at = source.document(document.index)
        if flag is True:
            line, column = at.position(("name",) if "name" in data else (), key="name" in data)
            source.error(line, column, "a patch needs the 'name' (text) of the resource it changes")
            return None
        if flag is not False:
            line, column = at.position(("patch",))
            source.error(line, column, f"patch: expected true or false, got {_describe(flag)}")
            return None
    marked = loading.marked(source)
    prepared = prepare_document(source, document.index, kind, data, loading.scope, marked=marked)
    if prepared is None:
        loading.refused.add((kind, str(data.get("name"))))
        return None
    data, origins = prepared
    try:
        valid = documents.is_valid(kind, data)
    except (ValueError, UnicodeError):
        # keys that are not text, or text that is not Unicode: the careful parser reports
        # them and leaves them out, so the rest of the document is still checked
        raw = source.document(document.index).data
        again = prepare_document(
            source, document.index, kind, raw, loading.scope, quiet=True, marked=marked
        )
        valid = again is not None and documents.is_valid(kind, again[0])
        if again is not None:
            data, origins = again
    if not valid:
        loading.refused.add((kind, str(data.get("name"))))
        _report_invalid(source, document.index, kind, loading.scope, origins, marked)
        return None
    normal = documents.normalize(kind, data)
    return Loaded(kind, normal["name"], normal, source, document.index, loading.layer)


def prepare_document(
    source: SourceFile,
    index: int,
    kind: str,
    data: Any,
    scope: Scope,
    *,
    quiet: bool = False,
    marked: bool | None = None,
) -> tuple[dict[str, Any], dict[Path_, str]] | None:
    """A document as the schema sees it: without ``patch``, its variables substituted
    (with which path took which variable); None when a reference is wrong (reported at it
    unless ``quiet``)."""
    if not isinstance(data, dict):
        return None
    if "patch" in data:
        data = {k: v for k, v in data.items() if k != "patch"}
    if not (_has_mark(source) if marked is None else marked):
        return data, {}
    failed = False

    def report(path: Path_, message: str, reference: str) -> None:
        nonlocal failed
        failed = True
        if not quiet:
            line, column = _reference_position(source, index, path, reference)
            source.error(line, column, message)

    secret = frozenset(documents.secret_paths(kind))
    substituted, origins = scope.substitute(data, secret, report)
    return None if failed else (substituted, origins)


def _has_mark(source: SourceFile) -> bool:
    return not source.text or MARK in source.text


def _reference_position(
    source: SourceFile, index: int, path: Path_, reference: str
) -> tuple[int, int]:
    """Where ``reference`` is written: in the value at ``path`` (its column inside text)."""
    line, column = source.document(index).position(path)
    lines = source.text.splitlines()
    if 0 < line <= len(lines):
        found = lines[line - 1].find(reference, column - 1)
        if found >= 0:
            return line, found + 1
    return line, column


def _report_invalid(
    source: SourceFile,
    index: int,
    kind: str,
    scope: Scope,
    origins: dict[Path_, str],
    marked: bool,
) -> None:
    document = source.document(index)
    if document.data is None:
        return  # the precise parser refused the file and said why
    prepared = prepare_document(
        source, index, kind, document.data, scope, quiet=True, marked=marked
    )
    if prepared is None:  # pragma: no cover - the references were fine a moment ago
        return
    found = False
    for path, message, at_key in schema_problems(kind, prepared[0]):
        found = True
        line, column = document.position(path, key=at_key)
        source.error(line, column, message + ("" if at_key else scope.note(path, origins)))
    if not found:  # pragma: no cover - the two validators disagree; say so without values
        source.error(document.line, document.column, f"document does not match the {kind} schema")


# --- patch: true -----------------------------------------------------------------------


def _apply_patches(
    config: Config, patches: list[_Patch], refused: set[tuple[str, str]], scope: Scope
) -> None:
    """Merge each patch into its base in ``config.resources`` (in the order the folders were
    read); a patch without a base, or a merge the schema refuses, is an error."""
    first: dict[tuple[str, str], int] = {}
    for position, item in enumerate(config.resources):
        first.setdefault((item.kind, item.name), position)
    merged: dict[int, dict[str, Any]] = {}
    dropped: set[int] = set()
    for patch in patches:
        key = (patch.kind, patch.name)
        at = first.get(key)
        base = config.resources[at] if at is not None else None
        if at is None or base is None or base.layer >= patch.layer:
            if key not in refused:  # a base with errors has said so already
                config.diagnostics.append(_no_base(patch, scope))
            continue
        if at in dropped:
            continue
        before = len(patch.source.problems)
        changes = prepare_document(
            patch.source, patch.index, patch.kind, patch.source.document(patch.index).data, scope
        )
        config.diagnostics.extend(patch.source.problems[before:])
        raw = merged.get(at)
        if raw is None:
            prepared = prepare_document(
                base.source,
                base.index,
                base.kind,
                base.source.document(base.index).data,
                scope,
                quiet=True,
            )
            raw = prepared[0] if prepared is not None else None
        if changes is None or raw is None:
            dropped.add(at)
            continue
        overrides = dict(base.overrides or {})
        data = merge(raw, changes[0], (patch.source, patch.index), overrides)
        candidate = Loaded(base.kind, base.name, data, base.source, base.index, base.layer)
        candidate.overrides = overrides
        if not documents.is_valid(base.kind, data):
            config.diagnostics.extend(_patch_problems(candidate))
            dropped.add(at)
            continue
        merged[at] = data
        candidate.data = documents.normalize(base.kind, data)
        config.resources[at] = candidate
    if dropped:
        config.resources = [r for i, r in enumerate(config.resources) if i not in dropped]


def _patch_problems(item: Loaded) -> list[Diagnostic]:
    return [
        item.diagnostic(path, "error", message, key=at_key)
        for path, message, at_key in schema_problems(item.kind, item.data)
    ]


def _no_base(patch: _Patch, scope: Scope) -> Diagnostic:
    environment = scope.environment
    if environment is not None and len(environment.dirs) > 1:
        folders = ", ".join(str(d) for d in environment.dirs[: patch.layer]) or "none"
        where = (
            f"no earlier folder of environment '{environment.name}' defines it (earlier: {folders})"
        )
    else:
        where = (
            "nothing before it defines it (a patch changes a resource of an earlier folder "
            "of an environment's dirs in channelsync.yaml)"
        )
    line, column = patch.source.document(patch.index).position(("name",))
    message = (
        f"patch of {patch.kind} '{patch.name}' has no base: {where}; define it there, or "
        "remove 'patch: true'"
    )
    return Diagnostic(patch.source.display, line, column, "error", message)


# --- schema errors -> user messages -------------------------------------------------------


@cache
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(documents.kind_schema(kind))


kinds.watch(_validator.cache_clear)


def schema_problems(kind: str, data: dict[str, Any]) -> Iterator[tuple[Path_, str, bool]]:
    """(path, message, whether at the key) of each way ``data`` fails the kind's schema."""
    for error in sorted(_validator(kind).iter_errors(data), key=lambda e: list(map(str, e.path))):
        yield from explain_schema_error(error)


def explain_schema_error(error: SchemaError) -> Iterator[tuple[Path_, str, bool]]:
    """(path, message, whether at the key) for each problem behind a schema error."""
    types = [e.validator_value for e in error.context or ()]
    if (
        error.validator == "anyOf"
        and types
        and "null" not in types
        and all(e.validator == "type" and not e.path for e in error.context)
    ):  # a value of one of several types (a variable's)
        path: Path_ = tuple(error.absolute_path)
        if "number" in types and "integer" in types:
            types.remove("integer")
        words = [_TYPE_WORDS.get(str(t), str(t)).replace(" or ", "/") for t in types]
        wanted = ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else words[0]
        yield path, f"{_dotted(path)}: expected {wanted}, got {_describe(error.instance)}", False
        return
    for leaf in _leaves(error):
        yield from _explain(leaf)


def _leaves(error: SchemaError) -> Iterator[SchemaError]:
    """The errors behind an anyOf (an optional field): all of them when only one branch
    (the field's own schema, not null) could apply, else the one that explains it best."""
    from jsonschema.exceptions import best_match

    if error.validator not in ("anyOf", "oneOf") or not error.context:
        yield error
        return
    branches = [
        e
        for e in error.context
        if not (isinstance(e.schema, dict) and e.schema.get("type") == "null")
    ]
    if branches and len({e.relative_schema_path[0] for e in branches}) == 1:
        for branch in sorted(branches, key=lambda e: list(map(str, e.path))):
            yield from _leaves(branch)
    else:
        yield from _leaves(best_match(branches or error.context))


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
        refused = schema.get("x-refused", {})  # fields with a reason of their own
        for key in value:
            if key in refused:
                yield (*path, key), f"{_dotted((*path, key))}: {refused[key]}", True
            elif key not in allowed:
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
    elif isinstance(value, str) and (hidden := hidden_problem(value)) is not None:
        yield path, f"{where}: {hidden}", False
    elif secret:
        problem = ref_problem(value) if isinstance(value, str) else None
        yield path, f"{where}: {problem or 'must be a secret reference'}", False
    elif validator == "pattern":
        yield path, f"{where}: {_pattern_message(schema, value)}", False
    elif validator in ("minLength", "minProperties"):
        yield path, f"{where}: must not be empty", False
    elif validator == "maxLength":
        yield path, f"{where}: longer than {schema.get('maxLength')} characters", False
    else:
        yield path, f"{where}: {error.message}", False


def _pattern_message(schema: dict[str, Any], value: Any) -> str:
    if schema.get("format") == "email":
        return f"'{value}' is not a valid email address (expected name@domain.tld)"
    if isinstance(value, str) and not value.strip():
        return "must not be blank"
    if schema.get("format") == "hostname":
        return f"'{value}' is not a valid host name or IP address"
    if schema.get("format") == "dkim-selector":
        return (
            f"'{value}' is not a DKIM selector (DNS labels of 1-63 letters, digits or hyphens, "
            "separated by dots)"
        )
    return f"'{value}' does not match {schema.get('pattern')}"
