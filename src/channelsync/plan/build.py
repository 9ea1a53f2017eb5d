"""Desired state + live state -> Plan (the data of ``plan/data.py``).

Both sides are in the normalised form (every default applied once, in the model), so a file
that omits a default never differs from a live value equal to it. Equal resources are found
with a plain comparison; only the ones that differ go through the diff (``plan/diff.py``)
for field changes. Secrets compare by the target's keyed fingerprints and never enter a plan.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Iterable
from typing import Any

from channelsync import kinds
from channelsync.defaults import BUILTIN_SMTP_SERVER, tenant_default_server
from channelsync.document import copy_mappings, get_path, secret_paths, set_path, without_local
from channelsync.errors import ChannelsyncError, did_you_mean
from channelsync.loader import Config, Loaded
from channelsync.perf import paused_gc
from channelsync.plan import diff
from channelsync.plan.data import (
    SENSITIVE,
    Action,
    Change,
    DefaultReset,
    FieldChange,
    Plan,
    PlanWarning,
    Refusal,
    WarningCategory,
)
from channelsync.secrets import Resolver, SecretUnavailable, parse_ref
from channelsync.targets.base import FingerprintsMany, Key, LiveResource, Target

_UNRESOLVED = "(cannot compare)"
_MAX_SECRET_WARNINGS = 10
# apply refuses, without --force, to touch more than this share of at least this many
SAFETY_MIN_EXISTING = 10
SAFETY_MAX_FRACTION = 0.30
_UNREADABLE = WarningCategory.SECRET_UNREADABLE


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
    return without_local(item.kind, copy_mappings(item.data))


class _Fingerprints:
    """The target's fingerprint of each secret reference of one plan, or why there is none:
    each reference resolved and fingerprinted once per folder (ten thousand channels share a
    few secrets)."""

    def __init__(self, target: Target, resolver: Resolver) -> None:
        self._target = target
        self._resolver = resolver
        self._found: dict[tuple[str, str], tuple[bool, str]] = {}  # (found, it or why not)

    def of(self, text: str, item: Loaded) -> str:
        key = (text, os.path.dirname(item.source.path))
        found = self._found.get(key)
        if found is None:
            ref = parse_ref(text)
            assert ref is not None  # the loader checked the syntax
            try:
                value = self._resolver.resolve(ref, item.base_dir)
                found = (True, self._target.fingerprint(value))
            except SecretUnavailable as exc:
                found = (False, str(exc))
            self._found[key] = found
        if not found[0]:
            raise SecretUnavailable(found[1])
        return found[1]


def _comparable(
    item: Loaded,
    live: LiveResource | None,
    unresolved: list[Unresolved],
    fingerprints: _Fingerprints,
) -> dict[str, Any]:
    """The resource as the target would show it: target form, secrets as fingerprints."""
    doc = target_form(item)
    secrets = [(p, v) for p in secret_paths(item.kind) if (v := get_path(doc, p)) is not None]
    for path, ref_text in secrets:
        try:
            value: Any = fingerprints.of(ref_text, item)
        except SecretUnavailable as exc:
            unresolved.append((item, path, str(exc)))
            # a create has nothing to compare with; a change keeps the live secret
            value = _UNRESOLVED if live is None else get_path(live.data, path)
        set_path(doc, path, value)
    return doc


def _prefetch_fingerprints(config: Config, target: Target, resolver: Resolver) -> None:
    """Remote targets fingerprint many secrets in one request (they cache the answers); the
    resolver keeps the values for ``_comparable``, which asks for them again."""
    if not isinstance(target, FingerprintsMany):
        return
    many = target.fingerprint_many
    values = []
    for item in config.resources:
        for path in secret_paths(item.kind):
            text = get_path(item.data, path)
            ref = parse_ref(text) if text is not None else None
            if ref is None:
                continue
            value = resolver.try_resolve(ref, item.base_dir)
            if value is not None:
                values.append(value)
    if values:
        many(values)


def make_plan(
    config: Config,
    target: Target,
    *,
    only: Iterable[str] = (),
    fingerprint: bool = False,
    for_apply: bool = True,
    secrets: Resolver | None = None,
) -> Plan:
    """``fingerprint``: also fingerprint the config, for saving the plan or checking a saved
    one (it reads every resource again, so only then). ``for_apply``: also say what apply
    would refuse (drift compares only). ``secrets``: the run's resolver (default: one for
    this plan, confining nothing)."""
    from channelsync import log

    with log.step("plan", selected=len(list(only)) or "all") as found:
        with paused_gc():
            plan = _make_plan(config, target, list(only), secrets or Resolver(), for_apply)
        if fingerprint:
            plan.config_fingerprint = config_fingerprint(config)
        if for_apply:
            plan.refusals = refusals(plan)
        found.update(plan.summary, warnings=len(plan.warnings))
    return plan


def _make_plan(
    config: Config, target: Target, only: list[str], resolver: Resolver, for_apply: bool
) -> Plan:
    from channelsync import log

    with log.step("read live state") as found:
        live = target.read()
        found["resources"] = len(live)
    selected = _selection(only, config, live)
    _prefetch_fingerprints(config, target, resolver)
    fingerprints = _Fingerprints(target, resolver)
    unresolved: list[Unresolved] = []
    changes: list[Change] = []
    no_op = 0
    seen: set[Key] = set()
    differing: list[tuple[Change, dict[str, Any], dict[str, Any]]] = []
    for item in config.resources:
        key = (item.kind, item.name)
        current = live.get(key)
        previous = item.data.get("renamed_from")
        action = Action.UPDATE
        if current is None and previous is not None and (item.kind, previous) in live:
            current = live[(item.kind, previous)]
            action = Action.RENAME
        if current is not None:
            seen.add((current.kind, current.name))
        desired = _comparable(item, current, unresolved, fingerprints)
        if current is None:
            created = _created(item.kind, desired)
            changes.append(Change(item.kind, item.name, Action.CREATE, fields=created))
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
        removed = _removed(gone.kind, gone.data)
        changes.append(
            Change(gone.kind, gone.name, Action.DELETE, fields=removed, live_etag=gone.etag)
        )
    not_selected = 0
    every = changes
    if selected is not None:
        kept = [c for c in changes if _matches(c, selected)]
        not_selected = len(changes) - len(kept)
        changes = kept
        unresolved = [u for u in unresolved if (u[0].kind, u[0].name) in selected]
    # only a plan that changes an SmtpServer can set a new default (then the ids are needed)
    servers = for_apply and any(c.kind == "SmtpServer" for c in changes)
    chosen = {id(c) for c in changes} if servers else set()
    followers = _fold_followers(changes)
    no_op += followers
    _explain_outside_resets(changes, config, live)
    reset = None
    if servers:
        resetting = _Resetting(config, live, every, chosen, unresolved, fingerprints)
        reset = resetting.set_back(changes)
        no_op -= resetting.were_unchanged
        not_selected -= resetting.were_not_selected
    changes = _order(changes, config, live)
    if reset is not None and any(c.kind == "SmtpServer" and c.action == "delete" for c in changes):
        # the default may go with a delete, and deletes go last: the set-backs after them
        changes = [c for c in changes if c.reset_by is None] + [
            c for c in changes if c.reset_by is not None
        ]
    warnings = _secret_warnings(unresolved, changes)
    return Plan(
        target.url,
        changes,
        no_op,
        warnings,
        "",
        len(live),
        only,
        not_selected=not_selected,
        default_reset=reset,
    )


# --- a new default SMTP server resets every channel's and agent's outgoing server ------


def _live_default(live: dict[Key, LiveResource]) -> str:
    return tenant_default_server(r.data for r in live.values() if r.kind == "SmtpServer")


def _new_default(changes: list[Change], config: Config, live: dict[Key, LiveResource]) -> str:
    """The tenant's default SMTP server once ``changes`` are applied (a rename of the
    default keeps it the default, under its new name)."""
    old = _live_default(live)
    desired = {r.name: r.data for r in config.of_kind("SmtpServer")}
    servers = [c for c in changes if c.kind == "SmtpServer"]
    for change in servers:
        if change.action != "delete" and desired[change.name]["default"]:
            return old if change.previous_name == old else change.name
    for change in servers:
        if (change.previous_name or change.name) != old:
            continue
        if change.action == "delete" or not desired[change.name]["default"]:
            return BUILTIN_SMTP_SERVER
        return change.name
    return old


class _Resetting:
    """Which resources the tenant resets when this plan sets a new default (``tenant/
    rules.py``, ``Tenant.reset_to_default``), and the changes that set back the ones the
    config gives an outgoing server of their own, so that one apply converges."""

    def __init__(
        self,
        config: Config,
        live: dict[Key, LiveResource],
        every: list[Change],
        chosen: set[int],
        unresolved: list[Unresolved],
        fingerprints: _Fingerprints,
    ) -> None:
        self._config = config
        self._live = live
        self._every = every  # before --only: a change it left out may be needed after all
        self._chosen = chosen  # the ids of the changes --only kept (followers among them)
        self._unresolved = unresolved
        self._fingerprints = fingerprints
        self.were_unchanged = 0
        self.were_not_selected = 0

    def set_back(self, changes: list[Change]) -> DefaultReset | None:
        """Mark and add (to ``changes``) the set-backs; None when the default stays."""
        new = _new_default(changes, self._config, self._live)
        if new == _live_default(self._live):
            return None
        sections = {k.name: k.resets for k in kinds.all_kinds() if k.resets is not None}
        counts = dict.fromkeys(sections, 0)
        planned = {(c.kind, c.previous_name or c.name): c for c in self._every}
        kept = {id(c) for c in changes}
        items = {(r.kind, r.name): r for r in self._config.resources if r.kind in sections}
        differing: list[tuple[Change, dict[str, Any], dict[str, Any]]] = []
        set_back = 0
        for key, res in self._live.items():
            section = sections.get(res.kind)
            if section is None:
                continue
            counts[res.kind] += 1
            change = planned.get(key)
            item = items.get(change.key if change is not None else key)
            if item is None or get_path(item.data, section) is None:
                continue  # deleted, or it follows the default: nothing to set back
            set_back += 1
            if change is not None:
                change.reset_by = new
                if id(change) not in kept:  # left out by --only, or folded into a rename
                    changes.append(change)
                    if id(change) in self._chosen:  # a follower: the tenant carried it along
                        change.set_back_only = True
                        self.were_unchanged += 1
                    else:
                        self.were_not_selected += 1
                continue
            desired = _comparable(item, res, self._unresolved, self._fingerprints)
            before = copy_mappings(res.data)
            set_path(before, section, None)
            change = Change(
                res.kind,
                res.name,
                Action.UPDATE,
                live_etag=res.etag,
                reset_by=new,
                set_back_only=True,
            )
            changes.append(change)
            differing.append((change, before, desired))
            self.were_unchanged += 1
        _fill_field_changes(differing)
        if not any(counts.values()):
            return None
        return DefaultReset(new, counts, set_back)


def _explain_outside_resets(
    changes: list[Change], config: Config, live: dict[Key, LiveResource]
) -> None:
    """A resource whose live outgoing server is gone while the config gives it one: most
    likely reset by a default SMTP server set outside channelsync (the console resets every
    channel and agent then); the change names the tenant's default."""
    sections = {k.name: k.resets for k in kinds.all_kinds() if k.resets is not None}
    candidates = []
    for change in changes:
        section = sections.get(change.kind)
        if section is None or change.action not in ("update", "rename"):
            continue
        current = live[(change.kind, change.previous_name or change.name)]
        if get_path(current.data, section) is None:
            candidates.append((change, section))
    if not candidates:
        return
    items = {(r.kind, r.name): r for r in config.resources if r.kind in sections}
    default = _live_default(live)
    for change, section in candidates:
        if get_path(items[change.key].data, section) is not None:
            change.reset_outside = default


