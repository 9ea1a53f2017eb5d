"""The REST API over an embedded store, for tenants that many CI runners share.

The event loop is the only thread that touches the store: handlers are ``async`` and call
SQLite directly, so requests to one server are serialised without locks of our own, and the
store's IMMEDIATE transactions still serialise against other processes. Each write is one
store operation, checked against ``If-Match``/``If-None-Match`` first, so a lost update is
impossible even for clients that never take the apply lock.

Secrets travel only in PUT and ``POST /v1/fingerprints`` request bodies; no response, log
line or audit entry carries one. The access log is structured (one JSON object per request)
and names the token, never its value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, MutableMapping
from enum import Enum
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from channelsync.defaults import BUILTIN_SMTP_SERVER
from channelsync.document import get_path, secret_paths, set_path
from channelsync.secrets import FINGERPRINT_PREFIX
from channelsync.server import wire
from channelsync.server.tokens import Role, TokenEntry, TokenStore
from channelsync.targets.base import Action, ConflictError, LockInfo, Operation, TargetError
from channelsync.targets.sqlite import SqliteTarget

COLLECTIONS: dict[str, str] = {
    "channels": "EmailChannel",
    "smtp-servers": "SmtpServer",
    "scripts": "EmailScript",
}
DEFAULT_PAGE = 500
MAX_PAGE = 2000
LOCK_HEADER = "Channelsync-Lock"
access_log = logging.getLogger("channelsync.access")

_WRITES_SCHEMA = """
CREATE TABLE IF NOT EXISTS http_writes (
    key TEXT PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    action TEXT NOT NULL
);
"""


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class Store(SqliteTarget):
    """The served store: audits changed field paths and records each write's idempotency key.

    Both land in the same transaction as the write itself, so after a lost response a client
    can ask ``GET /v1/writes/KEY`` whether its write happened before deciding to resend it.
    """

    def __init__(self, url: str) -> None:
        super().__init__(url, readonly=False, actor="server")
        assert self._db is not None
        self._db.executescript(_WRITES_SCHEMA)
        self.request_key: str | None = None
        self.before: dict[str, Any] | None = None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None
        return self._db

    def _audit(self, db: sqlite3.Connection, op: Operation, fields: list[str]) -> None:
        row = self._row(db, op.kind, op.name) if op.action != "delete" else None
        after = json.loads(row[0]) if row is not None else {}
        changed = sorted(_changed_paths(self.before or {}, after))
        self.record(db, op.kind, op.name, op.action, changed)

    def record(
        self, db: sqlite3.Connection, kind: str, name: str, action: str, fields: list[str]
    ) -> None:
        db.execute(
            "INSERT INTO audit (at, actor, kind, name, action, fields) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), self.actor, kind, name, action, json.dumps(fields)),
        )
        if self.request_key is not None:
            db.execute(
                "INSERT OR IGNORE INTO http_writes (key, at, kind, name, action)"
                " VALUES (?, ?, ?, ?, ?)",
                (self.request_key, time.time(), kind, name, action),
            )

    def row(self, kind: str, name: str) -> tuple[dict[str, Any], str] | None:
        found = self._row(self.db, kind, name)
        return None if found is None else (json.loads(found[0]), found[1])

    def write(self, op: Operation, actor: str, key: str | None, holder: str | None) -> None:
        current = self.row(op.kind, op.previous_name or op.name)
        self.actor, self.request_key, self._holder = actor, key, holder
        self.before = current[0] if current is not None else None
        try:
            self.apply(op)
        finally:
            self.actor, self.request_key, self._holder, self.before = "server", None, None, None


def _changed_paths(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out |= _changed_paths(old, new, f"{prefix}{key}.")
        elif old != new:
            out.add(f"{prefix}{key}")
    return out


def _etag_header(etag: str) -> dict[str, str]:
    return {"ETag": f'"{etag}"'}


def _unquote(value: str) -> str:
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(body, status, headers, media_type="application/json")


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _uncursor(text: str | None, size: int) -> list[Any] | None:
    if not text:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise ApiError(400, "bad paging cursor; start again without 'after'") from None
    if not isinstance(values, list) or len(values) != size:
        raise ApiError(400, "bad paging cursor; start again without 'after'")
    return values


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", str(DEFAULT_PAGE))
    try:
        limit = int(text)
    except ValueError:
        raise ApiError(400, f"limit must be a number from 1 to {MAX_PAGE}") from None
    if not 1 <= limit <= MAX_PAGE:
        raise ApiError(400, f"limit must be a number from 1 to {MAX_PAGE}")
    return limit


def _page(rows: list[tuple[str, str, str, str]], limit: int) -> Response:
    """A page spliced from the stored JSON text: no parse and re-dump of every body."""
    more = len(rows) > limit
    rows = rows[:limit]
    items = ",".join(f'{{"etag":{json.dumps(etag)},"resource":{body}}}' for *_, body, etag in rows)
    following = json.dumps(_cursor([rows[-1][0], rows[-1][1]]) if more and rows else None)
    text = f'{{"items":[{items}],"next":{following}}}'
    return Response(text.encode(), media_type="application/json")


def _check_body(kind: str, name: str, raw: Any) -> dict[str, Any]:
    """Validate with the resource's pydantic model; secrets are values here, not references."""
    from pydantic import ValidationError

    from channelsync.model import KINDS

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
        KINDS[kind].model_validate(probe)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or kind
        raise ApiError(422, f"{kind} '{name}': {where}: {first['msg']}") from None
    return body


