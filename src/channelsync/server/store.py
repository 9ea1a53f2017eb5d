"""The served store: the embedded tenant, plus what the REST API records and reads itself.

Each write's audit entry lists the changed field paths (never values), and its
Idempotency-Key lands in ``http_writes``; both in the same transaction as the write, so after
a lost response a client can ask ``GET /v1/writes/KEY`` whether its write happened before
deciding to resend it.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

from channelsync.defaults import BUILTIN_SMTP_SERVER
from channelsync.plan.diff import changed_paths
from channelsync.targets.base import Operation
from channelsync.targets.sqlite import SqliteTarget

_WRITES_SCHEMA = """
CREATE TABLE IF NOT EXISTS http_writes (
    key TEXT PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    action TEXT NOT NULL
);
"""
SERVER_ACTOR = "server"


class Store(SqliteTarget):
    """The tenant a server writes to on behalf of its tokens, and the queries it pages over."""

    def __init__(self, url: str) -> None:
        super().__init__(url, readonly=False, actor=SERVER_ACTOR)
        self.connection.executescript(_WRITES_SCHEMA)
        self.request_key: str | None = None
        self._before: dict[str, Any] | None = None

    # --- writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def acting(self, actor: str, key: str | None, holder: str | None) -> Iterator[None]:
        """Writes in this block are audited as ``actor``, recorded under the Idempotency-Key
        ``key`` and renew the lease of the apply lock ``holder`` took."""
        self.actor, self.request_key = actor, key
        try:
            with self.renewing_lease(holder):
                yield
        finally:
            self.actor, self.request_key = SERVER_ACTOR, None

    def write(self, op: Operation) -> None:
        """Apply one operation, auditing the field paths it changes."""
        current = self.resource(op.kind, op.previous_name or op.name)
        self._before = current[0] if current is not None else None
        try:
            self.apply(op)
        finally:
            self._before = None

    def _audit(self, db: sqlite3.Connection, op: Operation, fields: list[str]) -> None:
        found = self.row(op.kind, op.name) if op.action != "delete" else None
        after = json.loads(found[0]) if found is not None else {}
        changed = changed_paths(self._before or {}, after)
        self._record(db, op.kind, op.name, op.action, changed)

    def _record(
        self, db: sqlite3.Connection, kind: str, name: str, action: str, fields: list[str]
    ) -> None:
        super()._record(db, kind, name, action, fields)
        if self.request_key is not None:
            db.execute(
                "INSERT OR IGNORE INTO http_writes (key, at, kind, name, action)"
                " VALUES (?, ?, ?, ?, ?)",
                (self.request_key, time.time(), kind, name, action),
            )

    # --- reading ---------------------------------------------------------------------

    def resource(self, kind: str, name: str) -> tuple[dict[str, Any], str] | None:
        """One resource's body and ETag, or None."""
        found = self.row(kind, name)
        return None if found is None else (json.loads(found[0]), found[1])

    def resources_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` (kind, name, body, etag) rows after (kind, name), in that order."""
        return self.connection.execute(
            "SELECT kind, name, body, etag FROM resources WHERE (kind, name) > (?, ?)"
            " ORDER BY kind, name LIMIT ?",
            (kind, name, limit),
        ).fetchall()

    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` rows of one kind with names after ``name``, ordered by name."""
        return self.connection.execute(
            "SELECT kind, name, body, etag FROM resources WHERE kind = ? AND name > ?"
            " ORDER BY name LIMIT ?",
            (kind, name, limit),
        ).fetchall()

    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` audit rows (id, at, actor, kind, name, action, fields) after an id."""
        return self.connection.execute(
            "SELECT id, at, actor, kind, name, action, fields FROM audit WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (entry_id, limit),
        ).fetchall()

    def outcome(self, key: str) -> dict[str, Any] | None:
        """What the write sent with Idempotency-Key ``key`` did, or None if none happened."""
        row = self.connection.execute(
            "SELECT kind, name, action FROM http_writes WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        current = self.row(row[0], row[1])
        etag = current[1] if current is not None else None
        return {"key": key, "kind": row[0], "name": row[1], "action": row[2], "etag": etag}

    def default_name(self) -> str:
        """The tenant's default SMTP server: the one marked default, else the built-in."""
        rows = self.connection.execute(
            "SELECT name, body FROM resources WHERE kind = 'SmtpServer'"
        ).fetchall()
        for name, body in rows:
            if json.loads(body).get("default"):
                return str(name)
        return BUILTIN_SMTP_SERVER

    def lock_holder(self) -> dict[str, Any] | None:
        """The apply lock's holder, host, pid and since, or None when it is free."""
        row = self.connection.execute("SELECT holder, host, pid, since FROM apply_lock").fetchone()
        if row is None:
            return None
        return {"holder": row[0], "host": row[1], "pid": row[2], "since": row[3]}