# --- --only: which resources a plan is limited to ----------------------------------


def _selection(only: list[str], config: Config, live: dict[Key, LiveResource]) -> set[Key] | None:
    """The keys (of the config and of the tenant) that ``--only NAME|Kind/NAME`` selects;
    a selector that matches nothing is an error, with the nearest name."""
    if not only:
        return None
    known = {(r.kind, r.name) for r in config.resources} | set(live)
    known |= {
        (r.kind, r.data["renamed_from"]) for r in config.resources if r.data.get("renamed_from")
    }
    renamed = {
        (r.kind, r.data["renamed_from"]): (r.kind, r.name)
        for r in config.resources
        if r.data.get("renamed_from")
    }
    found = select(only, known, "the config or the tenant")
    return found | {renamed[k] for k in found if k in renamed}


def select(only: list[str], known: set[Key], where: str) -> set[Key]:
    """The keys of ``known`` that ``--only NAME|Kind/NAME`` selects; a selector that matches
    nothing is an error, with the nearest name (``where`` says what the names are of)."""
    selected: set[Key] = set()
    unknown = []
    for text in only:
        kind, _, name = text.partition("/")
        if not name or kind not in kinds.names():
            kind, name = "", text
        found = {k for k in known if k[1] == name and kind in ("", k[0])}
        if not found:
            unknown.append(_did_you_mean(text, kind, known))
        selected |= found
    if unknown:
        raise ChannelsyncError(
            f"--only: {'; '.join(unknown)}. Give a resource name (or Kind/NAME) of {where}"
        )
    return selected


