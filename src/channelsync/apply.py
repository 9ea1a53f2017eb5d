"""Plan -> ordered operations on a target: safety checks, secrets, partial-failure report.

Secrets are resolved here (and in connection tests) only, just before they are sent; a
failure to resolve one stops the apply before anything changes.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import cast

from channelsync import kinds, log
from channelsync.document import get_path, secret_paths, set_path
from channelsync.errors import ConfigError
from channelsync.errors import SafetyError as SafetyError
from channelsync.loader import Config, Loaded
from channelsync.plan import Change, Plan, refusals, target_form
from channelsync.secrets import Resolver, SecretUnavailable, parse_ref
from channelsync.targets.base import (
    Action,
    AppliesMany,
    Batches,
    Operation,
    Target,
    TargetError,
)


@dataclass
class ApplyReport:
    applied: list[Change] = field(default_factory=list)
    failed: Change | None = None
    error: str = ""
    not_attempted: list[Change] = field(default_factory=list)
    parked: list[Change] = field(default_factory=list)  # moved through a temporary address

    @property
    def ok(self) -> bool:
        return self.failed is None


def check_safety(plan: Plan, *, allow_delete: bool, force: bool) -> None:
    """Refuse what the plan already said apply would need a flag for (plan.refusals)."""
    for refusal in refusals(plan, allow_delete=allow_delete, force=force):
        raise SafetyError(f"{refusal.reason}; nothing was changed. {refusal.advice}")


MAX_SECRET_PROBLEMS = 10


def operations(
    plan: Plan, config: Config, secrets: Resolver | None = None
) -> list[tuple[Change, Operation]]:
    """The plan's changes as operations carrying real secrets (read through the run's
    ``secrets``), or an error before any change."""
    resolver = secrets or Resolver()
    by_key = {(r.kind, r.name): r for r in config.resources}
    out: list[tuple[Change, Operation]] = []
    parking: list[tuple[Change, Operation]] = []
    missing: list[tuple[Loaded, tuple[str, ...], str]] = []
    for change in plan.changes:
        action = cast(Action, change.action)
        if action == "delete":
            op = Operation(action, change.kind, change.name, expected_etag=change.live_etag)
            out.append((change, op))
            continue
        item = by_key[(change.kind, change.name)]
        body, problems = _with_secrets(item, resolver)
        missing.extend((item, path, why) for path, why in problems)
        op = Operation(
            action, change.kind, change.name, change.previous_name, body, change.live_etag
        )
        if change.temporary_email is not None:
            # first everything but the address, on the temporary one; then the address
            parking.append((change, replace(op, body={**body, "email": change.temporary_email})))
            op = Operation("update", change.kind, change.name, body=body)
        out.append((change, op))
    if missing:
        shown = sorted(
            [
                item.diagnostic(path, "error", f"{'.'.join(path)}: {why}")
                for item, path, why in missing[:MAX_SECRET_PROBLEMS]
            ]
        )
        more = len(missing) - len(shown)
        listed = f" ({more} more not listed)" if more else ""
        raise ConfigError(
            shown,
            summary=f"{len(missing)} secret(s) the plan needs cannot be read here{listed}; "
            "set them and apply again. Nothing was changed",
        )
    for kind in dict.fromkeys(c.kind for c, _ in parking):  # before the first of its kind
        at = next(i for i, (c, o) in enumerate(out) if c.kind == kind and o.body)
        out[at:at] = [p for p in parking if p[0].kind == kind]
    return out


def _parks(change: Change, op: Operation) -> bool:
    """The first of the two steps of a change through a temporary address."""
    email = change.temporary_email
    return email is not None and op.body is not None and op.body.get("email") == email


def _with_secrets(
    item: Loaded, resolver: Resolver
) -> tuple[dict[str, object], list[tuple[tuple[str, ...], str]]]:
    """The body to send, with real secrets, and the secrets that could not be read."""
    body = target_form(item)  # mappings of its own: the secrets go in place
    problems: list[tuple[tuple[str, ...], str]] = []
    for path in secret_paths(item.kind):
        text = get_path(body, path)
        if text is None:
            continue
        ref = parse_ref(text)
        assert ref is not None  # the loader checked the syntax
        try:
            set_path(body, path, resolver.resolve(ref, item.base_dir))
        except SecretUnavailable as exc:
            problems.append((path, str(exc)))
    return body, problems


def execute(ops: list[tuple[Change, Operation]], target: Target) -> ApplyReport:
    """Apply in order; stop at the first failure and say what was and was not done."""
    with target.batch() if isinstance(target, Batches) else contextlib.nullcontext():
        return _execute(ops, target)


def _execute(ops: list[tuple[Change, Operation]], target: Target) -> ApplyReport:
    """Runs of operations, each ending with one after which the tenant changes other
    resources itself (``_cascades``), one ``apply_many`` call per run where the target can
    (else one ``apply`` per operation)."""
    report = ApplyReport()
    refreshed: dict[tuple[str, str], str] | None = None
    start = 0
    while start < len(ops):
        end = next((i + 1 for i in range(start, len(ops)) if _cascades(*ops[i])), len(ops))
        if not isinstance(target, AppliesMany):
            end = start + 1
        run = [(c, _expecting(o, refreshed)) for c, o in ops[start:end]]
        first = run[0][1]
        what = {"action": first.action, "kind": first.kind, "name": first.name}
        with log.step("apply", **what, **({"operations": len(run)} if len(run) > 1 else {})):
            done, error = _apply_run(target, [o for _, o in run])
        for change, op in run[:done]:
            (report.parked if _parks(change, op) else report.applied).append(change)
        if error is not None:
            report.failed = run[done][0]
            report.error = str(error)
            report.not_attempted = [c for c, o in ops[start + done + 1 :] if not _parks(c, o)]
            return report
        if _cascades(*run[-1]):
            # the tenant changed other resources itself; we hold the lock, so expect them
            # as it left them
            refreshed = {key: res.etag for key, res in target.read().items()}
        start = end
    return report


def _expecting(op: Operation, refreshed: dict[tuple[str, str], str] | None) -> Operation:
    if refreshed is not None and op.expected_etag is not None and op.key in refreshed:
        return replace(op, expected_etag=refreshed[op.key])
    return op


def _apply_run(target: Target, run: list[Operation]) -> tuple[int, TargetError | None]:
    if isinstance(target, AppliesMany):
        return target.apply_many(run)
    try:
        target.apply(run[0])
    except TargetError as exc:
        return 0, exc
    return 1, None


def _cascades(change: Change, op: Operation) -> bool:
    """Operations after which the tenant itself changes other resources: a rename (the users
    follow) and a change of the tenant's default SMTP server, set or cleared (the other
    default is cleared; every channel's and agent's outgoing server is reset)."""
    if op.action == "rename" and kinds.referring_kinds(op.kind):
        return True
    if op.kind != "SmtpServer":
        return False
    return bool(op.body and op.body.get("default")) or any(
        f.path == "default" and True in (f.before, f.after) for f in change.fields
    )


@dataclass
class Outcome:
    """How an apply ended: ``report`` is None when nothing was attempted."""

    plan: Plan | None = None
    report: ApplyReport | None = None
    stopped: str = ""  # "declined" or "gate" when the user or the connection tests said no

    @property
    def ok(self) -> bool:
        return not self.stopped and (self.report is None or self.report.ok)


def run(
    config: Config,
    target: Target,
    *,
    saved: Plan | None,
    only: list[str] | None = None,
    allow_delete: bool,
    force: bool,
    lock_timeout: float,
    show: Callable[[Plan], None],
    confirm: Callable[[Plan], bool],
    gate: Callable[[Plan], bool],
    secrets: Resolver | None = None,
) -> Outcome:
    """The whole apply, under the tenant's lock: plan (or check the saved plan), show it,
    check safety and secrets, confirm, run the connection-test gate, then change. ``only``
    limits a plan made here as a saved plan's own selection does. ``secrets``: the run's
    resolver, which the gate should share."""
    import uuid

    from channelsync.targets.base import LockInfo

    secrets = secrets or Resolver()
    with target.lock(LockInfo.mine(uuid.uuid4().hex), lock_timeout):
        plan = _planned(config, target, saved, only, secrets)
        show(plan)
        if not plan.has_changes:
            return Outcome(plan)
        check_safety(plan, allow_delete=allow_delete, force=force)
        ops = operations(plan, config, secrets)
        if saved is None and not confirm(plan):
            return Outcome(plan, stopped="declined")
        if not gate(plan):
            return Outcome(plan, stopped="gate")
        return Outcome(plan, execute(ops, target))


def _planned(
    config: Config, target: Target, saved: Plan | None, only: list[str] | None, secrets: Resolver
) -> Plan:
    from channelsync.plan import check_current, make_plan

    selection = saved.only if saved else (only or [])
    plan = make_plan(config, target, only=selection, fingerprint=saved is not None, secrets=secrets)
    if saved is not None:
        check_current(saved, plan)
    plan.refusals = []  # the refusals that hold are errors below, not plan warnings
    return plan


def preflight(
    config: Config,
    reader: Target,
    *,
    saved: Plan | None,
    only: list[str] | None = None,
    allow_delete: bool,
    force: bool,
    show: Callable[[Plan], None],
    can_confirm: Callable[[Plan], bool],
    secrets: Resolver | None = None,
) -> bool:
    """What ``run`` would refuse before changing anything, checked on a read-only ``reader``
    of a tenant that does not exist yet: opening it for writing would create it, so a
    refused apply (a mistyped path?) would leave a new, empty tenant behind. False: no
    confirmation can be asked for (``can_confirm`` said why)."""
    secrets = secrets or Resolver()
    plan = _planned(config, reader, saved, only, secrets)
    if plan.has_changes:
        try:
            check_safety(plan, allow_delete=allow_delete, force=force)
            operations(plan, config, secrets)
        except (SafetyError, ConfigError):
            show(plan)  # as run shows it before the refusal
            raise
        if saved is None and not can_confirm(plan):
            return False
    return True
