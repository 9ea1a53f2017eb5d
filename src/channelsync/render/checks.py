"""Connection-test results as a text table or as JSON; no probing or diagnosing happens here."""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Sequence
from typing import Any

from channelsync.probe.check import Result
from channelsync.render.table import GAP as _GAP
from channelsync.render.table import lines as _lines

HEADERS = ("RESOURCE", "CHECK", "ENDPOINT", "RESULT", "TIME", "HINT")


def summary(results: Sequence[Result]) -> dict[str, int]:
    passed = sum(1 for r in results if r.ok)
    return {"passed": passed, "failed": len(results) - passed}


def as_json(results: Sequence[Result]) -> str:
    document = {"results": [r.to_json() for r in results], "summary": summary(results)}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def mailbox(results: Sequence[Result], now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """The figures each incoming check found in its mailbox (the JSON's ``mailbox`` section):
    count (IMAP and POP3), unseen count and oldest message (IMAP), read-only."""
    now = now or dt.datetime.now(dt.UTC)
    return [
        {
            "name": r.name,
            "endpoint": r.endpoint,
            "messages": r.messages,
            "unseen": r.unseen,
            "oldest": r.oldest.isoformat() if r.oldest else None,
            "oldest_age_minutes": int((now - r.oldest).total_seconds() // 60) if r.oldest else None,
        }
        for r in results
        if r.check == "incoming" and r.messages is not None
    ]


def _figures(result: Result, now: dt.datetime | None = None) -> str:
    from channelsync.probe.mailbox import age

    parts = [f"{result.messages} messages"]
    if result.unseen is not None:
        parts.append(f"{result.unseen} unseen")
    if result.oldest is not None:
        parts.append(f"oldest {age((now or dt.datetime.now(dt.UTC)) - result.oldest)} old")
    return ", ".join(parts)


def _outcome(result: Result) -> str:
    if result.error is not None:
        return f"FAIL {result.error.code}"
    if result.messages is not None:
        return f"ok ({_figures(result)})"
    if result.queue_id is not None:
        return f"ok (queued as {result.queue_id})"
    return "ok"


def _hint(result: Result) -> str:
    if result.error is not None:
        return result.error.hint
    return "; ".join(result.warnings)


WIDTH = 100  # the table fits a 100-column terminal or CI log
_MIN_HINT = 10  # a hint cut short is printed in full below the table
# (column, narrowest, hint width kept): long names give way first, endpoints last
_SHRINKABLE = ((0, 20, 20), (0, 12, _MIN_HINT), (2, 20, _MIN_HINT))
_GREEN, _RED, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[0m"


def _widths(rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS) - 1)]
    for column, floor, hint in _SHRINKABLE:
        over = sum(widths) + len(_GAP) * len(widths) + hint - WIDTH
        widths[column] -= max(0, min(over, widths[column] - floor))
    return [*widths, max(WIDTH - sum(widths) - len(_GAP) * len(widths), _MIN_HINT)]


def text(results: Sequence[Result], *, colour: bool = False) -> str:
    """The table, then each failure once in full: the server's words, and the whole hint
    when the table had to shorten it. ``colour``: ok in green and FAIL in red."""
    if not results:
        return "nothing to test: no channels or SMTP servers selected\n"
    rows = [
        (r.name, r.check, r.endpoint, _outcome(r), f"{r.elapsed_ms} ms", _hint(r)) for r in results
    ]
    widths = _widths([HEADERS, *rows])

    def paint(i: int, cells: list[str]) -> None:
        if i > 0:
            ink = _GREEN if results[i - 1].ok else _RED
            word = "ok" if results[i - 1].ok else "FAIL"
            cells[3] = cells[3].replace(word, f"{ink}{word}{_RESET}", 1)

    lines = _lines([HEADERS, *rows], widths, paint=paint if colour else None)
    failures = [r for r in results if r.error is not None]
    if failures:
        lines.append("")
    for r in failures:
        assert r.error is not None
        lines.append(f"error: {r.kind} '{r.name}' ({r.check}): {r.error.code}: {r.error.message}")
        if len(r.error.hint) > widths[-1]:
            lines.append(f"  hint: {r.error.hint}")
    for r in results:
        lines.extend(f"warning: {r.kind} '{r.name}' ({r.check}): {w}" for w in r.warnings)
    counts = summary(results)
    lines.append("")
    lines.append(f"{counts['passed']} passed, {counts['failed']} failed")
    return "\n".join(lines) + "\n"


CLEAR_LINE = "\r\x1b[K"  # the progress bar's line, wiped before the results


def progress_bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // total
    sys.stderr.write(f"\rtesting [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()