def _did_you_mean(text: str, kind: str, known: set[Key]) -> str:
    qualified = kind or "/" in text
    candidates = sorted({f"{k}/{n}" for k, n in known} if qualified else {n for _, n in known})
    _, _, name = text.rpartition("/")
    by_case = [c for c in candidates if c.lower() == text.lower()]
    by_name = [c for c in candidates if c.rpartition("/")[2].lower() == name.lower()]
    near = by_case or by_name
    hint = f" (did you mean '{near[0]}'?)" if near else did_you_mean(text, candidates)
    return f"'{text}' matches no resource{hint}"


def _matches(change: Change, selected: set[Key]) -> bool:
    return change.key in selected or (change.kind, change.previous_name or "") in selected


# --- what apply would refuse ---------------------------------------------------------


def refusals(plan: Plan, *, allow_delete: bool = False, force: bool = False) -> list[Refusal]:
    """What apply refuses without --allow-delete or --force: the one place of these rules."""
    out = []
    deletes = [c for c in plan.changes if c.action == "delete"]
    if deletes and not allow_delete:
        names = ", ".join(f"{c.kind} '{c.name}'" for c in deletes[:5])
        more = f" and {len(deletes) - 5} more" if len(deletes) > 5 else ""
        out.append(
            Refusal(
                "--allow-delete",
                f"the plan deletes {len(deletes)} resource(s) ({names}{more})",
                "Rerun with --allow-delete to delete them, or add them to the config "
                "(channelsync export writes them)",
            )
        )
    # a set-back that a new default makes necessary changes nothing the config does not say
    # already: like the channels that follow a rename, it is not counted
    touched = sum(
        1
        for c in plan.changes
        if c.action in ("update", "rename", "delete") and not c.set_back_only
    )
    existing = plan.live_count
    if not force and existing >= SAFETY_MIN_EXISTING and touched > SAFETY_MAX_FRACTION * existing:
        out.append(
            Refusal(
                "--force",
                f"the plan changes or deletes {touched} of {existing} existing resources "
                f"(more than {SAFETY_MAX_FRACTION:.0%})",
                "Review it and rerun with --force if it is intended",
            )
        )
    return out


