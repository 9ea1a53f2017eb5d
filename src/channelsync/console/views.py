"""What the console's pages show, as plain data: rows, cells and words (no HTTP here).

The channel table is ``listing.py``'s (the same rows, filters and natural sort as
``channelsync list``) with the health columns added; the column headers are
``render/listing.py``'s and the property labels the schema's titles (the console's words).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from channelsync import document, listing
from channelsync.errors import UsageError, visible
from channelsync.monitor.history import CheckResult
from channelsync.render.listing import HEADERS
from channelsync.render.runbook import VALUE_WORDS
from channelsync.secrets import FINGERPRINT_PREFIX

HEALTH = {"health": "LAST RESULT", "checked": "WHEN (UTC)", "latency": "LATENCY"}
CHANNEL_HEADERS = {**HEADERS, **HEALTH}
HEALTH_FILTER = ("ok", "failing", "never")  # the values of the health column's filter
FINGERPRINT_SHOWN = 12  # hex digits of a secret's fingerprint on a page
MAX_ROWS = 2000  # rows on one page; a filter narrows a larger tenant
MAX_FILTER = 200  # characters of one filter or search


@dataclass
class ChannelTable:
    rows: list[dict[str, Any]]
    total: int
    sort: str
    filters: dict[str, str]
    query: str
    error: str | None = None
    matched: int = 0  # rows that match, of which the first MAX_ROWS are shown
    columns: dict[str, str] = field(default_factory=lambda: dict(CHANNEL_HEADERS))


def health(results: list[CheckResult]) -> dict[str, Any]:
    """The health cells of a resource from the newest result of each of its checks."""
    if not results:
        return {"health": "never", "health_text": "not tested yet", "checked": "", "latency": ""}
    failed = [r for r in results if not r.ok]
    newest = max(r.at for r in results)
    return {
        "health": "failing" if failed else "ok",
        "health_text": ", ".join(f"{r.check}: {r.code}" for r in failed) if failed else "ok",
        "checked": when(newest, short=True),
        "checked_at": newest,
        "latency": f"{max(r.elapsed_ms for r in results)} ms",
        "latency_ms": max(r.elapsed_ms for r in results),
    }


def channel_table(
    channels: list[dict[str, Any]],
    tenant_default: str,
    latest: Mapping[str, list[CheckResult]],
    params: Mapping[str, str],
) -> ChannelTable:
    """The rows a query asks for: ``sort`` (a column, ``-`` for descending), a filter per
    column (``*`` and ``?`` wildcards; text without them matches anywhere in the cell), and
    ``q``, free text found in any cell."""
    rows = listing.rows(channels, tenant_default)
    for row in rows:
        row.update(health(latest.get(row["name"], [])))
    sort = params.get("sort") or "name"
    query = (params.get("q") or "").strip()
    filters = {c: params[c].strip() for c in CHANNEL_HEADERS if params.get(c, "").strip()}
    table = ChannelTable([], len(rows), sort, filters, query)
    if any(len(v) > MAX_FILTER for v in (query, sort, *filters.values())):
        table.error = f"a filter, search or sort is at most {MAX_FILTER} characters"
        return table
    try:
        parsed = [
            listing.Filter.parse(f"{c}={_pattern(c, v)}")
            for c, v in filters.items()
            if c in listing.COLUMNS
        ]
        column = sort.lstrip("-")
        kept = listing.select(rows, parsed, sort if column in listing.COLUMNS else "name")
    except UsageError as exc:  # it quotes the input: bidi and control characters as \uXXXX
        table.error = visible(str(exc))
        return table
    if column in HEALTH:
        kept.sort(key=_health_key(column), reverse=sort.startswith("-"))
    elif column not in CHANNEL_HEADERS:
        table.error = f"cannot sort by '{visible(sort)}': use one of {', '.join(CHANNEL_HEADERS)}"
        return table
    for name in HEALTH:
        if name in filters:
            wanted = filters[name].lower()
            kept = [r for r in kept if wanted in _health_cell(r, name).lower()]
    if query:
        needle = query.lower()
        kept = [r for r in kept if any(needle in _shown(r, c).lower() for c in CHANNEL_HEADERS)]
    table.matched = len(kept)
    table.rows = kept[:MAX_ROWS]
    return table


def _pattern(column: str, value: str) -> str:
    if column == "enabled" or "*" in value or "?" in value:
        return value
    return f"*{value}*"


def _health_key(column: str) -> Any:
    if column == "health":
        order = {"failing": 0, "ok": 1, "never": 2}
        return lambda r: (order[r["health"]], r["name"].lower())
    if column == "checked":
        return lambda r: (r.get("checked_at", 0.0), r["name"].lower())
    return lambda r: (r.get("latency_ms", -1), r["name"].lower())


def _health_cell(row: dict[str, Any], column: str) -> str:
    return f"{row['health']} {row['health_text']}" if column == "health" else str(row[column])


def _shown(row: dict[str, Any], column: str) -> str:
    if column in HEALTH:
        return _health_cell(row, column)
    return listing.cell(row[column])


def sort_link(table: ChannelTable, column: str) -> str:
    """The query that sorts by ``column`` (descending when it is already ascending)."""
    sort = f"-{column}" if table.sort == column else column
    return _query({**table.filters, **({"q": table.query} if table.query else {}), "sort": sort})


def _query(params: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(params)


def when(at: float, *, short: bool = False) -> str:
    shape = "%Y-%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S UTC"
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime(shape)


def properties(kind: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every stored field of a resource as (console label, shown value); a secret is "set"
    and the start of its keyed fingerprint, never a value."""
    titles = document.field_titles(kind)
    secret = {".".join(p) for p in document.secret_paths(kind)}
    flat: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif value is not None and prefix + key != "kind":
                flat[prefix + key] = value

    walk(body, "")
    order = {path: i for i, path in enumerate(titles)}  # the schema's order, the console's
    return [
        (titles.get(path, path), secret_cell(value) if path in secret else value_cell(value))
        for path, value in sorted(flat.items(), key=lambda item: order.get(item[0], len(order)))
    ]


def secret_cell(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith(FINGERPRINT_PREFIX):
        return "set"  # never a value, whatever the store holds
    return f"set · {value[: len(FINGERPRINT_PREFIX) + FINGERPRINT_SHOWN]}…"


def value_cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "(none)"
    if value is None:
        return "(none)"
    return str(VALUE_WORDS.get(value, value)) if isinstance(value, str) else str(value)


def audit_rows(rows: list[tuple[Any, ...]]) -> list[dict[str, str]]:
    return [
        {
            "at": when(r[0]),
            "actor": str(r[1]),
            "action": str(r[2]),
            "fields": ", ".join(json.loads(r[3])) or "-",
        }
        for r in rows
    ]
