"""The pre-apply connection-test gate: test what the plan creates, reconnects or enables.

A channel or SMTP server is tested when the plan creates it, changes one of its connection
fields or secrets, or enables it. A failure stops the apply before any change;
``plan --check-connections`` runs the same tests so that reviewers see them in the plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from channelsync.loader import Config, Loaded
from channelsync.plan import Change, Plan

if TYPE_CHECKING:
    from channelsync.probe.check import Result

# Fields whose change means the mail will flow through a different connection.
CONNECTION_FIELDS = ("incoming", "outgoing", "host", "port", "security", "user", "password")


def needs_test(change: Change) -> bool:
    if change.kind not in ("EmailChannel", "SmtpServer") or change.action == "delete":
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


def run(config: Config, plan: Plan) -> list[Result]:
    resources = resources_to_test(config, plan)
    if not resources:
        return []
    from channelsync.probe import gate
    from channelsync.probe.mailbox import add_enabling_warnings

    results = gate(resources, servers=config.of_kind("SmtpServer"))
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


def warning_lines(results: list[Result]) -> list[str]:
    return [f"warning: {r.kind} '{r.name}' ({r.check}): {w}" for r in results for w in r.warnings]


def failure_lines(results: list[Result]) -> list[str]:
    """One line per failed test, with the server's words and the hint."""
    return [
        f"connection test failed: {r.kind} '{r.name}' ({r.check}, {r.endpoint}): {r.error}"
        for r in results
        if r.error is not None
    ]
