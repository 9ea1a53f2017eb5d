"""The outcome of an apply."""

from __future__ import annotations

import json
from typing import Any

from channelsync import kinds
from channelsync.apply import ApplyReport, Outcome
from channelsync.plan import Change
from channelsync.render.connections import STOPPED
from channelsync.render.plan import headline, json_plan


def report(outcome: ApplyReport) -> str:
    """What was applied; on a failure, also what failed and what was not attempted."""
    lines = [
        f"{c.kind} '{c.name}' moved through the temporary address {c.temporary_email} "
        f"(another {kinds.get(c.kind).called} took its address)"
        for c in outcome.parked
    ]
    if outcome.ok:
        counts: dict[str, int] = {}
        for change in outcome.applied:
            counts[change.action] = counts.get(change.action, 0) + 1
        done = ", ".join(f"{n} {a}d" for a, n in sorted(counts.items()))
        lines.append(f"Apply complete: {done}.")
        return "\n".join(lines) + "\n"
    lines.append(f"Applied {len(outcome.applied)} change(s):")
    lines.extend("  " + headline(c) for c in outcome.applied)
    assert outcome.failed is not None
    lines.append(f"Failed: {headline(outcome.failed)}: {outcome.error}")
    lines.append(f"Not attempted ({len(outcome.not_attempted)}):")
    lines.extend("  " + headline(c) for c in outcome.not_attempted)
    lines.append("Apply stopped at the first failure. Fix it and run apply again to converge.")
    return "\n".join(lines) + "\n"


def as_json(outcome: Outcome) -> str:
    """``apply --format json`` (README "JSON apply report"): the plan, what was applied,
    what failed and what was not attempted; on failure also the error document's ``error``."""
    from channelsync.errors import error_json
    from channelsync.exitcodes import EXIT_ERROR

    done = outcome.report or ApplyReport()
    report: dict[str, Any] = {
        "format_version": 1,
        "ok": outcome.ok,
        "plan": json_plan(outcome.plan) if outcome.plan is not None else None,
        "applied": [_change(c) for c in done.applied],
        "failed": {**_change(done.failed), "error": done.error} if done.failed else None,
        "not_attempted": [_change(c) for c in done.not_attempted],
        "parked": [_change(c) for c in done.parked],
        "stopped": outcome.stopped or None,
    }
    if done.failed is not None:
        failure = f"{headline(done.failed)}: {done.error}"
        report["error"] = error_json(failure, "apply_failed", EXIT_ERROR)
    elif outcome.stopped == "gate":
        report["error"] = error_json(STOPPED, "connection_tests_failed", EXIT_ERROR)
    elif outcome.stopped:
        report["error"] = error_json(
            "Apply cancelled; nothing was changed.", "declined", EXIT_ERROR
        )
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def _change(change: Change) -> dict[str, Any]:
    return {
        "kind": change.kind,
        "name": change.name,
        "action": change.action.value,
        "previous_name": change.previous_name,
    }
