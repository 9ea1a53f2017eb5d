"""Drift ignore rules: known, accepted differences, each with a reason and an expiry date.

    ignore:
      - resource: EmailChannel/Legacy*     # Kind/name, shell-style wildcards
        field: incoming.port               # optional; omitted means the whole resource
        expires: 2026-12-31
        reason: mailbox moves to the new server in December

Expired rules stop applying and are reported, so an exception cannot become permanent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import get_args

from pydantic import BaseModel

from channelsync.errors import ConfigError, Diagnostic, Severity
from channelsync.inputfile import regular_problem
from channelsync.plan import Plan
from channelsync.yamlsource import Document, read_source

_FIELDS = ("resource", "field", "expires", "reason")


@dataclass(frozen=True)
class IgnoreRule:
    resource: str
    field: str | None
    expires: dt.date
    reason: str

    def describe(self) -> str:
        what = self.resource + (f" {self.field}" if self.field else "")
        return f"{what} (expires {self.expires.isoformat()}: {self.reason})"


def load_rules(path: Path, warnings: list[Diagnostic] | None = None) -> list[IgnoreRule]:
    """The rules; ``warnings`` gets rules that can never match (a kind misspelt or missing,
    a field no resource has), at the rule's line."""
    reason = regular_problem(path)
    if reason is not None:
        problem = Diagnostic(str(path), 1, 1, "error", f"ignore file {reason}")
        summary = f"the ignore file {reason.split(';')[0]}; fix the path"
        raise ConfigError([problem], summary=summary)
    source = read_source(str(path), str(path))
    if not source.problems:
        source.ensure_positions()
    problems = list(source.problems)
    rules: list[IgnoreRule] = []
    for document in source.documents:
        rules.extend(_parse(document, str(path), problems, warnings))
    if not source.documents and not problems:
        problems.append(Diagnostic(str(path), 1, 1, "error", "ignore file is empty"))
    if problems:
        raise ConfigError(
            problems, summary=f"the ignore file has {len(problems)} error(s); fix them"
        )
    return rules


def _parse(
    document: Document,
    file: str,
    problems: list[Diagnostic],
    warnings: list[Diagnostic] | None = None,
) -> list[IgnoreRule]:
    def problem(path: tuple[str | int, ...], message: str, severity: Severity = "error") -> None:
        line, column = document.position(path)
        found = problems if severity == "error" else warnings
        if found is not None:
            found.append(Diagnostic(file, line, column, severity, message))

    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("ignore"), list):
        problem((), "expected a mapping with an 'ignore' list of rules")
        return []
    out = []
    for i, entry in enumerate(data["ignore"]):
        at: tuple[str | int, ...] = ("ignore", i)
        if not isinstance(entry, dict):
            problem(at, "each rule is a mapping with resource, expires and reason")
            continue
        unknown = [k for k in entry if k not in _FIELDS]
        for key in unknown:
            problem((*at, key), f"unknown field '{key}'; allowed: {', '.join(_FIELDS)}")
        missing = [k for k in ("resource", "expires", "reason") if not entry.get(k)]
        for key in missing:
            problem(at, f"rule needs '{key}'")
        try:
            expires = dt.date.fromisoformat(str(entry.get("expires", "")))
        except ValueError:
            if "expires" not in missing:
                problem((*at, "expires"), "expires must be a date like 2026-12-31")
            continue
        if unknown or missing:
            continue
        field = entry.get("field")
        rule = IgnoreRule(
            str(entry["resource"]), field and str(field), expires, str(entry["reason"])
        )
        for key, message in _never_matches(rule):
            problem((*at, key), message, "warning")
        out.append(rule)
    return out


def _never_matches(rule: IgnoreRule) -> list[tuple[str, str]]:
    """(field of the rule, why) for a rule that cannot match any resource or field."""
    from difflib import get_close_matches

    from channelsync import kinds

    kind, slash, _ = rule.resource.partition("/")
    if not slash:
        return [
            (
                "resource",
                f"ignore rule '{rule.resource}' matches nothing: write Kind/name, "
                f"e.g. EmailChannel/{rule.resource}",
            )
        ]
    names = kinds.names()
    matching = [k for k in names if fnmatchcase(k, kind)]
    if not matching:
        close = get_close_matches(kind, list(names), n=1)
        also = f"did you mean {close[0]}?" if close else f"kinds: {', '.join(names)}"
        return [
            ("resource", f"ignore rule '{rule.resource}' matches nothing: no kind '{kind}'; {also}")
        ]
    if rule.field and not any(
        fnmatchcase(path, rule.field)
        for k in matching
        for path in _field_paths(kinds.get(k).model_class())
    ):
        return [
            (
                "field",
                f"ignore rule field '{rule.field}' matches no field of {' or '.join(matching)}",
            )
        ]
    return []


def _field_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every dotted field path of ``model`` (incoming, incoming.port, ...), as plans name them."""
    for name, info in model.model_fields.items():
        path = prefix + (info.alias or name)
        yield path
        for inner in (info.annotation, *get_args(info.annotation)):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                yield from _field_paths(inner, path + ".")


def split_expired(
    rules: list[IgnoreRule], today: dt.date
) -> tuple[list[IgnoreRule], list[IgnoreRule]]:
    active = [r for r in rules if r.expires >= today]
    return active, [r for r in rules if r.expires < today]


def apply_rules(plan: Plan, rules: list[IgnoreRule]) -> Plan:
    """The plan without the changes (or field changes) that active rules accept; the changes
    left out entirely are counted in ``ignored``, not as unchanged; so are those with some
    of their differences left out (and counted as changes too, for what is left)."""
    kept = []
    ignored = 0
    for change in plan.changes:
        ident = f"{change.kind}/{change.name}"
        matching = [r for r in rules if fnmatchcase(ident, r.resource)]
        if any(r.field is None for r in matching):
            ignored += 1
            continue
        fields = [
            f
            for f in change.fields
            if not any(fnmatchcase(f.path, r.field or "") for r in matching)
        ]
        ignored += len(fields) < len(change.fields)
        if change.action == "update" and change.fields and not fields:
            continue
        kept.append(replace(change, fields=fields))
    return replace(plan, changes=kept, ignored=plan.ignored + ignored)
