"""``channelsync compare ENV_A ENV_B``: how two environments' desired states differ.

Both configs are loaded as their commands would (variables substituted, patches merged,
every default applied), so a promotion review sees what each tenant would be told, field by
field. Nothing is read from a target and no secret is read: a secret field shows its reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from channelsync import kinds
from channelsync.document import get_path
from channelsync.plan.diff import changed_paths

if TYPE_CHECKING:
    from channelsync.desired import Config, Loaded

Status = Literal["changed", "only_in_from", "only_in_to"]


@dataclass(frozen=True)
class FieldDifference:
    path: str
    before: Any  # in the first environment (None: not set)
    after: Any


@dataclass(frozen=True)
class Difference:
    kind: str
    name: str
    status: Status
    fields: list[FieldDifference] = field(default_factory=list)


@dataclass(frozen=True)
class Comparison:
    first: str
    second: str
    differences: list[Difference]
    same: int  # resources equal in both

    @property
    def differ(self) -> bool:
        return bool(self.differences)


def _desired(item: Loaded) -> dict[str, Any]:
    return {k: v for k, v in item.data.items() if k != "renamed_from"}


def compare(first: str, a: Config, second: str, b: Config) -> Comparison:
    """The differences from ``a`` (environment ``first``) to ``b``, in the kinds' order."""
    left = {(r.kind, r.name): r for r in a.resources}
    right = {(r.kind, r.name): r for r in b.resources}
    order = {name: i for i, name in enumerate(kinds.dependency_order())}
    keys = sorted(left.keys() | right.keys(), key=lambda k: (order.get(k[0], 99), k[1]))
    out: list[Difference] = []
    same = 0
    for kind, name in keys:
        x, y = left.get((kind, name)), right.get((kind, name))
        if y is None:
            out.append(Difference(kind, name, "only_in_from"))
        elif x is None:
            out.append(Difference(kind, name, "only_in_to"))
        else:
            before, after = _desired(x), _desired(y)
            paths = changed_paths(before, after)
            if not paths:
                same += 1
                continue
            fields = [f for p in paths for f in _fields(p, _at(before, p), _at(after, p))]
            out.append(Difference(kind, name, "changed", fields))
    return Comparison(first, second, out, same)


def _fields(path: str, before: Any, after: Any) -> list[FieldDifference]:
    """One difference per field: a section one side sets and the other does not (a patch's
    ``outgoing: null``) is each of its set fields, as plan shows a created resource."""
    if isinstance(before, dict) and isinstance(after, dict):
        keys = list(dict.fromkeys([*before, *after]))
        return [
            f
            for k in keys
            if before.get(k) != after.get(k)
            for f in _fields(f"{path}.{k}", before.get(k), after.get(k))
        ]
    if isinstance(before, dict) and after is None:
        return [f for k, v in before.items() for f in _fields(f"{path}.{k}", v, None)]
    if isinstance(after, dict) and before is None:
        return [f for k, v in after.items() for f in _fields(f"{path}.{k}", None, v)]
    if before is None and after is None:
        return []
    return [FieldDifference(path, before, after)]


def _at(doc: dict[str, Any], dotted: str) -> Any:
    return get_path(doc, tuple(dotted.split(".")))
