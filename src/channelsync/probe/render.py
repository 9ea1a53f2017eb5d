"""Results as a text table or as JSON; no probing or diagnosing happens here."""

from __future__ import annotations

import json
from collections.abc import Sequence

from channelsync.probe.check import Result

HEADERS = ("RESOURCE", "CHECK", "ENDPOINT", "RESULT", "TIME", "HINT")


def summary(results: Sequence[Result]) -> dict[str, int]:
    passed = sum(1 for r in results if r.ok)
    return {"passed": passed, "failed": len(results) - passed}


def as_json(results: Sequence[Result]) -> str:
    document = {"results": [r.to_json() for r in results], "summary": summary(results)}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _outcome(result: Result) -> str:
    if result.error is not None:
        return f"FAIL {result.error.code}"
    if result.messages is not None:
        return f"ok ({result.messages} messages)"
    if result.queue_id is not None:
        return f"ok (queued as {result.queue_id})"
    return "ok"


def _hint(result: Result) -> str:
    if result.error is not None:
        return result.error.hint
    return "; ".join(result.warnings)


def text(results: Sequence[Result]) -> str:
    if not results:
        return "nothing to test: no channels or SMTP servers selected\n"
    rows = [
        (r.name, r.check, r.endpoint, _outcome(r), f"{r.elapsed_ms} ms", _hint(r)) for r in results
    ]
    widths = [max(len(row[i]) for row in (HEADERS, *rows)) for i in range(len(HEADERS) - 1)]
    lines = []
    for row in (HEADERS, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    failures = [r for r in results if r.error is not None]
    if failures:
        lines.append("")
        for r in failures:
            assert r.error is not None
            lines.append(f"error: {r.kind} '{r.name}' ({r.check}): {r.error}")
    for r in results:
        lines.extend(f"warning: {r.kind} '{r.name}' ({r.check}): {w}" for w in r.warnings)
    counts = summary(results)
    lines.append("")
    lines.append(f"{counts['passed']} passed, {counts['failed']} failed")
    return "\n".join(lines) + "\n"
