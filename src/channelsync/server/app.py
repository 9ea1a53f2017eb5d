"""The REST API over an embedded store, for tenants that many CI runners share.

The event loop never touches the store: each handler hands all of its database work (the
precondition checks, the write and the read-back) to the store's one database thread as one
call (``Context.db``), so the loop stays free for other requests while SQLite works, the
requests to one server are still serialised (one after another, without locks of our own),
and the store's IMMEDIATE transactions still serialise against other processes.

Secrets travel only in PUT and ``POST /v1/fingerprints`` request bodies; no response, log
line or audit entry carries one. The access log (``accesslog.py``) is structured (one JSON
object per request) and names the token, never its value.

This module only wires routes to handlers (``resources.py``, ``tenant.py``, ``audit.py``) and
describes them for the OpenAPI document.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from channelsync import kinds
from channelsync.server import audit as audit_log
from channelsync.server import resources as resource_handlers
from channelsync.server import tenant, wire
from channelsync.server.context import Context
from channelsync.server.http import ApiError
from channelsync.server.tokens import TokenStore

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": wire.Error, "description": text}
    for code, text in {
        401: "No or unknown bearer token.",
        403: "The token's role is read; the call needs write.",
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


def _resource_routes(app: FastAPI, ctx: Context, collection: str, kind: str) -> None:
    """One set of routes per collection, so the OpenAPI document types each one."""
    tag: list[str | Enum] = [collection]
    doc: dict[int | str, dict[str, Any]] = {
        200: {"description": f"The {kind}, secrets as fingerprints; ETag header."}
    }

    @app.get(
        f"/v1/{collection}",
        tags=tag,
        responses={200: {"model": wire.Page}},
        summary=f"List {kind} resources, one page at a time",
    )
    async def list_(request: Request) -> Response:
        return await resource_handlers.list_kind(ctx, kind, request)

    @app.get(
        f"/v1/{collection}/{{name:path}}",
        tags=tag,
        responses={**doc, 404: {}},
        summary=f"Read one {kind}",
    )
    async def get_(name: str, request: Request) -> Response:
        return await resource_handlers.get_one(ctx, kind, name, request)

    @app.put(
        f"/v1/{collection}/{{name:path}}",
        tags=tag,
        responses={**doc, 201: {"description": "Created."}, 409: {"model": wire.Error}, **_ERRORS},
        openapi_extra=_body_of(kind),
        summary=f"Create (If-None-Match: *), update or rename (?renamed_from=OLD) a {kind}",
    )
    async def put_(name: str, request: Request) -> Response:
        return await resource_handlers.put(ctx, kind, name, request)

    @app.delete(
        f"/v1/{collection}/{{name:path}}",
        tags=tag,
        status_code=204,
        responses={409: {"model": wire.Error}, **_ERRORS},
        summary=f"Delete a {kind}",
    )
    async def delete_(name: str, request: Request) -> Response:
        return await resource_handlers.delete(ctx, kind, name, request)


def create_app(target_url: str, tokens_path: Path, *, key_file: Path | None = None) -> FastAPI:
    """The application; the store opens only when it starts (so the OpenAPI build opens none).
    ``key_file``: the sealing key of a postgresql:// store."""
    ctx = Context(target_url, TokenStore(tokens_path), key_file=key_file)
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

    @app.get("/v1/health", tags=["meta"], summary="Liveness (no token needed)")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/v1/resources",
        tags=["resources"],
        responses={200: {"model": wire.Page}},
        summary="Every resource of the tenant, ordered by kind and name, in pages",
    )
    async def resources(request: Request) -> Response:
        return await resource_handlers.list_all(ctx, request)

    for kind in kinds.all_kinds():
        _resource_routes(app, ctx, kind.collection, kind.name)

    @app.get(
        "/v1/default-smtp-server",
        tags=["tenant"],
        responses={200: {"model": wire.DefaultSmtpServer}},
    )
    async def get_default(request: Request) -> Response:
        return await tenant.get_default(ctx, request)

    @app.put(
        "/v1/default-smtp-server",
        tags=["tenant"],
        responses={200: {"model": wire.DefaultSmtpServer}, **_ERRORS},
        openapi_extra=_body_of("DefaultSmtpServer"),
    )
    async def put_default(request: Request) -> Response:
        return await tenant.put_default(ctx, request)

    @app.get("/v1/lock", tags=["lock"], responses={200: {"model": wire.Lock}, 404: {}})
    async def get_lock(request: Request) -> Response:
        return await tenant.get_lock(ctx, request)

    @app.put(
        "/v1/lock",
        tags=["lock"],
        openapi_extra=_body_of("Lock"),
        responses={201: {"model": wire.Lock}, 409: {"model": wire.Lock}, **_ERRORS},
    )
    async def put_lock(request: Request) -> Response:
        return await tenant.put_lock(ctx, request)

    @app.delete("/v1/lock", tags=["lock"], status_code=204, responses=_ERRORS)
    async def delete_lock(request: Request) -> Response:
        return await tenant.delete_lock(ctx, request)

    @app.get("/v1/audit", tags=["audit"], responses={200: {"model": wire.AuditPage}})
    async def audit(request: Request) -> Response:
        return await audit_log.audit(ctx, request)

    @app.post(
        "/v1/fingerprints",
        tags=["secrets"],
        openapi_extra=_body_of("FingerprintRequest"),
        responses={200: {"model": wire.Fingerprints}},
        summary="Keyed fingerprints of secret values (read role; never logged)",
    )
    async def fingerprints(request: Request) -> Response:
        return await tenant.fingerprints(ctx, request)

    @app.get(
        "/v1/writes/{key}",
        tags=["audit"],
        responses={200: {"model": wire.WriteOutcome}},
        summary="Whether the write sent with this Idempotency-Key happened",
    )
    async def write_outcome(key: str, request: Request) -> Response:
        return await audit_log.write_outcome(ctx, key, request)

    app.router.on_startup.append(ctx.open)
    app.router.on_shutdown.append(ctx.close)
    return app
