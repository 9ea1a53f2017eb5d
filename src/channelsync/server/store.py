"""The served store: the embedded tenant, plus what the REST API records and reads itself.

Composed, not inherited: the tenant's rules, sealing and lease (``channelsync.tenant``) over
the SQLite repository. Request state (who acts, under which Idempotency-Key and lock) comes
in as arguments of each call, never as state of this shared object.

Each write's audit entry lists the changed field paths (never values), and its
Idempotency-Key lands in ``http_writes``; both in the same transaction as the write, so after
a lost response a client can ask ``GET /v1/writes/KEY`` whether its write happened before
deciding to resend it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from channelsync.plan.diff import changed_paths
from channelsync.targets.base import LockInfo, Operation
from channelsync.targets.sqlite import LOCK_LEASE_SECONDS, open_tenant, plain_errors
from channelsync.tenant import lease

_WRITES_SCHEMA = """
CREATE TABLE IF NOT EXISTS http_writes (
    key TEXT PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    action TEXT NOT NULL, request TEXT
);
"""
SERVER_ACTOR = "server"


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    if not before or not after:  # a create or a delete: every field set (without a diff)
        return sorted(key for key, value in (after or before or {}).items() if value is not None)
    return changed_paths(before, after)


class Store:
    """The tenant a server writes to on behalf of its tokens, and the queries it pages over."""

    @plain_errors
    def __init__(self, url: str) -> None:
        self.url = url
        self.repo, self.tenant = open_tenant(url, readonly=False, audit_fields=_changed)
        self.path = self.repo.path
        self.repo.connection.executescript(_WRITES_SCHEMA)
        columns = {r[1] for r in self.repo.connection.execute("PRAGMA table_info(http_writes)")}
        if "request" not in columns:  # a store from before keys were bound to their request
            self.repo.connection.execute("ALTER TABLE http_writes ADD COLUMN request TEXT")

    def close(self) -> None:
        self.repo.close()

    # --- writing ---------------------------------------------------------------------

    @plain_errors
    def write(
        self,
        op: Operation,
        *,
        actor: str,
        key: str | None,
        holder: str | None,
        request: str | None = None,
    ) -> None:
        """Apply one operation as ``actor``, recorded under Idempotency-Key ``key`` (bound
        to the ``request`` digest), renewing the lease of the apply lock ``holder`` took."""
        self._recorded(
            key, op.kind, op.name, op.action, lambda: self._apply(op, actor, holder), request
        )

    def _apply(self, op: Operation, actor: str, holder: str | None) -> bool:
        self.tenant.apply(op, actor=actor, lease=_lease(holder))
        return True

    @plain_errors
    def set_default(
        self,
        name: str,
        *,
        actor: str,
        key: str | None,
        holder: str | None,
        request: str | None = None,
    ) -> bool:
        """Make SmtpServer ``name`` the default; False, changing nothing, if there is none."""
        return self._recorded(
            key,
            "SmtpServer",
            name,
            "set-default",
            lambda: self.tenant.set_default(name, actor=actor, lease=_lease(holder)),
            request,
        )

    def _recorded(
        self,
        key: str | None,
        kind: str,
        name: str,
        action: str,
        write: Callable[[], bool],
        request: str | None,
    ) -> bool:
        with self.repo.transaction():
            done = write()
            if done and key is not None:
                self.repo.connection.execute(
                    "INSERT OR IGNORE INTO http_writes (key, at, kind, name, action, request)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (key, time.time(), kind, name, action, request),
                )
        return done

    def batch(self) -> AbstractContextManager[None]:
        """One transaction for many writes (each still its own savepoint): one commit."""
        return self.repo.transaction()

    def undone(self) -> bool:
        """A failure inside the open batch made the database undo all of it."""
        return self.repo.lost_transaction()

    @plain_errors
    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the apply lock for ``info`` and return None, or return the live holder."""
        return lease.try_take(self.repo, info, LOCK_LEASE_SECONDS)

    @plain_errors
    def release(self, holder: str) -> bool:
        """Release the apply lock if ``holder`` holds it; False when it does not."""
        return lease.release(self.repo, holder)

    def fingerprint(self, secret: str) -> str:
        return self.tenant.sealer.fingerprint(secret)

    # --- reading ---------------------------------------------------------------------

    @plain_errors
    def resource(self, kind: str, name: str) -> tuple[dict[str, Any], str] | None:
        """One resource's body and ETag, or None."""
        found = self.repo.get(kind, name)
        return None if found is None else (found.body, found.etag)

    @plain_errors
    def resources_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` (kind, name, body, etag) rows after (kind, name), in that order."""
        return self.repo.connection.execute(
            "SELECT kind, name, body, etag FROM resources WHERE (kind, name) > (?, ?)"
            " ORDER BY kind, name LIMIT ?",
            (kind, name, limit),
        ).fetchall()

    @plain_errors
    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` rows of one kind with names after ``name``, ordered by name."""
        return self.repo.connection.execute(
            "SELECT kind, name, body, etag FROM resources WHERE kind = ? AND name > ?"
            " ORDER BY name LIMIT ?",
            (kind, name, limit),
        ).fetchall()

    @plain_errors
    def counts(self) -> dict[str, int]:
        """How many resources of each kind the tenant holds."""
        rows = self.repo.connection.execute("SELECT kind, count(*) FROM resources GROUP BY kind")
        return {kind: int(n) for kind, n in rows}

    @plain_errors
    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` audit rows (id, at, actor, kind, name, action, fields) after an id."""
        return self.repo.connection.execute(
            "SELECT id, at, actor, kind, name, action, fields FROM audit WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (entry_id, limit),
        ).fetchall()

    @plain_errors
    def outcome(self, key: str) -> dict[str, Any] | None:
        """What the write sent with Idempotency-Key ``key`` did, or None if none happened;
        ``request`` is the digest of the request it was sent with (None before keys were
        bound), for the caller to compare, not to show."""
        row = self.repo.connection.execute(
            "SELECT kind, name, action, request FROM http_writes WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        current = self.repo.get(row[0], row[1])
        etag = current.etag if current is not None else None
        return {
            "key": key,
            "kind": row[0],
            "name": row[1],
            "action": row[2],
            "etag": etag,
            "request": row[3],
        }

    @plain_errors
    def default_name(self) -> str:
        """The tenant's default SMTP server: the one marked default, else the built-in."""
        return self.tenant.default_server()

    @plain_errors
    def lock_holder(self) -> dict[str, Any] | None:
        """The apply lock's holder, host, pid and since, or None when it is free."""
        found = self.repo.lock_row()
        if found is None:
            return None
        info = found[0]
        return {"holder": info.holder, "host": info.host, "pid": info.pid, "since": info.since}


def _lease(holder: str | None) -> lease.Lease | None:
    """The lease of a lock a client took over the API (renewed on every write), or None."""
    return None if holder is None else lease.Lease(holder, LOCK_LEASE_SECONDS)
