"""The served store: its tenants, plus what the REST API records and reads itself.

Composed, not inherited: the tenant's rules, sealing and lease (``channelsync.tenant``) over
a repository of either database, the embedded SQLite file (``sqlite:///PATH``) or a
PostgreSQL database that several replicas share (``postgresql://...``). Request state (who
acts, under which Idempotency-Key and lock) comes in as arguments of each call, never as
state of this shared object.

Each write's audit entry lists the changed field paths (never values), and its
Idempotency-Key lands in ``http_writes``; both in the same transaction as the write, so after
a lost response a client can ask ``GET /v1/writes/KEY`` whether its write happened before
deciding to resend it.

One ``Store`` object is bound to one tenant of the file (``name``); ``of(tenant)`` is the
same store bound to another (``None``: no such tenant), sharing the database. Each
tenant's keys are looked up again whenever its data key changes (``keys rotate`` in
another process), and checked inside every write's transaction.
"""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from channelsync.defaults import DEFAULT_TENANT
from channelsync.plan.diff import changed_paths
from channelsync.targets.base import LockInfo, Operation, TargetError
from channelsync.targets.postgresql import is_postgres_url, redact
from channelsync.targets.sqlite import LOCK_LEASE_SECONDS, SqliteStore, plain_errors
from channelsync.tenant import lease
from channelsync.tenant.repository import Repository, Tenants
from channelsync.tenant.rules import AuditFields, Tenant
from channelsync.tenant.sealing import Keys

SERVER_ACTOR = "server"
KEY_FILE_NEEDED = (
    "a postgresql:// store needs --key-file FILE: the key that seals its secrets (every "
    "replica uses a copy of the same file; it is made on first use)"
)


class ServedRepository(Repository, Protocol):
    """A tenant's repository as a server uses it: pages, counts, audit, Idempotency-Keys."""

    def lost_transaction(self) -> bool:
        """A failure inside the open transaction undid all of it (SQLite), not only its
        savepoint."""
        ...

    def resources_after(
        self, kind: str, name: str, limit: int
    ) -> list[tuple[str, str, str, str]]: ...

    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]: ...

    def counts(self) -> dict[str, int]: ...

    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]: ...

    def audit_of(self, kind: str, name: str, limit: int) -> list[tuple[Any, ...]]: ...

    def record_write(
        self, key: str, kind: str, name: str, action: str, request: str | None
    ) -> None: ...

    def write_of(self, key: str) -> tuple[str, str, str, str | None] | None: ...


class Database(Protocol):
    """A store of tenants: ``SqliteStore`` or ``PostgresStore``."""

    @property
    def path(self) -> Path | str:
        """How messages name it (a PostgreSQL URL without its password)."""
        ...

    @property
    def tenants(self) -> Tenants: ...

    def repository(self, tenant: str) -> ServedRepository: ...

    def keys(self, tenant: str) -> Keys: ...

    def tenant(self, name: str, *, audit_fields: AuditFields = ...) -> Tenant: ...

    def close(self) -> None: ...


def workers(url: str) -> int:
    """How many requests' database work may run at once: one for SQLite (one writer per
    file anyway), a few for PostgreSQL (its row locks serialise the writers of a tenant)."""
    return 4 if is_postgres_url(url) else 1


def open_database(url: str, *, key_file: Path | None) -> Database:
    """The database of ``url`` for a writer: a PostgreSQL one needs ``key_file``."""
    if not is_postgres_url(url):
        return SqliteStore(url, readonly=False)
    from channelsync.targets.postgresql import PostgresStore

    if key_file is None:
        raise TargetError(KEY_FILE_NEEDED)
    return PostgresStore(url, key_file=key_file, pool_size=workers(url) + 2)


def _changed(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    if not before or not after:  # a create or a delete: every field set (without a diff)
        return sorted(key for key, value in (after or before or {}).items() if value is not None)
    return changed_paths(before, after)


class Store:
    """The tenant a server writes to on behalf of its tokens, and the queries it pages over."""

    @plain_errors
    def __init__(self, url: str, *, key_file: Path | None = None) -> None:
        self.url = url
        self.path: Path | str = redact(url)  # until the database names itself
        self.database = open_database(url, key_file=key_file)
        self.path = self.database.path
        self.tenants = self.database.tenants
        self._bound: dict[str, Store] = {}  # the store bound to each tenant, shared by all
        try:
            self._bind(DEFAULT_TENANT, self.tenants.data_key(DEFAULT_TENANT))
        except BaseException:
            self.database.close()
            raise

    def _bind(self, name: str, data_key: bytes | None) -> None:
        self.name = name
        self._data_key = data_key
        self.repo = self.database.repository(name)
        self.tenant = self.database.tenant(name, audit_fields=_changed)
        self._bound[name] = self

    def repository(self, tenant: str) -> ServedRepository:
        return self.database.repository(tenant)

    @plain_errors
    def of(self, name: str) -> Store | None:
        """This store bound to tenant ``name``, or None when there is no such tenant."""
        try:
            data_key = self.tenants.data_key(name)
        except KeyError:
            self._bound.pop(name, None)
            return None
        found = self._bound.get(name)
        if found is None or found._data_key != data_key:
            found = copy.copy(self)
            found._bind(name, data_key)
        return found

    def _current_keys(self) -> None:
        """Inside a write's transaction: the keys the tenant seals with now."""
        try:
            data_key = self.tenants.data_key(self.name)
        except KeyError:
            raise TargetError(f"tenant '{self.name}' was removed") from None
        if data_key != self._data_key:
            self._bind(self.name, data_key)

    @property
    def sqlite(self) -> sqlite3.Connection | None:
        """The SQLite connection the console's and the monitor's own tables live on (their
        SQL is SQLite's); None on a PostgreSQL store, which has no such tables yet."""
        return self.database.root.connection if isinstance(self.database, SqliteStore) else None

    def close(self) -> None:
        self.database.close()

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
            self._current_keys()
            done = write()
            if done and key is not None:
                self.repo.record_write(key, kind, name, action, request)
        return done

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction: for a handler whose precondition must hold inside it, and
        for many writes (each still its own savepoint) with one commit."""
        return self.repo.transaction()

    def batch(self) -> AbstractContextManager[None]:
        """One transaction for many writes (each still its own savepoint): one commit."""
        return self.transaction()

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
        return self.repo.resources_after(kind, name, limit)

    @plain_errors
    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` rows of one kind with names after ``name``, ordered by name."""
        return self.repo.kind_after(kind, name, limit)

    @plain_errors
    def counts(self) -> dict[str, int]:
        """How many resources of each kind the tenant holds."""
        return self.repo.counts()

    @plain_errors
    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` audit rows (id, at, actor, kind, name, action, fields) after an id."""
        return self.repo.audit_after(entry_id, limit)

    @plain_errors
    def audit_of(self, kind: str, name: str, limit: int) -> list[tuple[Any, ...]]:
        """The newest ``limit`` audit rows (at, actor, action, fields) of one resource."""
        return self.repo.audit_of(kind, name, limit)

    @plain_errors
    def outcome(self, key: str) -> dict[str, Any] | None:
        """What the write sent with Idempotency-Key ``key`` did, or None if none happened;
        ``request`` is the digest of the request it was sent with (None before keys were
        bound), for the caller to compare, not to show."""
        row = self.repo.write_of(key)
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
