"""Connection-test results inside a plan (``plan --check-connections``), in each format, and
the lines the pre-apply gate prints on stderr."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from channelsync.probe.check import Result


def as_json(results: Sequence[Result] | None) -> dict[str, Any]:
    if results is None:
        return {}
    from channelsync.render.checks import summary

    return {
        "connection_tests": {"results": [r.to_json() for r in results], "summary": summary(results)}
    }


def text(results: Sequence[Result] | None) -> str:
    if results is None:
        return ""
    if not results:
        return "\nConnection tests: nothing in this plan needs one.\n"
    from channelsync.render.checks import text as table

    return "\nConnection tests:\n" + table(results)


def markdown(results: Sequence[Result] | None) -> str:
    if results is None:
        return ""
    if not results:
        return "**Connection tests:** nothing in this plan needs one."
    from channelsync.render.checks import summary

    counts = summary(results)
    lines = [
        f"**Connection tests:** {counts['passed']} passed, {counts['failed']} failed",
        "",
        "| resource | check | endpoint | result | hint |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        outcome = "ok" if r.error is None else f":x: `{r.error.code}`"
        hint = "" if r.error is None else html.escape(r.error.hint)
        lines.append(f"| {html.escape(r.name)} | {r.check} | `{r.endpoint}` | {outcome} | {hint} |")
    return "\n".join(lines)


# ---- the gate, on stderr (apply; plan --check-connections shows the warnings) ----------------

SKIPPED = (
    "WARNING: connection tests skipped (--skip-connection-tests): mail servers were "
    "NOT checked before this apply"
)
INTERRUPTED = "Connection tests interrupted; nothing was changed."
STOPPED = "Apply stopped by the connection tests; nothing was changed."


def warning_lines(results: Sequence[Result]) -> list[str]:
    return [f"warning: {r.kind} '{r.name}' ({r.check}): {w}" for r in results for w in r.warnings]


def failure_lines(
    results: Sequence[Result], blocking: Sequence[Result]
) -> tuple[list[str], list[str]]:
    """One line per failed test, with the server's words and the hint: those that block the
    apply (``blocking``: gate.blocking), and the warnings about disabled channels."""
    stopping = {id(r) for r in blocking}
    errors = [
        f"connection test failed: {r.kind} '{r.name}' ({r.check}, {r.endpoint}): {r.error}"
        for r in blocking
    ]
    warnings = [
        f"warning: connection test failed on a disabled channel: {r.kind} '{r.name}' "
        f"({r.check}, {r.endpoint}): {r.error}. It does not block apply; it will once "
        "the channel is enabled"
        for r in results
        if r.error is not None and id(r) not in stopping
    ]
    return errors, warnings


def summary_line(results: Sequence[Result]) -> str:
    from channelsync.render.checks import summary

    counts = summary(results)
    failed = f", {counts['failed']} failed" if counts["failed"] else ""
    return f"connection tests: {counts['passed']} passed{failed}"
