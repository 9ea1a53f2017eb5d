"""The console's channel list (and its user list of agents): one row per resource,
sortable and filterable.

The Outgoing Mail Server column shows where replies really go: a channel or agent without its
own outgoing server follows the tenant's default (the SmtpServer marked default, else VCC
Internal), as the vendor's list does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from channelsync.errors import UsageError

COLUMNS = ("name", "email", "protocol", "incoming", "port", "outgoing", "script", "enabled")
AGENT_COLUMNS = ("name", "email", "outgoing")
# the kinds `list --kind` shows, by their word, with their columns
LISTED = {"channel": ("EmailChannel", COLUMNS), "agent": ("Agent", AGENT_COLUMNS)}
# outgoing_mode: the channel follows the tenant default, sends through its server with its own
# account (override), or through its server with the server's account (assigned)
OVERRIDE, ASSIGNED = "override", "assigned"
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class Filter:
    column: str
    value: str

    @classmethod
    def parse(cls, text: str, columns: tuple[str, ...] = COLUMNS) -> Filter:
        column, sep, value = text.partition("=")
        column = column.strip().lower()
        if not sep or column not in columns:
            raise UsageError(
                f"bad filter '{text}': use COLUMN=VALUE with a column of {', '.join(columns)}"
            )
        value = value.strip()
        if column == "enabled":
            flags = {"true": "yes", "yes": "yes", "false": "no", "no": "no"}  # as shown
            if value.lower() not in flags:
                raise UsageError(f"bad filter '{text}': enabled is true or false")
            value = flags[value.lower()]
        elif column == "port" and not value.replace("*", "").replace("?", "").isdigit():
            raise UsageError(f"bad filter '{text}': port is a number (wildcards * and ? allowed)")
        return cls(column, value)

    def matches(self, row: dict[str, Any]) -> bool:
        """The value as the table shows it, or (outgoing) the server's name alone; ``*`` and
        ``?`` are wildcards as in drift ignore rules, and case does not matter."""
        cells = [cell(row[self.column])]
        if self.column == "outgoing":
            cells.append(row["outgoing_server"])
        wanted = self.value.lower()
        return any(c.lower() == wanted or fnmatchcase(c.lower(), wanted) for c in cells)


def _outgoing(resource: dict[str, Any], tenant_default: str) -> dict[str, Any]:
    """The Outgoing Mail Server cells of a channel or an agent."""
    outgoing = resource.get("outgoing")
    server = outgoing["server"] if outgoing else tenant_default
    mode = "tenant default" if not outgoing else OVERRIDE if outgoing.get("override") else ""
    shown = f"{server} ({mode})" if mode else server
    return {"outgoing": shown, "outgoing_server": server, "outgoing_mode": mode or ASSIGNED}


def rows(channels: Iterable[dict[str, Any]], tenant_default: str) -> list[dict[str, Any]]:
    out = []
    for ch in channels:
        incoming = ch["incoming"]
        out.append(
            {
                "name": ch["name"],
                "email": ch["email"],
                "protocol": incoming["protocol"],
                "incoming": incoming["server"],
                "port": incoming["port"],
                **_outgoing(ch, tenant_default),
                "script": ch["script"],
                "enabled": ch["enabled"],
            }
        )
    return out


def agent_rows(agents: Iterable[dict[str, Any]], tenant_default: str) -> list[dict[str, Any]]:
    return [
        {"name": a["name"], "email": a["email"], **_outgoing(a, tenant_default)} for a in agents
    ]


def select(
    table: list[dict[str, Any]],
    filters: list[Filter],
    sort: str,
    columns: tuple[str, ...] = COLUMNS,
) -> list[dict[str, Any]]:
    column = sort.lstrip("-").lower()
    if column not in columns:
        raise UsageError(f"cannot sort by '{sort}': use one of {', '.join(columns)}")
    kept = [r for r in table if all(f.matches(r) for f in filters)]
    return sorted(
        kept,
        key=lambda r: (_natural(cell(r[column])), _natural(r["name"])),
        reverse=sort.startswith("-"),
    )


def _natural(text: str) -> list[Any]:
    """'Team 2' before 'Team 10': runs of digits compare as numbers, the rest ignoring case."""
    return [int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(text)]


def cell(value: Any) -> str:
    """A value as the table shows it (filters and sorting compare this)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