class Api:
    """Authentication, preconditions and the handlers, over one store and one tokens file."""

    def __init__(self, target_url: str, tokens: TokenStore) -> None:
        self.target_url = target_url
        self.tokens = tokens
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        assert self._store is not None, "the store opens at application start-up"
        return self._store

    async def open(self) -> None:
        """Opened on the event loop's thread: the only thread that ever uses the store."""
        self._store = Store(self.target_url)

    async def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # --- plumbing ----------------------------------------------------------------------

    def auth(self, request: Request, role: Role) -> TokenEntry:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        entry = self.tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            raise ApiError(
                401,
                "missing or unknown bearer token",
                {"WWW-Authenticate": 'Bearer realm="channelsync"'},
            )
        request.state.actor = entry.name
        if role == "write" and entry.role != "write":
            raise ApiError(403, f"token '{entry.name}' has the read role; this needs write")
        return entry

    @staticmethod
    async def body(request: Request) -> Any:
        try:
            return await request.json()
        except ValueError:
            raise ApiError(400, "the request body is not JSON") from None

    def run(self, op: Operation, actor: str, request: Request) -> None:
        key = request.headers.get("idempotency-key")
        holder = request.headers.get(LOCK_HEADER)
        try:
            self.store.write(op, actor, key, holder)
        except ConflictError as exc:
            raise ApiError(412, str(exc)) from None
        except TargetError as exc:
            raise ApiError(409, str(exc)) from None

    def replayed(self, request: Request) -> Response | None:
        """The recorded outcome when a write with this Idempotency-Key already happened."""
        key = request.headers.get("idempotency-key")
        if key is None:
            return None
        outcome = self.outcome(key)
        if outcome is None:
            return None
        return _json(outcome, 200, {"Idempotent-Replay": "true"})

    def outcome(self, key: str) -> dict[str, Any] | None:
        row = self.store.db.execute(
            "SELECT kind, name, action FROM http_writes WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        current = self.store.row(row[0], row[1])
        etag = current[1] if current is not None else None
        return {"key": key, "kind": row[0], "name": row[1], "action": row[2], "etag": etag}

    # --- resources ---------------------------------------------------------------------

    def list_all(self, request: Request) -> Response:
        self.auth(request, "read")
        limit = _limit(request)
        after = _uncursor(request.query_params.get("after"), 2) or ["", ""]
        rows = self.store.db.execute(
            "SELECT kind, name, body, etag FROM resources WHERE (kind, name) > (?, ?)"
            " ORDER BY kind, name LIMIT ?",
            (after[0], after[1], limit + 1),
        ).fetchall()
        return _page(rows, limit)

    def list_kind(self, kind: str, request: Request) -> Response:
        self.auth(request, "read")
        limit = _limit(request)
        after = (_uncursor(request.query_params.get("after"), 2) or [kind, ""])[1]
        rows = self.store.db.execute(
            "SELECT kind, name, body, etag FROM resources WHERE kind = ? AND name > ?"
            " ORDER BY name LIMIT ?",
            (kind, after, limit + 1),
        ).fetchall()
        return _page(rows, limit)

    def get_one(self, kind: str, name: str, request: Request) -> Response:
        self.auth(request, "read")
        found = self.store.row(kind, name)
        if found is None:
            raise ApiError(404, f"{kind} '{name}' does not exist")
        return _json(found[0], 200, _etag_header(found[1]))

    async def put(self, kind: str, name: str, request: Request) -> Response:
        entry = self.auth(request, "write")
        body = _check_body(kind, name, await self.body(request))
        replay = self.replayed(request)
        if replay is not None:
            return replay
        renamed_from = request.query_params.get("renamed_from")
        if_match = request.headers.get("if-match")
        if_none_match = request.headers.get("if-none-match")
        current = self.store.row(kind, renamed_from or name)
        action: Action
        if if_none_match is not None and if_none_match.strip() == "*":
            if renamed_from:
                raise ApiError(400, "a rename needs If-Match with the old resource's ETag")
            if current is not None:
                raise ApiError(412, f"{kind} '{name}' already exists in the tenant")
            action = "create"
        elif if_match is not None:
            action = "rename" if renamed_from else "update"
            self._match(kind, renamed_from or name, current, if_match)
        else:
            raise ApiError(428, "writes need If-Match: ETAG (or If-None-Match: * to create)")
        etag = current[1] if current is not None else None
        op = Operation(action, kind, name, renamed_from, body, etag)
        self.run(op, entry.name, request)
        written = self.store.row(kind, name)
        assert written is not None
        return _json(written[0], 201 if action == "create" else 200, _etag_header(written[1]))

    @staticmethod
    def _match(
        kind: str, name: str, current: tuple[dict[str, Any], str] | None, if_match: str
    ) -> None:
        if current is None:
            raise ApiError(412, f"{kind} '{name}' no longer exists in the tenant")
        wanted = {_unquote(part) for part in if_match.split(",")}
        if "*" not in wanted and current[1] not in wanted:
            raise ApiError(412, f"{kind} '{name}' was changed in the tenant since it was read")

    def delete(self, kind: str, name: str, request: Request) -> Response:
        entry = self.auth(request, "write")
        replay = self.replayed(request)
        if replay is not None:
            return replay
        if_match = request.headers.get("if-match")
        if if_match is None:
            raise ApiError(428, "deletes need If-Match: ETAG")
        current = self.store.row(kind, name)
        self._match(kind, name, current, if_match)
        assert current is not None
        self.run(Operation("delete", kind, name, expected_etag=current[1]), entry.name, request)
        return Response(status_code=204)

    # --- the tenant's default SMTP server ---------------------------------------------

    def _default_name(self) -> str:
        rows = self.store.db.execute(
            "SELECT name, body FROM resources WHERE kind = 'SmtpServer'"
        ).fetchall()
        for name, body in rows:
            if json.loads(body).get("default"):
                return str(name)
        return BUILTIN_SMTP_SERVER

    @staticmethod
    def _name_etag(name: str) -> str:
        return hashlib.sha256(name.encode()).hexdigest()[:20]

    def get_default(self, request: Request) -> Response:
        self.auth(request, "read")
        name = self._default_name()
        return _json({"name": name}, 200, _etag_header(self._name_etag(name)))

    async def put_default(self, request: Request) -> Response:
        entry = self.auth(request, "write")
        body = await self.body(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name:
            raise ApiError(422, 'the body must be {"name": SERVER}')
        if_match = request.headers.get("if-match")
        if if_match is None:
            raise ApiError(428, "writes need If-Match: ETAG")
        current = self._default_name()
        if _unquote(if_match) not in ("*", self._name_etag(current)):
            raise ApiError(412, "the tenant's default SMTP server was changed since it was read")
        store = self.store
        store.actor, store.request_key = entry.name, request.headers.get("idempotency-key")
        store._holder = request.headers.get(LOCK_HEADER)
        try:
            with store._transaction() as db:
                store._renew_lease(db)
                if name != BUILTIN_SMTP_SERVER:
                    found = store._row(db, "SmtpServer", name)
                    if found is None:
                        raise ApiError(404, f"SmtpServer '{name}' does not exist")
                    server = json.loads(found[0])
                    server["default"] = True
                    store._store_body(db, "SmtpServer", name, server)
                store._clear_other_defaults(db, name)
                store.record(db, "SmtpServer", name, "set-default", ["default"])
        except TargetError as exc:
            raise ApiError(409, str(exc)) from None
        finally:
            store.actor, store.request_key, store._holder = "server", None, None
        return _json({"name": name}, 200, _etag_header(self._name_etag(name)))

    # --- the apply lock ----------------------------------------------------------------

    def _holder(self) -> dict[str, Any] | None:
        row = self.store.db.execute("SELECT holder, host, pid, since FROM apply_lock").fetchone()
        if row is None:
            return None
        return {"holder": row[0], "host": row[1], "pid": row[2], "since": row[3]}

    def get_lock(self, request: Request) -> Response:
        self.auth(request, "read")
        holder = self._holder()
        if holder is None:
            raise ApiError(404, "the apply lock is free")
        return _json(holder, 200, _etag_header(holder["holder"]))

    async def put_lock(self, request: Request) -> Response:
        self.auth(request, "write")
        body = await self.body(request)
        if (request.headers.get("if-none-match") or "").strip() != "*":
            raise ApiError(428, "take the lock with If-None-Match: *")
        try:
            info = LockInfo(
                str(body["holder"]), str(body["host"]), int(body["pid"]), str(body["since"])
            )
        except (KeyError, TypeError, ValueError):
            raise ApiError(422, "the body must be {holder, host, pid, since}") from None
        current = self.store._try_lock(info)
        if current is not None and current.holder != info.holder:
            return _json(
                {
                    "error": f"the target is locked by another apply ({current.describe()})",
                    "holder": current.holder,
                    "host": current.host,
                    "pid": current.pid,
                    "since": current.since,
                },
                409,
            )
        return _json(body, 201, _etag_header(info.holder))

    def delete_lock(self, request: Request) -> Response:
        self.auth(request, "write")
        if_match = request.headers.get("if-match")
        if if_match is None:
            raise ApiError(428, "release the lock with If-Match: HOLDER")
        with self.store._transaction() as db:
            gone = db.execute(
                "DELETE FROM apply_lock WHERE holder = ?", (_unquote(if_match),)
            ).rowcount
        if not gone:
            raise ApiError(412, "the apply lock is not held by that holder")
        return Response(status_code=204)

    # --- audit, fingerprints, write outcomes -------------------------------------------

    def audit(self, request: Request) -> Response:
        self.auth(request, "read")
        limit = _limit(request)
        after = (_uncursor(request.query_params.get("after"), 1) or [0])[0]
        rows = self.store.db.execute(
            "SELECT id, at, actor, kind, name, action, fields FROM audit WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (int(after), limit + 1),
        ).fetchall()
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
        following = _cursor([rows[-1][0]]) if more and rows else None
        return _json({"items": items, "next": following})

    async def fingerprints(self, request: Request) -> Response:
        self.auth(request, "read")
        body = await self.body(request)
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ApiError(422, 'the body must be {"values": [STRING, ...]}')
        if len(values) > 20000:
            raise ApiError(413, "at most 20000 values per request")
        return _json({"fingerprints": [self.store.fingerprint(v) for v in values]})

    def write_outcome(self, key: str, request: Request) -> Response:
        self.auth(request, "read")
        outcome = self.outcome(key)
        if outcome is None:
            raise ApiError(404, "no write with that Idempotency-Key happened")
        return _json(outcome)


# --- the application -------------------------------------------------------------------

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


def _resource_routes(app: FastAPI, api: Api, collection: str, kind: str) -> None:
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
        return api.list_kind(kind, request)

    @app.get(
        f"/v1/{collection}/{{name:path}}",
        tags=tag,
        responses={**doc, 404: {}},
        summary=f"Read one {kind}",
    )
    async def get_(name: str, request: Request) -> Response:
        return api.get_one(kind, name, request)

    @app.put(
        f"/v1/{collection}/{{name:path}}",
        tags=tag,
        responses={**doc, 201: {"description": "Created."}, 409: {"model": wire.Error}, **_ERRORS},
        openapi_extra=_body_of(kind),
        summary=f"Create (If-None-Match: *), update or rename (?renamed_from=OLD) a {kind}",
    )
    async def put_(name: str, request: Request) -> Response:
        return await api.put(kind, name, request)

    @app.delete(
        f"/v1/{collection}/{{name:path}}",
        tags=tag,
        status_code=204,
        responses={409: {"model": wire.Error}, **_ERRORS},
        summary=f"Delete a {kind}",
    )
    async def delete_(name: str, request: Request) -> Response:
        return api.delete(kind, name, request)


def create_app(target_url: str, tokens_path: Path) -> FastAPI:
    """The application; the store opens only when it starts (so the OpenAPI build opens none)."""
    api = Api(target_url, TokenStore(tokens_path))
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
        return api.list_all(request)

    for collection, kind in COLLECTIONS.items():
        _resource_routes(app, api, collection, kind)

    @app.get(
        "/v1/default-smtp-server",
        tags=["tenant"],
        responses={200: {"model": wire.DefaultSmtpServer}},
    )
    async def get_default(request: Request) -> Response:
        return api.get_default(request)

    @app.put(
        "/v1/default-smtp-server",
        tags=["tenant"],
        responses={200: {"model": wire.DefaultSmtpServer}, **_ERRORS},
        openapi_extra=_body_of("DefaultSmtpServer"),
    )
    async def put_default(request: Request) -> Response:
        return await api.put_default(request)

    @app.get("/v1/lock", tags=["lock"], responses={200: {"model": wire.Lock}, 404: {}})
    async def get_lock(request: Request) -> Response:
        return api.get_lock(request)

    @app.put(
        "/v1/lock",
        tags=["lock"],
        openapi_extra=_body_of("Lock"),
        responses={201: {"model": wire.Lock}, 409: {"model": wire.Lock}, **_ERRORS},
    )
    async def put_lock(request: Request) -> Response:
        return await api.put_lock(request)

    @app.delete("/v1/lock", tags=["lock"], status_code=204, responses=_ERRORS)
    async def delete_lock(request: Request) -> Response:
        return api.delete_lock(request)

    @app.get("/v1/audit", tags=["audit"], responses={200: {"model": wire.AuditPage}})
    async def audit(request: Request) -> Response:
        return api.audit(request)

    @app.post(
        "/v1/fingerprints",
        tags=["secrets"],
        openapi_extra=_body_of("FingerprintRequest"),
        responses={200: {"model": wire.Fingerprints}},
        summary="Keyed fingerprints of secret values (read role; never logged)",
    )
    async def fingerprints(request: Request) -> Response:
        return await api.fingerprints(request)

    @app.get(
        "/v1/writes/{key}",
        tags=["audit"],
        responses={200: {"model": wire.WriteOutcome}},
        summary="Whether the write sent with this Idempotency-Key happened",
    )
    async def write_outcome(key: str, request: Request) -> Response:
        return api.write_outcome(key, request)

    app.router.on_startup.append(api.open)
    app.router.on_shutdown.append(api.close)
    return app


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessLog:
    """One JSON line per request: method, path, status, time, token name. No headers, no bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def record(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            client = scope.get("client") or ("-", 0)
            access_log.info(
                json.dumps(
                    {
                        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status[0],
                        "ms": round((time.perf_counter() - start) * 1000, 2),
                        "token": scope.get("state", {}).get("actor", "-"),
                        "client": client[0],
                    },
                    separators=(",", ":"),
                )
            )