# --- channels that follow a renamed script or server --------------------------------


def _fold_followers(changes: list[Change]) -> int:
    """Drop the updates (of a channel, an agent: any kind with references) that only name a
    renamed script or server by its new name: the tenant carries them along with the rename,
    which lists them. Returns how many."""
    paths = {
        k.name: {".".join(p): target for p, target in k.references.items()}
        for k in kinds.all_kinds()
        if k.references
    }
    referred = {target for by_path in paths.values() for target in by_path.values()}
    renames = {
        (c.kind, c.previous_name): c for c in changes if c.action == "rename" and c.kind in referred
    }
    if not renames:
        return 0

    def follows(kind: str, f: FieldChange) -> bool:
        rename = renames.get((paths[kind].get(f.path, ""), f.before))
        return rename is not None and rename.name == f.after

    folded = {
        id(c)
        for c in changes
        if c.kind in paths
        and c.action == "update"
        and c.fields
        and all(follows(c.kind, f) for f in c.fields)
    }
    for change in changes:
        if id(change) in folded:
            for f in change.fields:
                rename = renames[(paths[change.kind][f.path], f.before)]
                rename.followers.append(change.name)
                if change.kind != "EmailChannel":
                    rename.follower_kinds[change.name] = change.kind
    changes[:] = [c for c in changes if id(c) not in folded]
    return len(folded)


Unresolved = tuple[Loaded, tuple[str, ...], str]  # a secret plan could not read, and why


