"""What ``channelsync export`` did: the files written, the documents removed (or kept), and
the secrets to set before the next plan."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from channelsync.export import ExportReport


def changes(report: ExportReport) -> str:
    lines = [f"wrote {path}" for path in report.written]
    lines += [f"removed {what}" for what in report.removed]
    lines += [f"would remove {what}" for what in report.not_pruned]
    lines += [f"already in the config, left as it is: {what}" for what in report.already]
    lines += [f"note: {what}" for what in report.needs]
    if report.not_pruned:
        lines.append(
            f"{len(report.not_pruned)} resource(s) not in the tenant were left in the config; "
            "rerun with --prune to remove them"
        )
    return "".join(f"{line}\n" for line in lines)


def secrets_to_set(report: ExportReport) -> str:
    if not report.placeholders:
        return ""
    lines = ["", "Set these secrets before plan or apply (their values never leave the tenant):"]
    lines += [f"  {variable}  ({what})" for variable, what in report.placeholders]
    return "\n".join(lines) + "\n"
