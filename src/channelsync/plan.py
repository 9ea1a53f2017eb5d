"""Desired state + live state -> Plan (the diff), saved plans and their staleness.

Both sides are in the normalised form (every default applied once, in the model), so a file
that omits a default never differs from a live value equal to it. Equal resources are found
with a plain comparison; only the ones that differ go through deepdiff for field changes.
Secrets compare by the target's keyed fingerprints and never enter a plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from channelsync.defaults import KIND_NAMES, LOCAL_FIELDS
from channelsync.document import copy_mappings, get_path, secret_paths, set_path
from channelsync.errors import ChannelsyncError
from channelsync.inputfile import TooDeep, UnreadableFile, read_json
from channelsync.loader import Config, Loaded
from channelsync.perf import paused_gc
from channelsync.secrets import SecretUnavailable, parse_ref
from channelsync.targets.base import Key, LiveResource, Target

FORMAT_VERSION = 1
MAX_PLAN_BYTES = 64 * 1024 * 1024
SENSITIVE = "(sensitive)"
ACTIONS = ("create", "update", "rename", "delete")
_UNRESOLVED = "(cannot compare)"
_MAX_SECRET_WARNINGS = 10


class StalePlan(ChannelsyncError):
    pass


@dataclass
class FieldChange:
    path: str
    before: Any
    after: Any
    sensitive: bool = False


@dataclass
class Change:
    kind: str
    name: str
    action: str
    previous_name: str | None = None
    fields: list[FieldChange] = field(default_factory=list)
    live_etag: str | None = None

    @property
    def key(self) -> Key:
        return (self.kind, self.name)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "previous_name": self.previous_name,
            "fields": [asdict(f) for f in self.fields],
        }


@dataclass
class Plan:
    target: str
    changes: list[Change]
    no_op: int
    warnings: list[str]
    config_fingerprint: str  # "" unless asked for (saving or checking a plan reads it)
    live_count: int = 0
    only: list[str] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(ACTIONS, 0)
        for change in self.changes:
            counts[change.action] += 1
        return {**counts, "no_op": self.no_op}

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def as_json(self) -> dict[str, Any]:
        """The documented, versioned JSON plan (see README, 'JSON plan format')."""
        return {
            "format_version": FORMAT_VERSION,
            "target": self.target,
            "summary": self.summary,
            "changes": [c.as_json() for c in self.changes],
            "warnings": self.warnings,
        }

    # --- saved plans ---------------------------------------------------------------

    def save(self, path: Path) -> None:
        assert self.config_fingerprint, "make_plan(..., fingerprint=True) for a saved plan"
        saved = self.as_json()
        saved["config_fingerprint"] = self.config_fingerprint
        saved["live_count"] = self.live_count
        saved["no_op"] = self.no_op
        saved["only"] = self.only
        for entry, change in zip(saved["changes"], self.changes, strict=True):
            entry["live_etag"] = change.live_etag
        try:
            path.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ChannelsyncError(f"cannot write plan file {path}: {exc.strerror}") from None

    @classmethod
    def load(cls, path: Path) -> Plan:
        try:
            saved = read_json(str(path), MAX_PLAN_BYTES, limit_text="64 MiB")
            if saved.get("format_version") != FORMAT_VERSION:
                raise ValueError("format_version")
            changes = [
                Change(
                    _text(c["kind"]),
                    _text(c["name"]),
                    _text(c["action"]),
                    _text(c.get("previous_name"), optional=True),
                    [FieldChange(**f) for f in c["fields"]],
                    _text(c.get("live_etag"), optional=True),
                )
                for c in saved["changes"]
            ]
            if not isinstance(saved["config_fingerprint"], str):
                raise TypeError("config_fingerprint")
            return cls(
                saved["target"],
                changes,
                int(saved["no_op"]),
                list(saved["warnings"]),
                saved["config_fingerprint"],
                int(saved.get("live_count", 0)),
                list(saved.get("only", [])),
            )
        except OSError as exc:
            raise ChannelsyncError(f"cannot read plan file {path}: {exc.strerror}") from None
        except TooDeep as exc:
            raise ChannelsyncError(
                f"{path}:{exc.line}:{exc.column}: {exc}; it is not a channelsync plan file"
            ) from None
        except UnreadableFile as exc:
            raise ChannelsyncError(f"cannot read plan file {path}: {exc}") from None
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ChannelsyncError(
                f"{path} is not a channelsync plan file (format_version {FORMAT_VERSION})"
            ) from None


def _text(value: Any, *, optional: bool = False) -> Any:
    """A saved plan's string field, checked (a plan file may have been edited by hand)."""
    if isinstance(value, str) or (optional and value is None):
        return value
    raise TypeError(value)