def _secret_warnings(unresolved: list[Unresolved], changes: list[Change]) -> list[PlanWarning]:
    """One warning per unreadable secret (variable or file), at its first reference, in the
    order validate uses, with the number of references; those that resources to be created
    or changed need make apply fail. Positions are found for the first few only (finding
    one means reading the file again)."""
    changing = {c.key for c in changes if c.action != "delete"}
    groups: dict[str, list[Unresolved]] = {}
    for entry in unresolved:
        groups.setdefault(entry[2], []).append(entry)
    shown = []
    for why, entries in list(groups.items())[:_MAX_SECRET_WARNINGS]:
        item, path, _ = entries[0]
        refs = f"{len(entries)} reference{'s' if len(entries) > 1 else ''}"
        needing = len({(i.kind, i.name) for i, _, _ in entries} & changing)
        if needing:
            who = f"{needing} resource{'s' if needing > 1 else ''} to create or change"
            verb = "needs" if needing == 1 else "need"
            message = f"{why} ({refs}): apply will fail: {who} {verb} it"
        else:
            message = f"{why} ({refs}): cannot compare it, so the plan cannot show a rotation"
        diagnostic = item.diagnostic(path, "warning", message)
        shown.append(PlanWarning.at(_UNREADABLE, diagnostic, item.kind, item.name))
    shown.sort(key=lambda w: w.order)
    if len(groups) > _MAX_SECRET_WARNINGS:
        more = f"{len(groups) - _MAX_SECRET_WARNINGS} more secret(s) cannot be read here"
        shown.append(PlanWarning(WarningCategory.SECRETS_NOT_SHOWN, more))
    return shown


def _apply_order(change: Change, rank: dict[str, int]) -> tuple[int, int, int, str]:
    """The kinds a resource refers to before the kinds that refer to them (a topological
    order of the references); deletes last, users first.

    A server that becomes the default goes after the others, because the tenant clears the
    old default when a new one is set.
    """
    if change.action == "delete":
        return (1, -rank[change.kind], 0, change.name)
    sets_default = any(f.path == "default" and f.after is True for f in change.fields)
    return (0, rank[change.kind], int(sets_default), change.name)


ADDRESS = "email"  # the unique field a temporary address stands in for


def _order(changes: list[Change], config: Config, live: dict[Key, LiveResource]) -> list[Change]:
    """Apply order, except for addresses, which the tenant keeps unique within a kind (a
    channel's, an agent's: ``Kind.unique``): deleting one whose address another takes over
    goes first (when nothing refers to its kind), and one that takes the address of one
    that moves goes after it. Addresses that move in a cycle (two that swap) are broken by
    moving one of them to a temporary address first (``temporary_email``)."""
    rank = {kind: i for i, kind in enumerate(kinds.dependency_order())}
    changes.sort(key=lambda change: _apply_order(change, rank))
    for kind in kinds.all_kinds():
        if ADDRESS in kind.unique:
            changes = _by_kind_address(kind.name, changes, config, live, rank)
    return changes


def _by_kind_address(
    kind: str,
    changes: list[Change],
    config: Config,
    live: dict[Key, LiveResource],
    rank: dict[str, int],
) -> list[Change]:
    wanted = {r.name: r.data[ADDRESS].lower() for r in config.of_kind(kind)}
    holder = {str(r.data.get(ADDRESS, "")).lower(): r.name for r in live.values() if r.kind == kind}
    taken = set(wanted.values())
    unreferenced = not kinds.referring_kinds(kind)
    early = [
        c
        for c in changes
        if unreferenced
        and c.action == "delete"
        and c.kind == kind
        and str(live[c.key].data.get(ADDRESS, "")).lower() in taken
    ]
    moving = [c for c in changes if c.kind == kind and c.action != "delete"]
    placed = {id(c) for c in early} | {id(c) for c in moving}
    rest = [c for c in changes if id(c) not in placed]
    # where the kind's creates and updates stand in apply order: before the deletes (a server
    # that goes may be the one they move off) and the kinds that come after it
    cut = next(
        (i for i, c in enumerate(rest) if c.action == "delete" or rank[c.kind] > rank[kind]),
        len(rest),
    )
    ordered = _by_address(moving, wanted, holder, live)
    return early + rest[:cut] + ordered + rest[cut:]


