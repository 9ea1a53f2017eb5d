"""The console's channel list: one row per channel, sortable and filterable.

The Outgoing Mail Server column shows where replies really go: a channel without its own
outgoing server follows the tenant's default (the SmtpServer marked default, else VCC
Internal), as the vendor's list does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from channelsync.errors import UsageError

COLUMNS = ("name", "email", "protocol", "incoming", "port", "outgoing", "script", "enabled")
HEADERS = {
    "name": "CHANNEL NAME",
    "email": "EMAIL ADDRESS",
    "protocol": "PROTOCOL",
    "incoming": "INCOMING MAIL SERVER",
    "port": "PORT",
    "outgoing": "OUTGOING MAIL SERVER",
    "script": "EMAIL SCRIPT",
    "enabled": "ENABLED",
}


@dataclass(frozen=True)
class Filter:
    column: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Filter:
        column, sep, value = text.partition("=")
        column = column.strip().lower()
        if not sep or column not in COLUMNS:
            raise UsageError(
                f"bad filter '{text}': use COLUMN=VALUE with a column of {', '.join(COLUMNS)}"
            )
        value = value.strip()
        if column == "enabled":
            flags = {"true": "true", "yes": "true", "false": "false", "no": "false"}
            if value.lower() not in flags:
                raise UsageError(f"bad filter '{text}': enabled is true or false")
            value = flags[value.lower()]
        elif column == "port" and not value.isdigit():
            raise UsageError(f"bad filter '{text}': port is a number")
        return cls(column, value)

    def matches(self, row: dict[str, Any]) -> bool:
        cell = row[self.column]
        if self.column == "outgoing":
            cell = row["outgoing_server"]
        return str(cell).lower() == self.value.lower()


def rows(channels: Iterable[dict[str, Any]], tenant_default: str) -> list[dict[str, Any]]:
    out = []
    for ch in channels:
        incoming = ch["incoming"]
        outgoing = ch.get("outgoing")
        server = outgoing["server"] if outgoing else tenant_default
        shown = server if outgoing else f"{server} (tenant default)"
        if outgoing and outgoing.get("override"):
            shown += " (override)"
        out.append(
            {
                "name": ch["name"],
                "email": ch["email"],
                "protocol": incoming["protocol"],
                "incoming": incoming["server"],
                "port": incoming["port"],
                "outgoing": shown,
                "outgoing_server": server,
                "script": ch["script"],
                "enabled": ch["enabled"],
            }
        )
    return out


def select(table: list[dict[str, Any]], filters: list[Filter], sort: str) -> list[dict[str, Any]]:
    column = sort.lstrip("-").lower()
    if column not in COLUMNS:
        raise UsageError(f"cannot sort by '{sort}': use one of {', '.join(COLUMNS)}")
    kept = [r for r in table if all(f.matches(r) for f in filters)]
    return sorted(
        kept, key=lambda r: (str(r[column]).lower(), r["name"]), reverse=sort.startswith("-")
    )


def render_table(table: list[dict[str, Any]]) -> str:
    cells = [[HEADERS[c] for c in COLUMNS]]
    cells += [[_cell(r[c]) for c in COLUMNS] for r in table]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    lines = [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.append(f"{len(table)} channel(s)")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
