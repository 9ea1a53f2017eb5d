"""Connection-test results inside a plan (``plan --check-connections``), in each format."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from channelsync.probe.check import Result


def as_json(results: Sequence[Result] | None) -> dict[str, Any]:
    if results is None:
        return {}
    from channelsync.probe.render import summary

    return {
        "connection_tests": {"results": [r.to_json() for r in results], "summary": summary(results)}
    }


def text(results: Sequence[Result] | None) -> str:
    if results is None:
        return ""
    if not results:
        return "\nConnection tests: nothing in this plan needs one.\n"
    from channelsync.probe.render import text as table

    return "\nConnection tests:\n" + table(results)


def markdown(results: Sequence[Result] | None) -> str:
    if results is None:
        return ""
    if not results:
        return "**Connection tests:** nothing in this plan needs one."
    from channelsync.probe.render import summary

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
