"""``patch: true``: a document of a later folder that changes a resource of an earlier one.

An environment reads its ``dirs`` in order (``channels.d/common``, then ``channels.d/prod``);
a document with ``patch: true`` is merged into the resource of the same kind and name that an
earlier folder defines: mappings key by key, anything else (lists included) replaced, ``null``
removes the key. The merged document is then checked as one, and every value keeps the
position of the file that set it. Two definitions without ``patch`` stay a duplicate name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from channelsync import document as documents
from channelsync.desired import Loaded
from channelsync.errors import Diagnostic
from channelsync.yamlsource import Path_, SourceFile

if TYPE_CHECKING:
    from channelsync.desired import Config
    from channelsync.loader import _Patch
    from channelsync.variables import Scope

Owner = tuple[SourceFile, int]
_IDENTITY = ("kind", "name")


def merge(
    base: dict[str, Any], patch: dict[str, Any], owner: Owner, overrides: dict[Path_, Owner]
) -> dict[str, Any]:
    """``base`` with ``patch`` merged in; ``overrides`` learns which paths the patch set."""

    def into(node: dict[str, Any], changes: dict[str, Any], path: Path_) -> dict[str, Any]:
        out = dict(node)
        for key, value in changes.items():
            here = (*path, key)
            if value is None:
                out.pop(key, None)
            elif type(value) is dict and type(out.get(key)) is dict:
                out[key] = into(out[key], value, here)
            else:
                out[key] = value
                overrides[here] = owner
        return out

    return into(base, {k: v for k, v in patch.items() if k not in _IDENTITY}, ())


def apply_patches(
    config: Config, patches: list[_Patch], refused: set[tuple[str, str]], scope: Scope
) -> None:
    """Merge each patch into its base in ``config.resources`` (in the order the folders were
    read); a patch without a base, or a merge the schema refuses, is an error."""
    from channelsync.loader import prepare_document

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
        candidate = Loaded(base.kind, base.name, data, base.source, base.index, patch.layer)
        candidate.overrides = overrides
        if not documents.is_valid(base.kind, data):
            config.diagnostics.extend(_problems(candidate))
            dropped.add(at)
            continue
        merged[at] = data
        candidate.data = documents.normalize(base.kind, data)
        config.resources[at] = candidate
    if dropped:
        config.resources = [r for i, r in enumerate(config.resources) if i not in dropped]


def _problems(item: Loaded) -> list[Diagnostic]:
    from channelsync.loader import schema_problems

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
