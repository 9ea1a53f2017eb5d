"""What happened: the audit log in pages, and the outcome of a write by its Idempotency-Key."""

from __future__ import annotations

import json
import time

from fastapi import Request
from fastapi.responses import Response

from channelsync.server import paging
from channelsync.server.context import Context
from channelsync.server.http import ApiError, json_response


async def audit(ctx: Context, request: Request) -> Response:
    ctx.auth(request, "read")
    limit = paging.limit(request)
    after = (paging.after(request, 1, int) or [0])[0]
    rows = await ctx.db(lambda store: store.audit_after(int(after), limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {
            "id": r[0],
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r[1])),
            "actor": r[2],
            "kind": r[3],
            "name": r[4],
            "action": r[5],
            "fields": json.loads(r[6]),
        }
        for r in rows
    ]
    following = paging.cursor([rows[-1][0]]) if more and rows else None
    return json_response({"items": items, "next": following})


async def write_outcome(ctx: Context, key: str, request: Request) -> Response:
    ctx.auth(request, "read")
    outcome = await ctx.db(lambda store: store.outcome(key))
    if outcome is None:
        raise ApiError(404, "no write with that Idempotency-Key happened")
    outcome.pop("request")
    return json_response(outcome)