# --- building a plan -----------------------------------------------------------------


def config_fingerprint(config: Config) -> str:
    # repr is stable here: normalised documents have schema key order and plain values
    digest = hashlib.sha256()
    for item in sorted(config.resources, key=lambda r: (r.kind, r.name)):
        digest.update(repr((item.kind, item.name, item.data)).encode())
    return "sha256:" + digest.hexdigest()


def target_form(item: Loaded) -> dict[str, Any]:
    """The resource as a target sees it (no local-only fields, no renamed_from), in mappings
    of its own that the caller may change."""
    doc = copy_mappings(item.data)
    doc.pop("renamed_from", None)
    for *parents, name in LOCAL_FIELDS[item.kind]:
        node = get_path(doc, tuple(parents)) if parents else doc
        if isinstance(node, dict):
            node.pop(name, None)
    return doc


def _comparable(
    item: Loaded, target: Target, live: LiveResource | None, unresolved: list[Unresolved]
) -> dict[str, Any]:
    """The resource as the target would show it: target form, secrets as fingerprints."""
    doc = target_form(item)
    secrets = [(p, v) for p in secret_paths(item.kind) if (v := get_path(doc, p)) is not None]
    for path, ref_text in secrets:
        ref = parse_ref(ref_text)
        assert ref is not None  # the loader checked the syntax
        try:
            base = item.base_dir if ref.source == "file" else None
            value: Any = target.fingerprint(ref.resolve(base))
        except SecretUnavailable as exc:
            if live is None:  # a create: nothing to compare with
                value = _UNRESOLVED
            else:
                unresolved.append((item, path, str(exc)))
                value = get_path(live.data, path)
        set_path(doc, path, value)
    return doc


def _prefetch_fingerprints(config: Config, target: Target) -> None:
    """Remote targets fingerprint many secrets in one request (they cache the answers)."""
    many = getattr(target, "fingerprint_many", None)
    if many is None:
        return
    values = []
    for item in config.resources:
        for path in secret_paths(item.kind):
            text = get_path(item.data, path)
            ref = parse_ref(text) if text is not None else None
            if ref is None:
                continue
            with contextlib.suppress(SecretUnavailable):
                values.append(ref.resolve(item.base_dir if ref.source == "file" else None))
    if values:
        many(values)


def make_plan(
    config: Config, target: Target, *, only: Iterable[str] = (), fingerprint: bool = False
) -> Plan:
    """``fingerprint``: also fingerprint the config, for saving the plan or checking a saved
    one (it reads every resource again, so only then)."""
    with paused_gc():
        plan = _make_plan(config, target, only)
    if fingerprint:
        plan.config_fingerprint = config_fingerprint(config)
    return plan


