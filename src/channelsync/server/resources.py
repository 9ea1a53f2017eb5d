"""The resource handlers: list, read, create/update/rename and delete, with preconditions.

Each write is one store operation, checked against ``If-Match``/``If-None-Match`` first, so a
lost update is impossible even for clients that never take the apply lock. A write sent again
with the same ``Idempotency-Key`` answers with the recorded outcome instead of writing twice.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from channelsync.document import get_path, secret_paths, set_path, tenant_form
from channelsync.errors import hidden_problem, visible
from channelsync.secrets import FINGERPRINT_PREFIX
from channelsync.server import metrics, paging
from channelsync.server.context import Acting, Context, acting, current_tenant
from channelsync.server.http import ApiError, etag_header, json_body, json_response, unquote
from channelsync.server.store import Store
from channelsync.targets.base import Action, ConflictError, Operation, TargetError


async def list_all(ctx: Context, request: Request) -> Response:
    ctx.auth(request, "read")
    limit = paging.limit(request)
    after = paging.after(request, 2) or ["", ""]
    rows = await ctx.db(lambda store: store.resources_after(after[0], after[1], limit + 1))
    return paging.resource_page(rows, limit)


async def list_kind(ctx: Context, kind: str, request: Request) -> Response:
    ctx.auth(request, "read")
    limit = paging.limit(request)
    after = (paging.after(request, 2) or [kind, ""])[1]
    rows = await ctx.db(lambda store: store.kind_after(kind, after, limit + 1))
    return paging.resource_page(rows, limit)


async def get_one(ctx: Context, kind: str, name: str, request: Request) -> Response:
    ctx.auth(request, "read")
    found = await ctx.db(lambda store: store.resource(kind, name))
    if found is None:
        raise ApiError(404, f"{kind} '{name}' does not exist")
    return json_response(found[0], 200, etag_header(found[1]))


async def put(ctx: Context, kind: str, name: str, request: Request) -> Response:
    entry = ctx.auth(request, "write")
    raw = await json_body(request)
    who = acting(entry, request, raw)
    check_name(kind, name)
    body = checked_body(kind, name, raw)
    renamed_from = request.query_params.get("renamed_from")
    if_match = request.headers.get("if-match")
    if_none_match = request.headers.get("if-none-match")
    return await ctx.db(
        lambda store: put_one(store, kind, name, body, renamed_from, if_match, if_none_match, who)
    )


def put_one(
    store: Store,
    kind: str,
    name: str,
    body: dict[str, Any],
    renamed_from: str | None,
    if_match: str | None,
    if_none_match: str | None,
    who: Acting,
) -> Response:
    """One checked PUT on the database thread (a request's, or one item of a batch)."""
    replay = _replayed(store, who)
    if replay is not None:
        return replay
    current = store.resource(kind, renamed_from or name)
    action: Action
    if if_none_match is not None and if_none_match.strip() == "*":
        if renamed_from:
            raise ApiError(400, "a rename needs If-Match with the old resource's ETag")
        if current is not None:
            raise ApiError(412, f"{kind} '{name}' already exists in the tenant")
        action = "create"
    elif if_match is not None:
        action = "rename" if renamed_from else "update"
        _match(kind, renamed_from or name, current, if_match)
    else:
        raise ApiError(428, "writes need If-Match: ETAG (or If-None-Match: * to create)")
    etag = current[1] if current is not None else None
    _write(store, Operation(action, kind, name, renamed_from, body, etag), who)
    written = store.resource(kind, name)
    assert written is not None
    status = 201 if action == "create" else 200
    return json_response(written[0], status, etag_header(written[1]))


async def delete(ctx: Context, kind: str, name: str, request: Request) -> Response:
    entry = ctx.auth(request, "write")
    who = acting(entry, request)
    if_match = request.headers.get("if-match")
    return await ctx.db(lambda store: delete_one(store, kind, name, if_match, who))


def delete_one(store: Store, kind: str, name: str, if_match: str | None, who: Acting) -> Response:
    """One checked DELETE on the database thread (a request's, or one item of a batch)."""
    replay = _replayed(store, who)
    if replay is not None:
        return replay
    if if_match is None:
        raise ApiError(428, "deletes need If-Match: ETAG")
    current = store.resource(kind, name)
    _match(kind, name, current, if_match)
    assert current is not None
    _write(store, Operation("delete", kind, name, expected_etag=current[1]), who)
    return Response(status_code=204)


def _match(kind: str, name: str, current: tuple[dict[str, Any], str] | None, if_match: str) -> None:
    if current is None:
        raise ApiError(412, f"{kind} '{name}' no longer exists in the tenant")
    wanted = {unquote(part) for part in if_match.split(",")}
    if "*" not in wanted and current[1] not in wanted:
        raise ApiError(412, f"{kind} '{name}' was changed in the tenant since it was read")


def _write(store: Store, op: Operation, who: Acting) -> None:
    try:
        store.write(op, actor=who.actor, key=who.key, holder=who.holder, request=who.request)
    except ConflictError as exc:
        raise ApiError(412, str(exc)) from None
    except TargetError as exc:
        raise ApiError(409, str(exc)) from None
    metrics.WRITES.labels(current_tenant(), op.kind, op.action).inc()


def _replayed(store: Store, who: Acting) -> Response | None:
    """The recorded outcome when a write with this Idempotency-Key already happened."""
    if who.key is None:
        return None
    outcome = store.outcome(who.key)
    if outcome is None:
        return None
    if outcome.pop("request") not in (None, who.request):
        raise ApiError(
            422,
            "this Idempotency-Key was sent with another request (token, method, path or "
            "body); use a new key for each write",
        )
    return json_response(outcome, 200, {"Idempotent-Replay": "true"})


def check_name(kind: str, name: str) -> None:
    """A name a write may give: the loader's rule for names (errors.hidden_problem)."""
    problem = hidden_problem(name)
    if problem is not None:
        raise ApiError(422, f"{kind} '{visible(name)}': name {problem}")


def checked_body(kind: str, name: str, raw: Any) -> dict[str, Any]:
    """Validate with the resource's pydantic model; secrets are values here, not references."""
    from pydantic import ValidationError

    from channelsync import kinds

    if not isinstance(raw, dict):
        raise ApiError(422, f"the body must be a JSON object (a {kind})")
    body: dict[str, Any] = dict(raw)
    body.pop("renamed_from", None)
    if body.setdefault("kind", kind) != kind:
        raise ApiError(422, f"kind '{body['kind']}' does not belong here (expected {kind})")
    if body.setdefault("name", name) != name:
        raise ApiError(422, f"the body names '{body['name']}' but the URL names '{name}'")
    probe = json.loads(json.dumps(body))
    for path in secret_paths(kind):
        value = get_path(probe, path)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise ApiError(422, f"{'.'.join(path)}: a secret must be a non-empty string")
        if value.startswith(FINGERPRINT_PREFIX):
            raise ApiError(422, f"{'.'.join(path)}: send the secret itself, not its fingerprint")
        set_path(probe, path, "${env:SECRET}")
    try:
        kinds.get(kind).model_class().model_validate(probe)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind
        raise ApiError(422, f"{kind} '{visible(name)}': {where}: {first['msg']}") from None
    # as the loader and plan shape the config: an equivalent write is no drift
    return tenant_form(kind, body)