def _by_address(
    moving: list[Change],
    wanted: dict[str, str],
    holder: dict[str, str],
    live: dict[Key, LiveResource],
) -> list[Change]:
    """``moving`` (creates, updates, renames of one kind) so that each goes after the change that
    frees the address it takes; each waits for at most one other, so a cycle is found by
    following the waits."""
    by_live_name = {c.previous_name or c.name: c for c in moving if c.action != "create"}
    waits: dict[int, Change] = {}
    for change in moving:
        other = by_live_name.get(holder.get(wanted[change.name], ""))
        if other is not None and other is not change and wanted[other.name] != wanted[change.name]:
            waits[id(change)] = other
    if not waits:
        return moving
    dependents: dict[int, list[Change]] = {}
    for change in moving:
        if id(change) in waits:
            dependents.setdefault(id(waits[id(change)]), []).append(change)
    out: list[Change] = []
    emitted: set[int] = set()

    def emit(first: Change) -> None:
        """``first``, then every change that waited for it, and so on."""
        stack = [first]
        while stack:
            change = stack.pop()
            if id(change) in emitted:
                continue
            emitted.add(id(change))
            out.append(change)
            stack.extend(reversed(dependents.pop(id(change), [])))

    for change in moving:
        if id(change) not in waits:
            emit(change)
    for change in moving:
        if id(change) in emitted:
            continue
        parked = _cycle_member(change, waits)
        parked.temporary_email = _temporary_address(parked, live)
        for freed in dependents.pop(id(parked), []):  # its address is free once parked
            emit(freed)
    return out


def _cycle_member(start: Change, waits: dict[int, Change]) -> Change:
    seen: set[int] = set()
    node = start
    while id(node) not in seen:
        seen.add(id(node))
        node = waits[id(node)]
    return node


def _temporary_address(change: Change, live: dict[Key, LiveResource]) -> str:
    """A stable address of the channel's own domain that no channel uses: the same one for
    every apply of this change, so an apply killed halfway is picked up by the next one."""
    current = str(live[(change.kind, change.previous_name or change.name)].data[ADDRESS])
    tag = hashlib.sha256(change.name.encode()).hexdigest()[:12]
    return f"channelsync-temp-{tag}@{current.rpartition('@')[2]}"


def _removed(kind: str, data: dict[str, Any]) -> list[FieldChange]:
    """What a delete removes, field by field (secrets hidden), in the order of a create."""
    sensitive = _sensitive(kind)
    order = _field_order(kind)
    leaves = sorted(_leaves(data), key=lambda leaf: order.get(leaf[0], len(order)))
    return [
        FieldChange(path, SENSITIVE if path in sensitive else value, None, path in sensitive)
        for path, value in leaves
        if value is not None and path not in ("kind", "name")
    ]


@functools.cache
def _field_order(kind: str) -> dict[str, int]:
    from channelsync.document import field_titles

    return {path: i for i, path in enumerate(field_titles(kind))}


def _created(kind: str, desired: dict[str, Any]) -> list[FieldChange]:
    sensitive = _sensitive(kind)
    out = []
    for path, value in _leaves(desired):
        if value is None or path in ("kind", "name"):
            continue
        hidden = path in sensitive
        out.append(FieldChange(path, None, SENSITIVE if hidden else value, hidden))
    return out


@functools.cache
def _sensitive(kind: str) -> frozenset[str]:
    return frozenset(".".join(p) for p in secret_paths(kind))


def _leaves(
    doc: dict[str, Any], prefix: str = "", out: list[tuple[str, Any]] | None = None
) -> list[tuple[str, Any]]:
    """The leaves of a resource, each with its dotted path, in the order of ``diff.leaves``
    (one list, not nested generators: a plan of ten thousand creates walks them all)."""
    found: list[tuple[str, Any]] = [] if out is None else out
    for key, value in doc.items():
        if isinstance(value, dict):
            _leaves(value, f"{prefix}{key}.", found)
        else:
            found.append((prefix + key, value))
    return found


def _fill_field_changes(differing: list[tuple[Change, dict[str, Any], dict[str, Any]]]) -> None:
    """Field-level changes of every differing resource, from one diff of them all."""
    found = diff.changed([(before, after) for _, before, after in differing])
    for (change, before, after), paths in zip(differing, found, strict=True):
        change.fields = _as_fields(change.kind, before, after, paths)


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
    leaves = dict.fromkeys([*(p for p, _ in diff.leaves(old)), *(p for p, _ in diff.leaves(new))])
    out = []
    for leaf in leaves:
        full = (*path, *leaf)
        a, b = get_path(old, leaf), get_path(new, leaf)
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
