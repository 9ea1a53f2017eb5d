"""The sections ``channelsync test`` adds to the login checks: round trips (``--end-to-end``).

Rendering only: nothing is probed here. ``probe/render.py`` draws the login checks' table.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from channelsync.probe.check import Result
from channelsync.probe.dnscheck import Report
from channelsync.probe.e2e import Trip

E2E_HEADERS = ("CHANNEL", "ROUND TRIP", "LATENCY", "PATH", "HINT")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in (headers, *rows)) for i in range(len(headers) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in (headers, *rows)
    ]


def _outcome(trip: Trip) -> str:
    if trip.status == "arrived":
        return "arrived" + (f" (cleaned up {trip.cleaned})" if trip.cleaned is not None else "")
    if trip.status == "not_testable":
        return "not testable"
    assert trip.diagnosis is not None
    return f"FAIL {trip.diagnosis.code}"


def e2e_text(trips: Sequence[Trip]) -> str:
    if not trips:
        return "nothing to test end to end: no channels selected\n"
    rows = [
        (
            t.name,
            _outcome(t),
            f"{t.latency_ms} ms" if t.latency_ms is not None else "-",
            f"{t.sent_through} -> {t.mailbox}" if t.sent_through else f"-> {t.mailbox}",
            t.diagnosis.hint if t.diagnosis and t.status != "arrived" else "",
        )
        for t in trips
    ]
    lines = _table(E2E_HEADERS, rows)
    details = []
    for t in trips:
        if t.status == "arrived":
            if t.hops:
                details.append(f"{t.name}: hops: {'; '.join(t.hops)}")
            verdicts = ", ".join(f"{k}={v}" for k, v in sorted(t.authentication.items()))
            details.append(f"{t.name}: authentication: {verdicts or 'none recorded'}")
        elif t.diagnosis is not None:
            word = "note" if t.status == "not_testable" else "error"
            details.append(f"{word}: EmailChannel '{t.name}' (end-to-end): {t.diagnosis}")
        details.extend(f"warning: EmailChannel '{t.name}' (end-to-end): {w}" for w in t.warnings)
    if details:
        lines += ["", *details]
    counts = e2e_summary(trips)
    lines += [
        "",
        f"{counts['arrived']} arrived, {counts['failed']} failed, "
        f"{counts['not_testable']} not testable",
    ]
    return "\n".join(lines) + "\n"


def e2e_summary(trips: Sequence[Trip]) -> dict[str, int]:
    arrived = sum(1 for t in trips if t.status == "arrived")
    untested = sum(1 for t in trips if t.status == "not_testable")
    return {"arrived": arrived, "failed": len(trips) - arrived - untested, "not_testable": untested}


def dns_text(reports: Sequence[Report]) -> str:
    if not reports:
        return "nothing to check in DNS: no channels selected\n"
    rows = []
    for r in reports:
        for f in r.findings:
            outcome = "ok" if f.status == "ok" else ("note" if f.status == "note" else "FAIL")
            code = f" {f.code}" if f.code else ""
            rows.append((r.name, f.check, outcome + code, f.detail))
    lines = _table(("CHANNEL", "DNS", "RESULT", "FOUND"), rows)
    problems = [
        f"{'error' if f.status == 'fail' else 'note'}: EmailChannel '{r.name}' (dns, {r.domain}): "
        + (f"{f.code}: " if f.code else "")
        + f"{f.detail}; {f.hint}"
        for r in reports
        for f in r.findings
        if f.status != "ok"
    ]
    if problems:
        lines += ["", *problems]
    failed = sum(1 for r in reports if not r.ok)
    lines += ["", f"{len(reports) - failed} channel(s) pass the DNS checks, {failed} fail"]
    return "\n".join(lines) + "\n"


def as_json(
    results: Sequence[Result],
    trips: Sequence[Trip] | None,
    dns: Sequence[Report] | None = None,
) -> str:
    """The login checks' document, with ``e2e`` and ``dns`` sections when those ran."""
    from channelsync.probe.render import summary

    document: dict[str, Any] = {
        "results": [r.to_json() for r in results],
        "summary": summary(results),
    }
    if trips is not None:
        document["e2e"] = [t.to_json() for t in trips]
        document["summary"]["e2e"] = e2e_summary(trips)
    if dns is not None:
        document["dns"] = [r.to_json() for r in dns]
        failed = sum(1 for r in dns if not r.ok)
        document["summary"]["dns"] = {"passed": len(dns) - failed, "failed": failed}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