def _make_plan(config: Config, target: Target, only: Iterable[str]) -> Plan:
    live = target.read()
    _prefetch_fingerprints(config, target)
    unresolved: list[Unresolved] = []
    changes: list[Change] = []
    no_op = 0
    seen: set[Key] = set()
    differing: list[tuple[Change, dict[str, Any], dict[str, Any]]] = []
    for item in config.resources:
        key = (item.kind, item.name)
        current = live.get(key)
        previous = item.data.get("renamed_from")
        action = "update"
        if current is None and previous is not None and (item.kind, previous) in live:
            current = live[(item.kind, previous)]
            action = "rename"
        if current is not None:
            seen.add((current.kind, current.name))
        desired = _comparable(item, target, current, unresolved)
        if current is None:
            created = _created(item.kind, desired)
            changes.append(Change(item.kind, item.name, "create", fields=created))
            continue
        before = dict(current.data, name=item.name) if action == "rename" else current.data
        if action == "update" and desired == before:
            no_op += 1
            continue
        change = Change(item.kind, item.name, action, current.name if action == "rename" else None)
        change.live_etag = current.etag
        changes.append(change)
        differing.append((change, before, desired))
    _fill_field_changes(differing)
    for key in sorted(set(live) - seen):
        gone = live[key]
        changes.append(Change(gone.kind, gone.name, "delete", live_etag=gone.etag))
    wanted = set(only)
    if wanted:
        kept = [c for c in changes if c.name in wanted or c.previous_name in wanted]
        no_op += len(changes) - len(kept)
        changes = kept
    changes = _order(changes, _freed_addresses(config, live, changes))
    warnings = _secret_warnings(unresolved)
    return Plan(target.url, changes, no_op, warnings, "", len(live), sorted(wanted))


def _freed_addresses(
    config: Config, live: dict[Key, LiveResource], changes: list[Change]
) -> set[str]:
    """Names of live channels being deleted whose email another channel will use."""
    wanted = {r.data["email"].lower() for r in config.resources if r.kind == "EmailChannel"}
    return {
        c.name
        for c in changes
        if c.action == "delete"
        and c.kind == "EmailChannel"
        and str(live[(c.kind, c.name)].data.get("email", "")).lower() in wanted
    }


Unresolved = tuple[Loaded, tuple[str, ...], str]  # a secret plan could not read, and why


def _secret_warnings(unresolved: list[Unresolved]) -> list[str]:
    """One line per secret that could not be compared, pointing at its reference (the first
    few: finding a position means reading the file again)."""
    shown = []
    for item, path, why in unresolved[:_MAX_SECRET_WARNINGS]:
        where = item.diagnostic(path, "warning", "")
        dotted = ".".join(path)
        shown.append(
            f"{where.file}:{where.line}:{where.column}: cannot compare {item.kind} "
            f"'{item.name}' {dotted}: {why}"
        )
    if len(unresolved) > _MAX_SECRET_WARNINGS:
        shown.append(f"cannot compare {len(unresolved) - _MAX_SECRET_WARNINGS} more secret(s)")
    return shown


def _apply_order(change: Change) -> tuple[int, int, int, str]:
    """Scripts and servers before the channels that use them; deletes last, users first.

    A server that becomes the default goes after the others, because the tenant clears the
    old default when a new one is set.
    """
    rank = KIND_NAMES.index(change.kind)  # EmailChannel, SmtpServer, EmailScript
    if change.action == "delete":
        return (1, rank, 0, change.name)
    sets_default = any(f.path == "default" and f.after is True for f in change.fields)
    return (0, -rank, int(sets_default), change.name)


def _order(changes: list[Change], freed: set[str]) -> list[Change]:
    """Apply order, except that deleting a channel whose address another channel takes over
    goes first: the tenant keeps addresses unique, and nothing refers to a channel."""
    changes.sort(key=_apply_order)
    early = [
        c for c in changes if c.action == "delete" and c.kind == "EmailChannel" and c.name in freed
    ]
    return early + [c for c in changes if c not in early]


def _created(kind: str, desired: dict[str, Any]) -> list[FieldChange]:
    sensitive = {".".join(p) for p in secret_paths(kind)}
    out = []
    for path, value in _flatten(desired):
        if value is None or path in ("kind", "name"):
            continue
        hidden = path in sensitive
        out.append(FieldChange(path, None, SENSITIVE if hidden else value, hidden))
    return out


