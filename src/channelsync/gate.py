"""The pre-apply connection-test gate: test what the plan creates, reconnects or enables.

A channel or SMTP server is tested when the plan creates it, changes one of its connection
fields or secrets, or enables it. A failure stops the apply before any change, except on a
disabled channel (prepared, not in service: its mailbox may not be ready yet), which only
warns; ``plan --check-connections`` runs the same tests so that reviewers see them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channelsync import kinds
from channelsync.defaults import PROBE_TIMEOUT
from channelsync.loader import Config, Loaded
from channelsync.plan import Change, Plan

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.probe.check import Result
    from channelsync.probe.runner import Progress
    from channelsync.secrets import Resolver

# Fields whose change means the mail will flow through a different connection.
CONNECTION_FIELDS = ("incoming", "outgoing", "host", "port", "security", "user", "password")


def needs_test(change: Change) -> bool:
    if not kinds.get(change.kind).tested or change.action == "delete":
        return False
    if change.action == "create":
        return True
    for field in change.fields:
        top = field.path.split(".", 1)[0]
        if top in CONNECTION_FIELDS or field.sensitive:
            return True
        if field.path == "enabled" and field.after is True:
            return True
    return False


def resources_to_test(config: Config, plan: Plan) -> list[Loaded]:
    wanted = {(c.kind, c.name) for c in plan.changes if needs_test(c)}
    return [r for r in config.resources if (r.kind, r.name) in wanted]


def run(
    config: Config,
    plan: Plan,
    bindings: Bindings | None = None,
    *,
    timeout: float = PROBE_TIMEOUT,
    progress: Progress | None = None,
    secrets: Resolver | None = None,
) -> list[Result]:
    """``secrets``: the run's resolver (the plan's), so that a secret is read once."""
    resources = resources_to_test(config, plan)
    if not resources:
        return []
    from channelsync import log
    from channelsync.probe import gate
    from channelsync.probe.mailbox import add_enabling_warnings

    servers = config.of_kind("SmtpServer")
    with log.step("connection tests", resources=len(resources)) as found:
        results = gate(
            resources,
            servers=servers,
            bindings=bindings,
            timeout=timeout,
            progress=progress,
            secrets=secrets,
        )
        found["failures"] = sum(1 for r in results if not r.ok)
    add_enabling_warnings(results, {c.name for c in plan.changes if _enables(c, config)})
    return results


def _enables(change: Change, config: Config) -> bool:
    """A channel created enabled, or switched from disabled to enabled."""
    if change.kind != "EmailChannel":
        return False
    if change.action == "create":
        return any(
            r.kind == "EmailChannel" and r.name == change.name and r.data["enabled"]
            for r in config.resources
        )
    return any(f.path == "enabled" and f.after is True for f in change.fields)


def blocking(config: Config, results: list[Result]) -> list[Result]:
    """The failed tests that stop an apply (not those of disabled channels)."""
    disabled = {r.name for r in config.of_kind("EmailChannel") if r.data.get("enabled") is False}
    return [
        r
        for r in results
        if r.error is not None and not (r.kind == "EmailChannel" and r.name in disabled)
    ]
