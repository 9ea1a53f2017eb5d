"""Drift reports: the drift workflow posts ``channelsync drift --format json`` to the server,
which keeps the last one per repository for the console's Drift page.

``POST /v1/drift-reports`` (write role) takes that JSON plus ``repository`` (a name) and
``repository_url`` (http(s), optional). The body is bounded, and only what the page shows is
kept: per change its kind, name, action and the differing fields; a sensitive field keeps
its path only, never a before or after.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from channelsync.server.context import Context
from channelsync.server.http import ApiError, json_response

MAX_BODY = 2 * 1024 * 1024
MAX_CHANGES = 2000
MAX_FIELDS = 200
MAX_TEXT = 300
_SCHEMA = """
CREATE TABLE IF NOT EXISTS drift_reports (
    tenant TEXT NOT NULL, repository TEXT NOT NULL, url TEXT, at REAL NOT NULL,
    actor TEXT NOT NULL, report TEXT NOT NULL, PRIMARY KEY (tenant, repository)
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
    return {
        "repository": repository,
        "repository_url": url,
        "target": _text(raw.get("target", "")),
        "drift": bool(raw.get("drift", bool(kept))),
        "summary": summary,
        "changes": kept,
        "cut": max(len(changes) - MAX_CHANGES, 0),
        "warnings": [_text(w) for w in (raw.get("warnings") or [])[:50]],
    }


async def post_report(ctx: Context, tenant: str, request: Request) -> Response:
    entry = ctx.auth(request, "write")
    try:
        raw = json.loads(await bounded_body(request, MAX_BODY))
    except ValueError:
        raise ApiError(400, "the request body is not JSON") from None
    report = checked_report(raw)
    at = time.time()

    def work(store: Any) -> None:
        store.repo.connection.execute(
            "INSERT OR REPLACE INTO drift_reports (tenant, repository, url, at, actor, report)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                tenant,
                report["repository"],
                report["repository_url"],
                at,
                entry.name,
                json.dumps(report),
            ),
        )

    await ctx.db(work)
    return json_response(
        {
            "repository": report["repository"],
            "drift": report["drift"],
            "changes": len(report["changes"]),
        },
        201,
    )


def reports(connection: sqlite3.Connection, tenant: str) -> list[dict[str, Any]]:
    """The last report of each repository, newest first."""
    rows = connection.execute(
        "SELECT at, actor, report FROM drift_reports WHERE tenant = ? ORDER BY at DESC LIMIT 200",
        (tenant,),
    ).fetchall()
    return [{**json.loads(r[2]), "at": r[0], "actor": r[1]} for r in rows]
