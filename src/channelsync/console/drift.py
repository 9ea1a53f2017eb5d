"""Drift reports: the drift workflow posts ``channelsync drift --format json`` to the server,
which keeps the last one per repository for the console's Drift page.

``POST /v1/drift-reports`` (``/v1/tenants/{tenant}/drift-reports``; write role) takes that
JSON plus ``repository`` (a name) and ``repository_url`` (http(s), optional). The body is
bounded, and only what the page shows is kept: per change its kind, name, action and the
differing fields; a sensitive field keeps its path only, never a before or after. When the
monitor runs, a report with drift is also alerted (``Monitor.drift_reported``: one alert
per distinct report).
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from channelsync.console.history import NEEDS_SQLITE
from channelsync.server.context import Context
from channelsync.server.http import ApiError, json_response

MAX_BODY = 2 * 1024 * 1024
# a report may be larger than --max-body (1 MiB by default): the paths the server's Guard lets
# carry up to MAX_BODY
LARGER_BODIES = {"/drift-reports": MAX_BODY}
MAX_CHANGES = 2000
MAX_FIELDS = 200
MAX_TEXT = 300
MAX_FILES = 50_000  # resources whose file a report names (kind/name -> path in the repository)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_reports (
    tenant TEXT NOT NULL, repository TEXT NOT NULL, url TEXT, at REAL NOT NULL,
    actor TEXT NOT NULL, report TEXT NOT NULL, PRIMARY KEY (tenant, repository)
);
CREATE TABLE IF NOT EXISTS drift_files (
    tenant TEXT NOT NULL, repository TEXT NOT NULL, resource TEXT NOT NULL, path TEXT NOT NULL,
    PRIMARY KEY (tenant, resource, repository)
);
"""


def create_table(connection: sqlite3.Connection) -> None:
    connection.executescript(_SCHEMA)


async def bounded_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) past ``limit`` bytes without reading the rest."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _text(value: Any) -> str:
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return shown if len(shown) <= MAX_TEXT else shown[: MAX_TEXT - 1] + "…"


def checked_report(raw: Any) -> dict[str, Any]:
    """What is kept of a posted report; ApiError 422 naming what is wrong."""
    if not isinstance(raw, dict):
        raise ApiError(422, "the body must be the JSON of 'channelsync drift --format json'")
    repository = raw.get("repository")
    if not isinstance(repository, str) or not 0 < len(repository) <= 200:
        raise ApiError(422, "repository: give the repository's name (at most 200 characters)")
    url = raw.get("repository_url")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > 500
    ):
        raise ApiError(422, "repository_url: an http(s) URL of at most 500 characters")
    changes = raw.get("changes")
    if not isinstance(changes, list) or not isinstance(raw.get("summary"), dict):
        raise ApiError(422, "changes and summary missing: post 'channelsync drift --format json'")
    kept = []
    for change in changes[:MAX_CHANGES]:
        if not isinstance(change, dict):
            raise ApiError(422, "changes: each change is an object")
        fields = []
        for f in (change.get("fields") or [])[:MAX_FIELDS]:
            if not isinstance(f, dict):
                raise ApiError(422, "changes[].fields: each field is an object")
            sensitive = bool(f.get("sensitive"))
            fields.append(
                {
                    "path": _text(f.get("path", "")),
                    "sensitive": sensitive,
                    "before": None if sensitive else _text(f.get("before")),
                    "after": None if sensitive else _text(f.get("after")),
                }
            )
        kept.append(
            {
                "kind": _text(change.get("kind", "")),
                "name": _text(change.get("name", "")),
                "action": _text(change.get("action", "")),
                "previous_name": _text(change["previous_name"])
                if change.get("previous_name")
                else None,
                "fields": fields,
            }
        )
    summary = {str(k)[:20]: v for k, v in raw["summary"].items() if isinstance(v, int)}
    files = _files(raw.get("files"))
    return {
        "repository": repository,
        "repository_url": url,
        "target": _text(raw.get("target", "")),
        "drift": bool(raw.get("drift", bool(kept))),
        "summary": summary,
        "changes": kept,
        "cut": max(len(changes) - MAX_CHANGES, 0),
        "warnings": [_text(w) for w in (raw.get("warnings") or [])[:50]],
        "files": files,
    }


