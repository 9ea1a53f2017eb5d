"""The sections ``channelsync test`` adds to the login checks: round trips (``--end-to-end``).

Rendering only: nothing is probed here. ``render/checks.py`` draws the login checks' table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from channelsync.probe.check import Result
from channelsync.probe.dnscheck import Report
from channelsync.probe.e2e import Trip
from channelsync.render.table import lines, widths

E2E_HEADERS = ("CHANNEL", "ROUND TRIP", "LATENCY", "PATH", "HINT")


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The last column as it is (a hint or what DNS found: never cut)."""
    cells = [headers, *rows]
    return lines(cells, widths([row[:-1] for row in cells]))


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
    """The login checks' document with their ``mailbox`` figures, and ``e2e`` and ``dns``
    sections when those ran."""
    from channelsync.render.checks import mailbox, summary

    document: dict[str, Any] = {
        "results": [r.to_json() for r in results],
        "summary": summary(results),
    }
    if results:
        document["mailbox"] = mailbox(results)
    if trips is not None:
        document["e2e"] = [t.to_json() for t in trips]
        document["summary"]["e2e"] = e2e_summary(trips)
    if dns is not None:
        document["dns"] = [r.to_json() for r in dns]
        failed = sum(1 for r in dns if not r.ok)
        document["summary"]["dns"] = {"passed": len(dns) - failed, "failed": failed}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _cell(text: str) -> str:
    import html

    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


def markdown(
    results: Sequence[Result],
    trips: Sequence[Trip] | None = None,
    dns: Sequence[Report] | None = None,
) -> str:
    """Tables a scheduled job can post (a chat message, an issue comment)."""
    from channelsync.render.checks import summary

    parts = []
    if results:
        counts = summary(results)
        rows = [
            "| resource | check | endpoint | result | hint |",
            "|---|---|---|---|---|",
            *(
                f"| {_cell(r.name)} | {r.check} | `{r.endpoint}` | "
                + ("ok" if r.error is None else f":x: `{r.error.code}`")
                + f" | {_cell(r.error.hint if r.error else '; '.join(r.warnings))} |"
                for r in results
            ),
        ]
        parts.append(
            f"**Connection tests:** {counts['passed']} passed, {counts['failed']} failed\n\n"
            + "\n".join(rows)
        )
    if dns is not None:
        failed = sum(1 for r in dns if not r.ok)
        rows = ["| channel | DNS | result | found | hint |", "|---|---|---|---|---|"]
        for report in dns:
            for f in report.findings:
                outcome = {"ok": "ok", "note": "note"}.get(f.status, f":x: `{f.code}`")
                rows.append(
                    f"| {_cell(report.name)} | {f.check} | {outcome} | {_cell(f.detail)} | "
                    f"{_cell(f.hint if f.status != 'ok' else '')} |"
                )
        parts.append(f"**DNS:** {len(dns) - failed} passed, {failed} failed\n\n" + "\n".join(rows))
    if trips is not None:
        counts = e2e_summary(trips)
        rows = ["| channel | round trip | latency | hint |", "|---|---|---|---|"]
        for t in trips:
            outcome = _outcome(t) if t.ok else f":x: `{t.diagnosis.code if t.diagnosis else ''}`"
            latency = f"{t.latency_ms} ms" if t.latency_ms is not None else "-"
            hint = t.diagnosis.hint if t.diagnosis and t.status != "arrived" else ""
            rows.append(f"| {_cell(t.name)} | {outcome} | {latency} | {_cell(hint)} |")
        parts.append(
            f"**End to end:** {counts['arrived']} arrived, {counts['failed']} failed, "
            f"{counts['not_testable']} not testable\n\n" + "\n".join(rows)
        )
    if not parts:
        return "**Connection tests:** nothing selected\n"
    return "\n\n".join(parts) + "\n"


def junit(
    results: Sequence[Result],
    trips: Sequence[Trip] | None = None,
    dns: Sequence[Report] | None = None,
) -> str:
    """JUnit XML, one testcase per check, so that CI systems show the failures natively."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="channelsync test")

    def suite(name: str) -> ET.Element:
        return ET.SubElement(suites, "testsuite", name=name)

    def case(parent: ET.Element, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
        return ET.SubElement(
            parent, "testcase", classname=classname, name=name, time=f"{seconds:.3f}"
        )

    def fail(element: ET.Element, code: str, message: str, hint: str) -> None:
        attrs = {"type": code, "message": f"{code}: {message}"}
        ET.SubElement(element, "failure", attrs).text = hint

    if results:
        login = suite("connections")
        for r in results:
            element = case(
                login, r.kind, f"{r.name} ({r.check}, {r.endpoint})", r.elapsed_ms / 1000
            )
            if r.error is not None:
                fail(element, r.error.code, r.error.message, r.error.hint)
    if dns is not None:
        checks = suite("dns")
        for report in dns:
            for f in report.findings:
                element = case(checks, f"dns.{report.domain}", f"{report.name} ({f.check})")
                if f.status == "fail":
                    fail(element, f.code or "dns", f.detail, f.hint)
    if trips is not None:
        e2e = suite("end-to-end")
        for t in trips:
            element = case(e2e, "e2e", t.name, (t.latency_ms or 0) / 1000)
            if t.status == "not_testable" and t.diagnosis is not None:
                ET.SubElement(element, "skipped", message=str(t.diagnosis))
            elif not t.ok and t.diagnosis is not None:
                fail(element, t.diagnosis.code, t.diagnosis.message, t.diagnosis.hint)
    for element in suites:
        cases = list(element)
        element.set("tests", str(len(cases)))
        element.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        element.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    ET.indent(suites)
    xml = ET.tostring(suites, "unicode")  # ElementTree writes characters XML 1.0 forbids
    xml = _NOT_XML.sub(lambda found: f"\\u{ord(found[0]):04X}", xml)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + xml + "\n"


# what XML 1.0 forbids in a document (section 2.2): written as \uXXXX, so the file stays readable
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def formatted(
    fmt: str,
    results: Sequence[Result],
    trips: Sequence[Trip] | None = None,
    dns: Sequence[Report] | None = None,
) -> str:
    """json, markdown or junit (text is drawn per section)."""
    if fmt == "markdown":
        return markdown(results, trips, dns)
    if fmt == "junit":
        return junit(results, trips, dns)
    return as_json(results, trips, dns)
