"""The served store: a tenant, plus what the REST API records and reads itself.

Composed, not inherited: the tenant's rules, sealing and lease (``channelsync.tenant``) over
a repository of either store, the embedded SQLite file (``sqlite:///PATH``) or a PostgreSQL
database that several replicas share (``postgresql://...``). Request state (who acts, under
which Idempotency-Key and lock) comes in as arguments of each call, never as state of this
shared object.

Each write's audit entry lists the changed field paths (never values), and its
Idempotency-Key lands in ``http_writes``; both in the same transaction as the write, so after
a lost response a client can ask ``GET /v1/writes/KEY`` whether its write happened before
deciding to resend it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from channelsync.plan.diff import changed_paths
from channelsync.targets.base import LockInfo, Operation, TargetError
from channelsync.targets.postgresql import is_postgres_url, redact
from channelsync.targets.sqlite import LOCK_LEASE_SECONDS, open_tenant, plain_errors
from channelsync.tenant import lease
from channelsync.tenant.repository import Repository

if TYPE_CHECKING:
    from channelsync.targets.postgresql import PostgresStore

SERVER_ACTOR = "server"
KEY_FILE_NEEDED = (
    "a postgresql:// store needs --key-file FILE: the key that seals its secrets (every "
    "replica uses a copy of the same file; it is made on first use)"
)


class ServedRepository(Repository, Protocol):
    """A repository a server pages over and records Idempotency-Keys in."""

    def close(self) -> None: ...

    def resources_after(
        self, kind: str, name: str, limit: int
    ) -> list[tuple[str, str, str, str]]: ...

    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]: ...

    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]: ...

    def record_write(self, key: str, kind: str, name: str, action: str) -> None: ...

    def write_of(self, key: str) -> tuple[str, str, str] | None: ...


def workers(url: str) -> int:
    """How many requests' database work may run at once: one for SQLite (one writer per
    file anyway), a few for PostgreSQL (its row locks serialise the writers of a tenant)."""
    return 4 if is_postgres_url(url) else 1


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    return changed_paths(before or {}, after or {})


class Store:
    """The tenant a server writes to on behalf of its tokens, and the queries it pages over."""

    @plain_errors
    def __init__(self, url: str, *, key_file: Path | None = None) -> None:
        self.url = url
        self.shown = redact(url)
        self.path: Path | str = self.shown
        self.database: PostgresStore | None = None
        self.repo: ServedRepository
        if is_postgres_url(url):
            from channelsync.targets import postgresql

            if key_file is None:
                raise TargetError(KEY_FILE_NEEDED)
            self.database, self.repo, self.tenant = postgresql.open_tenant(
                url, key_file=key_file, audit_fields=_changed, pool_size=workers(url) + 2
            )
        else:
            sqlite, self.tenant = open_tenant(url, readonly=False, audit_fields=_changed)
            self.path = sqlite.path
            sqlite.prepare_served()
            self.repo = sqlite

    def close(self) -> None:
        self.repo.close()
        if self.database is not None:
            self.database.close()

    # --- writing ---------------------------------------------------------------------

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction, for a handler whose precondition must hold inside it."""
        return self.repo.transaction()

    @plain_errors
    def write(self, op: Operation, *, actor: str, key: str | None, holder: str | None) -> None:
        """Apply one operation as ``actor``, recorded under Idempotency-Key ``key``,
        renewing the lease of the apply lock ``holder`` took."""
        self._recorded(key, op.kind, op.name, op.action, lambda: self._apply(op, actor, holder))

    def _apply(self, op: Operation, actor: str, holder: str | None) -> bool:
        self.tenant.apply(op, actor=actor, lease=_lease(holder))
        return True

    @plain_errors
    def set_default(self, name: str, *, actor: str, key: str | None, holder: str | None) -> bool:
        """Make SmtpServer ``name`` the default; False, changing nothing, if there is none."""
        return self._recorded(
            key,
            "SmtpServer",
            name,
            "set-default",
            lambda: self.tenant.set_default(name, actor=actor, lease=_lease(holder)),
        )

    def _recorded(
        self, key: str | None, kind: str, name: str, action: str, write: Callable[[], bool]
    ) -> bool:
        with self.repo.transaction():
            done = write()
            if done and key is not None:
                self.repo.record_write(key, kind, name, action)
        return done

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
        return self.repo.resources_after(kind, name, limit)

    @plain_errors
    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` rows of one kind with names after ``name``, ordered by name."""
        return self.repo.kind_after(kind, name, limit)

    @plain_errors
    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` audit rows (id, at, actor, kind, name, action, fields) after an id."""
        return self.repo.audit_after(entry_id, limit)

    @plain_errors
    def outcome(self, key: str) -> dict[str, Any] | None:
        """What the write sent with Idempotency-Key ``key`` did, or None if none happened."""
        row = self.repo.write_of(key)
        if row is None:
            return None
        current = self.repo.get(row[0], row[1])
        etag = current.etag if current is not None else None
        return {"key": key, "kind": row[0], "name": row[1], "action": row[2], "etag": etag}

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
