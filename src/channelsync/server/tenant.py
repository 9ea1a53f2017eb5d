"""Tenant-wide handlers: the default SMTP server, the apply lock, and secret fingerprints."""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from channelsync.errors import HIDDEN
from channelsync.server import metrics
from channelsync.server.context import Context, acting, current_tenant
from channelsync.server.http import ApiError, etag_header, json_body, json_response, unquote
from channelsync.server.store import Store
from channelsync.targets.base import LockInfo, TargetError

MAX_FINGERPRINTS = 20000


def _name_etag(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:20]


def _default_response(name: str) -> Response:
    return json_response({"name": name}, 200, etag_header(_name_etag(name)))


async def get_default(ctx: Context, request: Request) -> Response:
    ctx.auth(request, "read")
    return _default_response(await ctx.db(Store.default_name))


async def put_default(ctx: Context, request: Request) -> Response:
    entry = ctx.auth(request, "write")
    body = await json_body(request)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise ApiError(422, 'the body must be {"name": SERVER}')
    if_match = request.headers.get("if-match")
    if if_match is None:
        raise ApiError(428, "writes need If-Match: ETAG")
    who = acting(entry, request, body)

    def work(store: Store) -> Response:
        with store.transaction():  # If-Match checked inside the write's transaction
            if unquote(if_match) not in ("*", _name_etag(store.default_name())):
                raise ApiError(
                    412, "the tenant's default SMTP server was changed since it was read"
                )
            try:
                found = store.set_default(
                    name, actor=who.actor, key=who.key, holder=who.holder, request=who.request
                )
            except TargetError as exc:
                raise ApiError(409, str(exc)) from None
        if not found:
            raise ApiError(404, f"SmtpServer '{name}' does not exist")
        return _default_response(name)

    return await ctx.db(work)


async def get_lock(ctx: Context, request: Request) -> Response:
    ctx.auth(request, "read")
    holder = await ctx.db(Store.lock_holder)
    if holder is None:
        raise ApiError(404, "the apply lock is free")
    safe = HOLDER.fullmatch(holder["holder"]) is not None  # not so from before the rule
    return json_response(holder, 200, etag_header(holder["holder"]) if safe else None)


async def put_lock(ctx: Context, request: Request) -> Response:
    ctx.auth(request, "write")
    body = await json_body(request)
    if (request.headers.get("if-none-match") or "").strip() != "*":
        raise ApiError(428, "take the lock with If-None-Match: *")
    info = _lock_info(body)
    current = await ctx.db(lambda store: store.try_lock(info))
    if current is not None and current.holder != info.holder:
        metrics.LOCK_WAITS.labels(current_tenant()).inc()
        return json_response(
            {
                "error": f"the target is locked by another apply ({current.describe()})",
                "holder": current.holder,
                "host": current.host,
                "pid": current.pid,
                "since": current.since,
            },
            409,
        )
    if current is None:
        metrics.LOCKS_TAKEN.labels(current_tenant()).inc()
    return json_response(body, 201, etag_header(info.holder))


LOCK_SHAPE = (
    "the body must be {holder, host, pid, since}: holder 1-200 visible ASCII characters "
    "(no quote), host and since text without control characters, pid a whole number"
)
HOLDER = re.compile(r"[!#-~]{1,200}")  # it is the lock's ETag: a header value, quoted


def _lock_info(body: Any) -> LockInfo:
    """The lock's holder as sent, or 422: the holder becomes a header (the ETag), so a NUL
    or a non-latin-1 character in it would make every later answer about the lock fail."""
    if not isinstance(body, dict):
        raise ApiError(422, LOCK_SHAPE)
    holder, host, pid, since = (body.get(k) for k in ("holder", "host", "pid", "since"))
    texts_ok = all(
        isinstance(t, str) and 0 < len(t) <= 255 and HIDDEN.search(t) is None for t in (host, since)
    )
    pid_ok = isinstance(pid, int) and not isinstance(pid, bool) and 0 <= pid < 2**32
    if not (isinstance(holder, str) and HOLDER.fullmatch(holder) and texts_ok and pid_ok):
        raise ApiError(422, LOCK_SHAPE)
    assert isinstance(pid, int)
    return LockInfo(holder, str(host), pid, str(since))


async def delete_lock(ctx: Context, request: Request) -> Response:
    ctx.auth(request, "write")
    if_match = request.headers.get("if-match")
    if if_match is None:
        raise ApiError(428, "release the lock with If-Match: HOLDER")
    holder = unquote(if_match)
    if not await ctx.db(lambda store: store.release(holder)):
        raise ApiError(412, "the apply lock is not held by that holder")
    return Response(status_code=204)


async def fingerprints(ctx: Context, request: Request) -> Response:
    entry = ctx.auth(request, "read")
    body = await json_body(request)
    values = body.get("values") if isinstance(body, dict) else None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ApiError(422, 'the body must be {"values": [STRING, ...]}')
    if len(values) > MAX_FINGERPRINTS:
        raise ApiError(413, f"at most {MAX_FINGERPRINTS} values per request")
    wait = ctx.fingerprint_budget.take(entry.hash, len(values))
    if wait:
        raise ApiError(
            429,
            f"token '{entry.name}' asked for more fingerprints than "
            f"{ctx.fingerprint_budget.capacity:g} a minute; retry after {math.ceil(wait)} s",
            {"Retry-After": str(math.ceil(wait))},
        )
    found = await ctx.db(lambda store: [store.fingerprint(v) for v in values])
    return json_response({"fingerprints": found})
