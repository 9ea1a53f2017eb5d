"""Which fields of a resource differ: one engine (deepdiff) for the plan, the audit log of the
served store and export.

A caller first finds the resources that differ with a plain ``==`` (cheap); only those come
here. deepdiff is imported on the first diff, so commands that diff nothing never pay for it.
A missing key and a key set to None are the same (a default the other side leaves out).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

FieldPath = tuple[str, ...]


def walk(doc: dict[str, Any], prefix: FieldPath = ()) -> Iterator[tuple[FieldPath, Any]]:
    """Every key of nested mappings with its value, a mapping before the keys inside it."""
    for key, value in doc.items():
        path = (*prefix, key)
        yield path, value
        if isinstance(value, dict):
            yield from walk(value, path)


def leaves(doc: dict[str, Any]) -> Iterator[tuple[FieldPath, Any]]:
    """The keys whose values are not mappings, with those values."""
    return ((path, value) for path, value in walk(doc) if not isinstance(value, dict))


def changed(pairs: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> list[set[FieldPath]]:
    """For each (before, after) pair, the paths of the fields that differ, from one deepdiff
    run over all pairs (deepdiff costs per call as well as per node). A list (queues) changes
    as a whole, and so does a mapping that appears or goes: its path is the list's or the
    mapping's own."""
    if not pairs:
        return []
    from deepdiff import DeepDiff
    from deepdiff.helper import notpresent

    def absent(value: Any, _path: str) -> bool:
        return value is None or value is notpresent

    befores: dict[int, dict[str, Any]] = {}
    afters: dict[int, dict[str, Any]] = {}
    for index, (before, after) in enumerate(pairs):
        # only the top-level fields that differ go in: fewer nodes for deepdiff to walk
        keys = [k for k in before.keys() | after.keys() if before.get(k) != after.get(k)]
        befores[index] = {k: before.get(k) for k in keys}
        afters[index] = {k: after.get(k) for k in keys}
    out: list[set[FieldPath]] = [set() for _ in pairs]
    diff = DeepDiff(
        befores,
        afters,
        view="tree",
        threshold_to_diff_deeper=0,  # a mapping's changed keys, never the mapping as a whole
        exclude_obj_callback_strict=absent,
    )
    for group in diff:
        for node in diff[group]:
            full = node.path(output_format="list")
            cut = next((i for i, p in enumerate(full[1:], 1) if isinstance(p, int)), len(full))
            out[full[0]].add(tuple(str(p) for p in full[1:cut]))
    return out


def changed_paths(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The dotted paths of the fields that differ between two resources, sorted."""
    if before == after:
        return []
    return sorted(".".join(path) for path in changed([(before, after)])[0])
