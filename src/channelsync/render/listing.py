"""``channelsync list``: the channel table like the console's, or JSON rows."""

from __future__ import annotations

import json
from typing import Any

from channelsync.listing import COLUMNS, cell
from channelsync.render.table import lines

JSON_FIELDS = (*COLUMNS, "outgoing_server", "outgoing_mode")
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


def as_json(table: list[dict[str, Any]]) -> str:
    """The rows with the outgoing server's name and its mode as fields of their own."""
    return json.dumps([{c: r[c] for c in JSON_FIELDS} for r in table], indent=2) + "\n"


def text(table: list[dict[str, Any]]) -> str:
    cells = [[HEADERS[c] for c in COLUMNS]]
    cells += [[cell(r[c]) for c in COLUMNS] for r in table]
    return "\n".join([*lines(cells), f"{len(table)} channel(s)"]) + "\n"