def _flatten(doc: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _flatten(value, path + ".")
        else:
            yield path, value


def _fill_field_changes(differing: list[tuple[Change, dict[str, Any], dict[str, Any]]]) -> None:
    """Field-level changes of every differing resource, from one deepdiff run.

    Only the fields that differ go into the diff, all resources at once: deepdiff costs per
    node and per call, and plans of thousands of channels must stay fast.
    """
    if not differing:
        return
    from deepdiff import DeepDiff

    befores: dict[int, dict[str, Any]] = {}
    afters: dict[int, dict[str, Any]] = {}
    for index, (_, before, after) in enumerate(differing):
        befores[index], afters[index] = _differing(before, after)
    paths: dict[int, set[tuple[str, ...]]] = {i: set() for i in befores}
    diff = DeepDiff(befores, afters, view="tree")
    for group in diff:
        for node in diff[group]:
            full = node.path(output_format="list")
            # a list (queues) changes as a whole; so does a mapping that appears or goes
            cut = next((i for i, p in enumerate(full[1:], 1) if isinstance(p, int)), len(full))
            paths[full[0]].add(tuple(str(p) for p in full[1:cut]))
    for index, (change, before, after) in enumerate(differing):
        change.fields = _as_fields(change.kind, before, after, paths[index])


def _differing(
    before: dict[str, Any], after: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Both mappings cut down to the keys whose values differ, through nested mappings."""
    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            old[key], new[key] = _differing(a, b)
        else:
            old[key], new[key] = a, b
    return old, new


def _as_fields(
    kind: str, before: dict[str, Any], after: dict[str, Any], paths: set[tuple[str, ...]]
) -> list[FieldChange]:
    sensitive = set(secret_paths(kind))
    out = []
    for path in sorted(paths):
        old, new = get_path(before, path), get_path(after, path)
        if isinstance(old, dict) or isinstance(new, dict):
            # a section that appears or goes: show its fields, hiding only the secrets
            out.extend(_section(path, old or {}, new or {}, sensitive))
        elif path in sensitive:
            out.append(FieldChange(".".join(path), SENSITIVE, SENSITIVE, True))
        else:
            out.append(FieldChange(".".join(path), old, new))
    return out


def _section(
    path: tuple[str, ...], old: dict[str, Any], new: dict[str, Any], sensitive: set[Any]
) -> list[FieldChange]:
    leaves = dict.fromkeys([*(p for p, _ in _flatten(old)), *(p for p, _ in _flatten(new))])
    out = []
    for leaf in leaves:
        full = (*path, *leaf.split("."))
        a, b = get_path(old, tuple(leaf.split("."))), get_path(new, tuple(leaf.split(".")))
        if a == b:
            continue
        if full in sensitive:
            out.append(
                FieldChange(
                    ".".join(full),
                    None if a is None else SENSITIVE,
                    None if b is None else SENSITIVE,
                    True,
                )
            )
        else:
            out.append(FieldChange(".".join(full), a, b))
    return out


# --- saved plans: staleness ----------------------------------------------------------


def _digest(change: Change) -> str:
    """What a change does, field by field: a secret rotated since the plan makes it differ."""
    return json.dumps([asdict(f) for f in change.fields], sort_keys=True, default=str)


def check_current(saved: Plan, fresh: Plan) -> None:
    """Refuse a saved plan when the config or a touched live resource changed since."""
    if saved.target != fresh.target:
        raise StalePlan(f"stale plan: it was made for {saved.target}, not {fresh.target}")
    if saved.config_fingerprint != fresh.config_fingerprint:
        raise StalePlan("stale plan: the configuration changed since it was made; plan again")
    now = {(c.kind, c.name, c.action): (c.live_etag, _digest(c)) for c in fresh.changes}
    then = {(c.kind, c.name, c.action): (c.live_etag, _digest(c)) for c in saved.changes}
    if now != then:
        changed = sorted({str(k[0][1]) for k in set(now.items()) ^ set(then.items())})
        raise StalePlan(
            "stale plan: the tenant changed since it was made "
            f"({', '.join(changed[:5])}); plan again"
        )