def _files(raw: Any) -> dict[str, str]:
    """``files``: resource ("Kind/name") -> its file, a plain path inside the repository."""
    if raw is None:
        return {}
    if not isinstance(raw, dict) or len(raw) > MAX_FILES:
        raise ApiError(422, f"files: an object of at most {MAX_FILES} 'Kind/name': path entries")
    for key, path in raw.items():
        plain = isinstance(path, str) and 0 < len(path) <= MAX_TEXT and path.isprintable()
        if not plain or path.startswith("/") or ".." in path.split("/") or len(key) > MAX_TEXT:
            raise ApiError(422, f"files: {_text(key)}: a path relative to the repository root")
    return dict(raw)


async def post_report(ctx: Context, tenant: str, request: Request) -> Response:
    entry = ctx.auth(request, "write")
    try:
        raw = json.loads(await bounded_body(request, MAX_BODY))
    except ValueError:
        raise ApiError(400, "the request body is not JSON") from None
    report = checked_report(raw)
    files = report.pop("files")
    at = time.time()

    def work(store: Any) -> None:
        if store.sqlite is None:
            raise ApiError(501, NEEDS_SQLITE)
        with store.repo.transaction():
            _store(store.sqlite, tenant, report, at, entry.name, files)

    await ctx.db(work)
    monitor = getattr(request.app.state, "monitor", None)  # serve --monitor-every
    if monitor is not None and report["drift"]:
        monitor.drift_reported(tenant, report["repository"], differences(report))
    return json_response(
        {
            "repository": report["repository"],
            "drift": report["drift"],
            "changes": len(report["changes"]),
        },
        201,
    )


def differences(report: dict[str, Any]) -> list[str]:
    """A kept report's changes, one line each, as the drift alert lists them."""
    found = []
    for change in report["changes"]:
        fields = "; ".join(
            f"{f['path']}: a secret differs"
            if f["sensitive"]
            else f"{f['path']}: {f['before']} → {f['after']}"
            for f in change["fields"]
        )
        found.append(
            f"{change['action']} {change['kind']} '{change['name']}'"
            + (f" ({fields})" if fields else "")
        )
    return found


def _store(
    db: sqlite3.Connection,
    tenant: str,
    report: dict[str, Any],
    at: float,
    actor: str,
    files: dict[str, str],
) -> None:
    """The repository's report and its resources' files replace the ones it posted before."""
    repository = report["repository"]
    db.execute(
        "INSERT OR REPLACE INTO drift_reports (tenant, repository, url, at, actor, report)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (tenant, repository, report["repository_url"], at, actor, json.dumps(report)),
    )
    db.execute("DELETE FROM drift_files WHERE tenant = ? AND repository = ?", (tenant, repository))
    db.executemany(
        "INSERT INTO drift_files (tenant, repository, resource, path) VALUES (?, ?, ?, ?)",
        [(tenant, repository, key, path) for key, path in files.items()],
    )


def file_of(db: sqlite3.Connection, tenant: str, kind: str, name: str) -> tuple[str, str] | None:
    """A resource's file (its path, its web address) from the newest report that names it
    and its repository's URL; None when no report does."""
    row = db.execute(
        "SELECT r.url, f.path FROM drift_files f JOIN drift_reports r ON r.tenant = f.tenant"
        " AND r.repository = f.repository WHERE f.tenant = ? AND f.resource = ?"
        " AND r.url IS NOT NULL ORDER BY r.at DESC LIMIT 1",
        (tenant, f"{kind}/{name}"),
    ).fetchone()
    if row is None:
        return None
    from urllib.parse import quote

    return str(row[1]), f"{str(row[0]).rstrip('/')}/blob/HEAD/{quote(str(row[1]))}"


def reports(connection: sqlite3.Connection, tenant: str) -> list[dict[str, Any]]:
    """The last report of each repository, newest first."""
    rows = connection.execute(
        "SELECT at, actor, report FROM drift_reports WHERE tenant = ? ORDER BY at DESC LIMIT 200",
        (tenant,),
    ).fetchall()
    return [{**json.loads(r[2]), "at": r[0], "actor": r[1]} for r in rows]
