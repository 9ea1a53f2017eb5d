"""Which fields of a resource differ: one engine (deepdiff) for the plan, the audit log of the
served store and export.

A caller first finds the resources that differ with a plain ``==`` (cheap); only those come
here, and only their unequal parts reach deepdiff. deepdiff is imported on the first diff, so
commands that diff nothing never pay for it. A missing key and a key set to None are the same
(a default the other side leaves out).
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

    befores: dict[int, dict[str, Any]] = {}
    afters: dict[int, dict[str, Any]] = {}
    for index, (before, after) in enumerate(pairs):
        befores[index], afters[index] = _unequal(before, after)
    out: list[set[FieldPath]] = [set() for _ in pairs]
    # threshold 0: a mapping's changed keys, never the mapping as a whole
    diff = DeepDiff(befores, afters, view="tree", threshold_to_diff_deeper=0)
    for group in diff:
        for node in diff[group]:
            full = node.path(output_format="list")
            cut = next((i for i, p in enumerate(full[1:], 1) if isinstance(p, int)), len(full))
            out[full[0]].add(tuple(str(p) for p in full[1:cut]))
    return out


def _unequal(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The cheap equality check, level by level: both mappings cut down to the keys whose
    values are not ``==`` (a missing key reads as None). deepdiff costs tens of microseconds
    per node it walks; without this cut a plan of 500 changed channels takes half as long
    again. What changed, and how, deepdiff says."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            old[key], new[key] = _unequal(a, b)
        else:
            old[key], new[key] = a, b
    return old, new


def changed_paths(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The dotted paths of the fields that differ between two resources, sorted."""
    if before == after:
        return []
    return sorted(".".join(path) for path in changed([(before, after)])[0])
