"""The outcome of an apply."""

from __future__ import annotations

from channelsync.apply import ApplyReport
from channelsync.render.plan import headline


def report(outcome: ApplyReport) -> str:
    """What was applied; on a failure, also what failed and what was not attempted."""
    lines = [
        f"{c.kind} '{c.name}' moved through the temporary address {c.temporary_email} "
        "(another channel took its address)"
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
