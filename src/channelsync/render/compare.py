"""``channelsync compare`` as text or JSON."""

from __future__ import annotations

import json
from typing import Any

from channelsync.compare import Comparison, Difference
from channelsync.render.plan import value

_SYMBOL = {"changed": "~", "only_in_from": "-", "only_in_to": "+"}


def _headline(d: Difference, c: Comparison) -> str:
    where = {"only_in_from": f" (only in {c.first})", "only_in_to": f" (only in {c.second})"}
    return f'  {_SYMBOL[d.status]} {d.kind} "{d.name}"{where.get(d.status, "")}'


def _field(before: Any, after: Any, path: str) -> str:
    if before is None:
        return f"      + {path} = {value(after)}"
    if after is None:
        return f"      - {path} = {value(before)}"
    return f"      ~ {path}: {value(before)} -> {value(after)}"


def summary_line(c: Comparison) -> str:
    counts = {s: sum(1 for d in c.differences if d.status == s) for s in _SYMBOL}
    if not c.differ:
        return f"No differences: {c.first} and {c.second} define the same {c.same} resource(s)."
    return (
        f"{len(c.differences)} resource(s) differ: {counts['changed']} changed, "
        f"{counts['only_in_from']} only in {c.first}, {counts['only_in_to']} only in "
        f"{c.second}; {c.same} the same."
    )


def text(c: Comparison) -> str:
    lines = [f"Compare {c.first} -> {c.second}", ""]
    for d in c.differences:
        lines.append(_headline(d, c))
        lines.extend(_field(f.before, f.after, f.path) for f in d.fields)
        lines.append("")
    lines.append(summary_line(c))
    return "\n".join(lines) + "\n"


def as_json(c: Comparison) -> str:
    document = {
        "format_version": 1,
        "from": c.first,
        "to": c.second,
        "differ": c.differ,
        "summary": {
            "changed": sum(1 for d in c.differences if d.status == "changed"),
            "only_in_from": sum(1 for d in c.differences if d.status == "only_in_from"),
            "only_in_to": sum(1 for d in c.differences if d.status == "only_in_to"),
            "same": c.same,
        },
        "differences": [
            {
                "kind": d.kind,
                "name": d.name,
                "status": d.status,
                "fields": [{"path": f.path, "from": f.before, "to": f.after} for f in d.fields],
            }
            for d in c.differences
        ],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
