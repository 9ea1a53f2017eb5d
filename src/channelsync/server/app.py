"""The REST API over an embedded store, for tenants that many CI runners share.

The event loop never touches the store: each handler hands all of its database work (the
precondition checks, the write and the read-back) to the store's one database thread as one
call (``Context.db``), so the loop stays free for other requests while SQLite works, the
requests to one server are still serialised (one after another, without locks of our own),
and the store's IMMEDIATE transactions still serialise against other processes.

Secrets travel only in PUT and ``POST /v1/fingerprints`` request bodies; no response, log
line or audit entry carries one. The access log (``accesslog.py``) is structured (one JSON
object per request) and names the token, never its value.

Every route but health is served twice: ``/v1/...`` for the tenant "default" (the paths of
the single-tenant server) and ``/v1/tenants/{tenant}/...`` for any tenant.

This module only wires routes to handlers (``resources.py``, ``tenant.py``, ``audit.py``) and
describes them for the OpenAPI document.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from channelsync import kinds
from channelsync.defaults import DEFAULT_TENANT, TENANT_NAME_PATTERN
from channelsync.server import audit as audit_log
from channelsync.server import batch as batch_writes
from channelsync.server import limits, metrics, tenant, wire
from channelsync.server import resources as resource_handlers
from channelsync.server.context import Context
from channelsync.server.http import ApiError
from channelsync.server.tokens import TokenStore

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": wire.Error, "description": text}
    for code, text in {
        401: "No or unknown bearer token.",
        403: "The token's role is read; the call needs write.",
        404: "No such resource, or no tenant by that name that the token may reach.",
        412: "If-Match / If-None-Match did not hold: the resource changed since it was read.",
        428: "A write without If-Match (or If-None-Match: * to create).",
    }.items()
}


def _body_of(schema: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        }
    }


def _tenant_path(
    tenant: str = PathParam(
        description=f"A tenant's name ({TENANT_NAME_PATTERN}); the paths without it are the "
        f"tenant '{DEFAULT_TENANT}'. A tenant the token may not reach is 404, as one that "
        "does not exist."
    ),
) -> None:
    """Documents the tenant in the path; ``Context.auth`` checks it."""


def _resource_routes(app: APIRouter, ctx: Context, collection: str, kind: str) -> None:
    """One set of routes per collection, so the OpenAPI document types each one."""
    tag: list[str | Enum] = [collection]
    doc: dict[int | str, dict[str, Any]] = {
        200: {"description": f"The {kind}, secrets as fingerprints; ETag header."}
    }

    @app.get(
        f"/{collection}",
        tags=tag,
        responses={200: {"model": wire.Page}},
        summary=f"List {kind} resources, one page at a time",
    )
    async def list_(request: Request) -> Response:
        return await resource_handlers.list_kind(ctx, kind, request)

    @app.get(
        f"/{collection}/{{name:path}}",
        tags=tag,
        responses={**doc, 404: {}},
        summary=f"Read one {kind}",
    )
    async def get_(name: str, request: Request) -> Response:
        return await resource_handlers.get_one(ctx, kind, name, request)

    @app.put(
        f"/{collection}/{{name:path}}",
        tags=tag,
        responses={**doc, 201: {"description": "Created."}, 409: {"model": wire.Error}, **_ERRORS},
        openapi_extra=_body_of(kind),
        summary=f"Create (If-None-Match: *), update or rename (?renamed_from=OLD) a {kind}",
    )
    async def put_(name: str, request: Request) -> Response:
        return await resource_handlers.put(ctx, kind, name, request)

    @app.delete(
        f"/{collection}/{{name:path}}",
        tags=tag,
        status_code=204,
        responses={409: {"model": wire.Error}, **_ERRORS},
        summary=f"Delete a {kind}",
    )
    async def delete_(name: str, request: Request) -> Response:
        return await resource_handlers.delete(ctx, kind, name, request)


def create_app(
    target_url: str,
    tokens_path: Path,
    *,
    fingerprint_rate: int = limits.DEFAULT_FINGERPRINT_RATE,
    metrics_hash: str | None = None,
    repository_url: str | None = None,
    key_file: Path | None = None,
) -> FastAPI:
    """The application; the store opens only when it starts (so the OpenAPI build opens none).
    ``key_file``: the sealing key of a postgresql:// store."""
    ctx = Context(target_url, TokenStore(tokens_path), fingerprint_rate, key_file=key_file)
    app = FastAPI(
        title="channelsync tenant API",
        version="1",
        description="A shared channelsync tenant: see docs/rest-api.md.",
        docs_url=None,
        redoc_url=None,
    )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return JSONResponse({"error": exc.message}, exc.status, exc.headers)

    limits.error_handlers(app)

    @app.get("/v1/health", tags=["meta"], summary="Liveness (no token needed)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    router = APIRouter()

    @router.get(
        "/resources",
        tags=["resources"],
        responses={200: {"model": wire.Page}},
        summary="Every resource of the tenant, ordered by kind and name, in pages",
    )
    async def resources(request: Request) -> Response:
        return await resource_handlers.list_all(ctx, request)

    for kind in kinds.all_kinds():
        _resource_routes(router, ctx, kind.collection, kind.name)

    @router.get(
        "/default-smtp-server",
        tags=["tenant"],
        responses={200: {"model": wire.DefaultSmtpServer}},
    )
    async def get_default(request: Request) -> Response:
        return await tenant.get_default(ctx, request)

    @router.put(
        "/default-smtp-server",
        tags=["tenant"],
        responses={200: {"model": wire.DefaultSmtpServer}, **_ERRORS},
        openapi_extra=_body_of("DefaultSmtpServer"),
    )
    async def put_default(request: Request) -> Response:
        return await tenant.put_default(ctx, request)

    @router.get("/lock", tags=["lock"], responses={200: {"model": wire.Lock}, 404: {}})
    async def get_lock(request: Request) -> Response:
        return await tenant.get_lock(ctx, request)

    @router.put(
        "/lock",
        tags=["lock"],
        openapi_extra=_body_of("Lock"),
        responses={201: {"model": wire.Lock}, 409: {"model": wire.Lock}, **_ERRORS},
    )
    async def put_lock(request: Request) -> Response:
        return await tenant.put_lock(ctx, request)

    @router.delete("/lock", tags=["lock"], status_code=204, responses=_ERRORS)
    async def delete_lock(request: Request) -> Response:
        return await tenant.delete_lock(ctx, request)

    @router.get("/audit", tags=["audit"], responses={200: {"model": wire.AuditPage}})
    async def audit(request: Request) -> Response:
        return await audit_log.audit(ctx, request)

    @router.post(
        "/batch",
        tags=["resources"],
        openapi_extra=_body_of("BatchRequest"),
        responses={200: {"model": wire.BatchResults}, **_ERRORS},
        summary="Many creates, updates, renames and deletes in order, one commit",
    )
    async def batch(request: Request) -> Response:
        return await batch_writes.batch(ctx, request)

    @router.post(
        "/fingerprints",
        tags=["secrets"],
        openapi_extra=_body_of("FingerprintRequest"),
        responses={200: {"model": wire.Fingerprints}},
        summary="Keyed fingerprints of secret values (read role; never logged)",
    )
    async def fingerprints(request: Request) -> Response:
        return await tenant.fingerprints(ctx, request)

    @router.get(
        "/writes/{key}",
        tags=["audit"],
        responses={200: {"model": wire.WriteOutcome}},
        summary="Whether the write sent with this Idempotency-Key happened",
    )
    async def write_outcome(key: str, request: Request) -> Response:
        return await audit_log.write_outcome(ctx, key, request)

    @app.get("/metrics", include_in_schema=False)
    async def metrics_(request: Request) -> Response:
        return await metrics.endpoint(ctx, request, metrics_hash)

    app.include_router(router, prefix="/v1")
    app.include_router(router, prefix="/v1/tenants/{tenant}", dependencies=[Depends(_tenant_path)])
    app.state.ctx = ctx  # for the parts serve adds (the monitor)
    app.router.on_startup.append(ctx.open)
    app.router.on_shutdown.append(ctx.close)
    from channelsync import console  # the web console at /, after the API's routes

    console.mount(app, ctx, repository_url=repository_url)
    return app
