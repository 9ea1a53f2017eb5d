"""``channelsync list``: the channel (or agent) table like the console's, or JSON rows."""

from __future__ import annotations

import json
from typing import Any

from channelsync.listing import AGENT_COLUMNS, COLUMNS, cell
from channelsync.render.table import lines

OUTGOING_FIELDS = ("outgoing_server", "outgoing_mode")
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


AGENT_HEADERS = {**HEADERS, "name": "USER NAME"}


def as_json(table: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    """The rows with the outgoing server's name and its mode as fields of their own."""
    fields = (*columns, *OUTGOING_FIELDS)
    return json.dumps([{c: r[c] for c in fields} for r in table], indent=2) + "\n"


def text(table: list[dict[str, Any]], word: str = "channel") -> str:
    columns, headers = (COLUMNS, HEADERS) if word == "channel" else (AGENT_COLUMNS, AGENT_HEADERS)
    cells = [[headers[c] for c in columns]]
    cells += [[cell(r[c]) for c in columns] for r in table]
    return "\n".join([*lines(cells), f"{len(table)} {word}(s)"]) + "\n"
