"""Live state -> YAML files, editing existing files in place (comments and order kept).

A resource the config already defines is updated inside its own document (ruamel.yaml
round-trip); any other gets a file of its own, written without the fields that equal their
defaults. Secrets come back as references: the one the config already uses, or a new
``${env:...}`` placeholder that the report lists so the admin knows what to set.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from channelsync import kinds
from channelsync.document import (
    copy_mappings,
    get_path,
    is_valid,
    normalize,
    secret_paths,
    set_path,
)
from channelsync.errors import ExportRefused as ExportRefused
from channelsync.fsio import write_atomic
from channelsync.loader import Config, Loaded
from channelsync.plan import target_form
from channelsync.plan.build import select
from channelsync.plan.diff import walk
from channelsync.secrets import placeholder
from channelsync.targets.base import Key, LiveResource, Target
from channelsync.yamlsource import round_trip


@dataclass
class ExportReport:
    written: list[Path] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    not_pruned: list[str] = field(default_factory=list)  # not in the tenant, kept (no --prune)
    already: list[str] = field(default_factory=list)  # --only: in the config already, untouched
    needs: list[str] = field(default_factory=list)  # --only: references the config lacks
    placeholders: list[tuple[str, str]] = field(default_factory=list)  # (variable, what)
    # each new placeholder reference -> the endpoints its connection test sends it to
    bindings: dict[str, list[str]] = field(default_factory=dict)
    _new: list[tuple[str, LiveResource, tuple[str, ...]]] = field(default_factory=list)


def _yaml() -> Any:
    return round_trip(preserve_quotes=True)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "resource"


def _env_name(res: LiveResource, path: tuple[str, ...]) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", f"{res.name}_{'_'.join(path)}".upper()).strip("_")


def wanted_document(
    res: LiveResource, existing: Loaded | None, report: ExportReport
) -> dict[str, Any]:
    """The live resource as a minimal config document, secrets as references."""
    return _minimal(res.kind, _live_document(res, existing, report))


def _live_document(
    res: LiveResource, existing: Loaded | None, report: ExportReport
) -> dict[str, Any]:
    """The live resource in normalised form, secrets as references."""
    doc = copy_mappings(res.data)
    doc = {"kind": res.kind, **{k: v for k, v in doc.items() if k != "kind"}}
    for path in secret_paths(res.kind):
        if get_path(doc, path) is None:
            continue
        ref = get_path(existing.data, path) if existing is not None else None
        if ref is None:
            variable = _env_name(res, path)
            ref = placeholder(variable)
            report.placeholders.append((variable, f"{res.kind} '{res.name}' {'.'.join(path)}"))
            report._new.append((ref, res, path))
        set_path(doc, path, ref)
    return normalize(res.kind, doc)  # also schema key order


def _minimal(kind: str, doc: dict[str, Any]) -> dict[str, Any]:
    """Drop every field whose absence normalises back to the same value."""
    full = normalize(kind, doc)
    paths = [path for path, _ in walk(doc) if "kind" not in path and "name" not in path]
    for path in sorted(paths, key=len, reverse=True):
        trial = copy_mappings(doc)
        parent = get_path(trial, path[:-1]) if len(path) > 1 else trial
        parent.pop(path[-1], None)
        if is_valid(kind, trial) and normalize(kind, trial) == full:
            doc = trial
    return doc


def export(
    target: Target,
    directory: Path,
    config: Config | None,
    *,
    prune: bool = False,
    only: list[str] | None = None,
) -> ExportReport:
    """``config`` is the valid config already in ``directory`` (None: nothing there yet).

    A resource the tenant does not have keeps its document unless ``prune``; an empty tenant
    is refused outright (a wrong or new tenant must not turn into deleted config files).
    ``only`` (NAME or Kind/NAME): adopt just these live resources, each into a new file;
    nothing the config has is touched.
    """
    report = ExportReport()
    live = target.read()
    if not live:
        raise ExportRefused(
            f"the tenant {target.url} is empty: there is nothing to export; "
            "the config files were left as they are"
        )
    resources = config.resources if config is not None else []
    defined: dict[Key, Loaded] = {(r.kind, r.name): r for r in resources}
    if only:
        _adopt(target, directory, live, defined, select(only, set(live), "the tenant"), report)
        return report
    by_file: dict[str, list[tuple[Loaded, dict[str, Any] | None]]] = {}
    in_sync = {r.source.path for r in resources}  # files whose every document is in sync
    for key, item in defined.items():
        res = live.get(key)
        if res is None and not prune:
            report.not_pruned.append(
                f"{item.kind} '{item.name}' from {item.source.display} (not in the tenant)"
            )
            continue
        full = _live_document(res, item, report) if res is not None else None
        # in sync: what plan would compare (target forms) is the same on both sides
        if full is None or (
            full != item.data and target_form(replace(item, data=full)) != target_form(item)
        ):
            in_sync.discard(item.source.path)
        by_file.setdefault(item.source.path, []).append((item, full))
        if res is None:
            report.removed.append(f"{item.kind} '{item.name}' (not in the tenant)")
    for source, items in sorted(by_file.items()):
        if source in in_sync:
            continue  # says what the tenant says: not round-tripped (nor reformatted)
        shown = Path(items[0][0].source.display)  # the path as given: errors name it so
        minimal = [(i, _minimal(i.kind, full) if full is not None else None) for i, full in items]
        if _update_file(shown, minimal):
            if shown.exists():
                report.written.append(shown)
            else:
                report.removed.append(f"{shown} (no resource left in it)")
    _write_new(target, directory, [live[k] for k in sorted(set(live) - set(defined))], report)
    _bind_placeholders(report, live)
    return report


def _write_new(
    target: Target, directory: Path, new: list[LiveResource], report: ExportReport
) -> None:
    """A file of its own for each resource, never over an existing file."""
    directory.mkdir(parents=True, exist_ok=True)
    for res in new:
        header = f"# exported by channelsync from {target.url}\n"
        text = header + _dump([wanted_document(res, None, report)])
        counter = 1
        while True:
            suffix = f"-{counter}" if counter > 1 else ""
            target_file = directory / f"{slug(res.kind)}-{slug(res.name)}{suffix}.yaml"
            try:
                write_atomic(target_file, text, exclusive=True)
                break
            except FileExistsError:
                counter += 1
        report.written.append(target_file)


def _adopt(
    target: Target,
    directory: Path,
    live: dict[Key, LiveResource],
    defined: dict[Key, Loaded],
    selected: set[Key],
    report: ExportReport,
) -> None:
    """``export --only``: the selected live resources the config lacks, and what they need."""
    for key in sorted(selected & set(defined)):
        item = defined[key]
        report.already.append(f"{item.kind} '{item.name}' ({item.source.display})")
    adopted = sorted(selected - set(defined))
    _write_new(target, directory, [live[k] for k in adopted], report)
    builtin = kinds.builtin_names()
    for key in adopted:
        res = live[key]
        for path, kind, name in kinds.references_of(res.kind, res.data):
            if (kind, name) in defined or (kind, name) in selected or builtin.get(kind) == name:
                continue
            report.needs.append(
                f"{res.kind} '{res.name}' needs {kind} '{name}' ({'.'.join(path)}), which the "
                f"config does not have: adopt it too with --only '{kind}/{name}'"
            )
    _bind_placeholders(report, live)


def _bind_placeholders(report: ExportReport, live: dict[Key, LiveResource]) -> None:
    from channelsync.bindings import endpoints_of

    servers = {r.name: r.data for r in live.values() if r.kind == "SmtpServer"}
    for ref, res, path in report._new:
        report.bindings[ref] = endpoints_of(res.kind, res.data, path, servers)


def _dump(documents: list[Any]) -> str:
    stream = io.StringIO()
    _yaml().dump_all(documents, stream)
    return stream.getvalue()


def _update_file(path: Path, items: list[tuple[Loaded, dict[str, Any] | None]]) -> bool:
    yaml = _yaml()
    text = path.read_text(encoding="utf-8")
    documents = list(yaml.load_all(text))
    keep = []
    wanted_by_index = {item.index: wanted for item, wanted in items}
    for index, document in enumerate(documents):
        if index not in wanted_by_index:
            keep.append(document)
            continue
        wanted = wanted_by_index[index]
        if wanted is None:
            continue  # the resource is gone from the tenant
        kind = str(document.get("kind"))
        _merge(document, wanted, normalize(kind, wanted), _local_paths(kind), ())
        keep.append(document)
    if not keep:
        path.unlink()
        return True
    new_text = _dump(keep)
    if new_text == text:
        return False
    write_atomic(path, new_text)
    return True


def _local_paths(kind: str) -> set[tuple[str, ...]]:
    return {*kinds.get(kind).local_fields, ("renamed_from",), ("kind",)}


def _merge(
    node: Any,
    wanted: dict[str, Any],
    full: dict[str, Any],
    keep: set[tuple[str, ...]],
    at: tuple[str, ...],
) -> None:
    """Make the round-trip mapping ``node`` say what ``wanted`` says, touching nothing else.

    A field the minimal form leaves out stays explicit (with the tenant's value) when the
    file spells it out, and local fields (connection tests only) are left alone.
    """
    for key, value in wanted.items():
        current = node.get(key)
        if isinstance(value, dict) and hasattr(current, "items"):
            _merge(current, value, full.get(key) or {}, keep, (*at, key))
        elif current != value:
            node[key] = _styled_like(current, value)
    for key in list(node):
        if key in wanted or (*at, key) in keep:
            continue
        if full.get(key) is None:
            del node[key]
        elif _plain(node[key]) != full[key]:
            node[key] = full[key]


def _styled_like(current: Any, value: Any) -> Any:
    """A new list keeps the flow style ([a, b]) of the one it replaces."""
    from ruamel.yaml.comments import CommentedSeq

    if isinstance(current, CommentedSeq) and isinstance(value, list):
        seq = CommentedSeq(value)
        if current.fa.flow_style():
            seq.fa.set_flow_style()
        return seq
    return value


def _plain(value: Any) -> Any:
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
