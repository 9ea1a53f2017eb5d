"""The embedded tenant: the vendor's Configuration Manager stored in SQLite.

The tenant's rules (``tenant/rules.py``), secret sealing (``tenant/sealing.py``) and the apply
lock (``tenant/lease.py``) are shared by every store; this module is the SQLite repository
they run over, and ``SqliteTarget``, the driver composed of them. Every operation is one
IMMEDIATE transaction, so concurrent writers serialise.

One file holds many tenants (``SqliteStore``): every table of tenant data has a ``tenant``
column leading its keys, and a repository is bound to one tenant. ``PRAGMA user_version``
is the schema's version: 0 is the single-tenant file of the versions before tenants, which
the first writer upgrades in place (one transaction: its rows become the tenant "default");
a reader never changes a file, and reads an old one as its tenant "default" through
temporary views of its tables.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from channelsync.defaults import DEFAULT_TARGET, DEFAULT_TENANT, tenant_default_server
from channelsync.targets.base import Key, LiveResource, LockInfo, Operation, TargetError
from channelsync.tenant import lease
from channelsync.tenant.repository import (
    Row,
    Stored,
    cannot_remove,
    check_tenant_name,
    serialise,
)
from channelsync.tenant.rules import AuditFields, Tenant, stored_fields
from channelsync.tenant.sealing import Keys, Sealer, tenant_keys

LOCK_LEASE_SECONDS = lease.LEASE_SECONDS  # read when a lock is taken (tests shorten it)
_READ_ATTEMPTS = 5
SCHEMA_VERSION = 1  # PRAGMA user_version; 0: a single-tenant file from before tenants
TENANT_TABLES = ("resources", "apply_lock", "audit", "http_writes")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tenants ("
    " name TEXT PRIMARY KEY, data_key BLOB, created REAL NOT NULL)",
    "CREATE TABLE IF NOT EXISTS resources ("
    " tenant TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,"
    " secrets BLOB, etag TEXT NOT NULL, email TEXT, updated_at REAL NOT NULL,"
    " PRIMARY KEY (tenant, kind, name))",
    # a unique value (a channel's or an agent's address) is unique within its kind and tenant
    "CREATE UNIQUE INDEX IF NOT EXISTS unique_value ON resources (tenant, kind, email)"
    " WHERE email IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS apply_lock ("
    " tenant TEXT PRIMARY KEY, holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,"
    " since TEXT NOT NULL, expires REAL NOT NULL)",
    # the id stays the one key (AUTOINCREMENT: the audit pages' cursor); the index leads with
    # the tenant
    "CREATE TABLE IF NOT EXISTS audit ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, at REAL NOT NULL,"
    " actor TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, action TEXT NOT NULL,"
    " fields TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS audit_tenant ON audit (tenant, id)",
    "CREATE TABLE IF NOT EXISTS http_writes ("
    " tenant TEXT NOT NULL, key TEXT NOT NULL, at REAL NOT NULL, kind TEXT NOT NULL,"
    " name TEXT NOT NULL, action TEXT NOT NULL, request TEXT, PRIMARY KEY (tenant, key))",
)
# The columns of version 0's tables (http_writes: only in a file a server wrote).
_V0_COLUMNS = {
    "resources": "kind, name, body, secrets, etag, email, updated_at",
    "apply_lock": "holder, host, pid, since, expires",
    "audit": "id, at, actor, kind, name, action, fields",
    "http_writes": "key, at, kind, name, action",
}


def path_from_url(url: str) -> Path:
    """sqlite:///relative/path or sqlite:////absolute/path (as SQLAlchemy writes them); the
    scheme in any case, like every URL scheme."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not rest.startswith("/") or rest == "/":
        raise TargetError(f"bad target URL '{url}': use sqlite:///PATH (e.g. {DEFAULT_TARGET})")
    return Path(rest[1:])


_F = TypeVar("_F", bound=Callable[..., Any])


def plain_errors(method: _F) -> _F:
    """SQLite's own failures (corrupt file, disk full, read-only folder) as one-line errors,
    for the methods of an object with a ``path`` (the database file)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise TargetError(f"tenant database {self.path}: {exc}") from None
        except OSError as exc:
            where = exc.filename or self.path
            raise TargetError(f"tenant database {where}: {exc.strerror or exc}") from None

    return wrapper  # type: ignore[return-value]


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _require_tenant_file(path: Path) -> None:
    """A file that is not a tenant database fails as that, not as a tenant without its key."""
    with path.open("rb") as f:
        header = f.read(len(_SQLITE_MAGIC))
    if header == _SQLITE_MAGIC:
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True)) as db:
                tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
        except sqlite3.OperationalError:
            raise
        except sqlite3.DatabaseError:  # a damaged file that starts like a database
            tables = {"(damaged)"}
        if not tables or "resources" in tables:
            return
    raise TargetError(
        f"{path} is not a tenant database (not one channelsync created); check --target: "
        "sqlite:///x is the path x relative to the current folder, sqlite:////x is /x"
    )


def _schema_version(db: sqlite3.Connection, path: Path) -> int:
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise TargetError(
            f"tenant database {path} has schema version {version}, newer than this channelsync "
            f"knows ({SCHEMA_VERSION}); upgrade channelsync"
        )
    return version


def _tables(db: sqlite3.Connection, schema: str = "main") -> set[str]:
    return {r[0] for r in db.execute(f"SELECT name FROM {schema}.sqlite_master WHERE type='table'")}


def _upgrade(db: sqlite3.Connection, path: Path) -> None:
    """Create the schema, or upgrade a file of version 0 in place, in one transaction (a
    second process waits for it, then finds the work done)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if _schema_version(db, path) < SCHEMA_VERSION:
            old = [t for t in TENANT_TABLES if t in _tables(db)]
            db.execute("DROP INDEX IF EXISTS channel_email")
            for table in old:
                db.execute(f"ALTER TABLE {table} RENAME TO v0_{table}")
            for statement in _SCHEMA:
                db.execute(statement)
            for table in old:
                columns = _V0_COLUMNS[table]
                db.execute(
                    f"INSERT INTO {table} (tenant, {columns}) SELECT ?, {columns} FROM v0_{table}",
                    (DEFAULT_TENANT,),
                )
                db.execute(f"DROP TABLE v0_{table}")
            db.execute(
                "INSERT OR IGNORE INTO tenants (name, data_key, created) VALUES (?, NULL, ?)",
                (DEFAULT_TENANT, time.time()),
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _read_version_0(db: sqlite3.Connection) -> bool:
    """A reader's view of a file of version 0 as the current schema with one tenant,
    "default" (temporary views: nothing in the file changes); False when it has no tables."""
    found = _tables(db)
    if "resources" not in found:
        return False
    for table in TENANT_TABLES:
        columns = _V0_COLUMNS[table]
        source = (
            f"main.{table}"
            if table in found
            else "(SELECT NULL AS " + ", NULL AS ".join(columns.split(", ")) + " WHERE 0)"
        )
        db.execute(
            f"CREATE TEMP VIEW {table} AS SELECT '{DEFAULT_TENANT}' AS tenant, {columns}"
            f" FROM {source}"
        )
    db.execute(
        f"CREATE TEMP VIEW tenants AS SELECT '{DEFAULT_TENANT}' AS name, NULL AS data_key,"
        " 0.0 AS created"
    )
    return True


class _Shared:
    """What the repositories of the tenants of one file share: its connection, the depth of
    the open transaction, and the file an unlocked reader reads."""

    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None
        self.depth = 0
        self.snapshot: tuple[int, ...] | None = None


class SqliteRepository:
    """The ``Repository`` of the tenant's rules, sealing and lease, in one SQLite file.

    Bound to one tenant (``tenant``); ``for_tenant`` is another tenant of the same file, on
    the same connection (one transaction can span both).

    A reader (``readonly``) creates nothing: no tenant, no folder, and none of the -wal and
    -shm files a plain read-only SQLite connection leaves behind (nor fails for, in a
    read-only folder). With no -wal file, or an empty one, every committed change is in the
    database file itself, which is then read without locks (``immutable``); ``_query``
    checks that no writer changed the file meanwhile (a checkpoint is the only way one
    changes it). With a -wal file that holds changes, SQLite's read-only mode reads it.
    """

    _shared: _Shared

    def __init__(
        self,
        path: Path,
        *,
        readonly: bool,
        tenant: str = DEFAULT_TENANT,
        shares: SqliteRepository | None = None,
    ) -> None:
        self.path = path
        self.readonly = readonly
        self.tenant = tenant
        self.absent: str | None = None  # why there is no tenant here yet (read-only only)
        if shares is not None:
            self._shared = shares._shared
            self.absent = shares.absent
            return
        self._shared = _Shared()
        self._db = self._connect_readonly() if readonly else self._connect()

    def for_tenant(self, tenant: str) -> SqliteRepository:
        """The repository of tenant ``tenant`` of the same file, on the same connection."""
        return SqliteRepository(self.path, readonly=self.readonly, tenant=tenant, shares=self)

    # the shared state, under the names the queries use
    @property
    def _db(self) -> sqlite3.Connection | None:
        return self._shared.db

    @_db.setter
    def _db(self, db: sqlite3.Connection | None) -> None:
        self._shared.db = db

    @property
    def _depth(self) -> int:
        return self._shared.depth

    @_depth.setter
    def _depth(self, depth: int) -> None:
        self._shared.depth = depth

    @property
    def _snapshot(self) -> tuple[int, ...] | None:
        return self._shared.snapshot

    @_snapshot.setter
    def _snapshot(self, snapshot: tuple[int, ...] | None) -> None:
        self._shared.snapshot = snapshot

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if _schema_version(db, self.path) < SCHEMA_VERSION:
                _upgrade(db, self.path)
        except BaseException:
            db.close()
            raise
        return db

    def _connect_readonly(self) -> sqlite3.Connection | None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            _check_folders(self.path)
            self.absent = f"no tenant at {self.path} yet: apply will create it"
            return None
        journal = any(_holds_data(Path(f"{self.path}{end}")) for end in ("-wal", "-journal"))
        self._snapshot = None if journal else _signature(self.path)
        mode = "mode=ro" if journal else "immutable=1"
        uri = f"file:{quote(str(self.path.resolve()))}?{mode}"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)
        try:
            if _schema_version(db, self.path) == 0 and not _read_version_0(db):
                db.close()
                self.absent = f"no tenant at {self.path} yet: apply will create it"
                return None
        except BaseException:
            db.close()
            raise
        return db

    @property
    def connection(self) -> sqlite3.Connection:
        """The open connection, for the queries a served store composes itself."""
        if self._db is None:
            raise TargetError(f"tenant database {self.path} is not open")
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """The rows of one statement, read again when a writer changed the file under an
        unlocked reader."""
        for _ in range(_READ_ATTEMPTS):
            if self._db is None:
                return []
            try:
                rows = self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError:
                if self._snapshot is None or _signature(self.path) == self._snapshot:
                    raise
            else:
                if self._snapshot is None or _signature(self.path) == self._snapshot:
                    return rows
            self._db.close()
            self._db = self._connect_readonly()
        raise TargetError(f"tenant database {self.path} kept changing while read; try again")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One IMMEDIATE transaction; a block inside another is a savepoint of it: all or
        nothing on its own, committed with the outer one."""
        if self._db is None or self.readonly:
            raise TargetError("this target was opened read-only")
        db = self._db
        if self._depth:
            savepoint = f"nested_{self._depth}"
            db.execute(f"SAVEPOINT {savepoint}")
            self._depth += 1
            try:
                yield
            except BaseException:
                if db.in_transaction:  # SQLite itself may have rolled everything back
                    db.execute(f"ROLLBACK TO {savepoint}")
                    db.execute(f"RELEASE {savepoint}")
                raise
            finally:
                self._depth -= 1
            db.execute(f"RELEASE {savepoint}")
            return
        db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        self._depth = 0
        if db.in_transaction:  # not when a failure made SQLite roll back (a batch went on)
            db.execute("COMMIT")

    def lost_transaction(self) -> bool:
        """A failure inside the open transaction made SQLite roll all of it back."""
        return self._depth > 0 and self._db is not None and not self._db.in_transaction

    def commit(self) -> None:
        """Commit the open outermost transaction and begin the next one (for a batch)."""
        if self._depth != 1 or self._db is None:
            raise TargetError("a commit outside a batch")
        self._db.execute("COMMIT")
        self._db.execute("BEGIN IMMEDIATE")

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        if not self._depth or self._db is None:
            raise TargetError("a write outside a transaction")
        return self._db.execute(sql, params).rowcount

    # --- resources --------------------------------------------------------------------

    def all(self) -> list[Stored]:
        rows = self._query(
            "SELECT kind, name, body, etag FROM resources WHERE tenant = ?", (self.tenant,)
        )
        bodies = _bodies(row[2] for row in rows)
        return [
            Stored(k, n, body, etag) for (k, n, _, etag), body in zip(rows, bodies, strict=True)
        ]

    def get(self, kind: str, name: str) -> Stored | None:
        rows = self._query(
            "SELECT body, etag FROM resources WHERE tenant = ? AND kind = ? AND name = ?",
            (self.tenant, kind, name),
        )
        return Stored(kind, name, json.loads(rows[0][0]), rows[0][1]) if rows else None

    def exists(self, kind: str, name: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM resources WHERE tenant = ? AND kind = ? AND name = ?",
                (self.tenant, kind, name),
            )
        )

    def of_kind(self, kind: str) -> list[Stored]:
        rows = self._query(
            "SELECT name, body, etag FROM resources WHERE tenant = ? AND kind = ?",
            (self.tenant, kind),
        )
        return [Stored(kind, name, json.loads(body), etag) for name, body, etag in rows]

    def unique_holder(self, kind: str, unique: str, name: str) -> str | None:
        rows = self._query(
            "SELECT name FROM resources WHERE tenant = ? AND kind = ? AND email = ? AND name != ?",
            (self.tenant, kind, unique, name),
        )
        return str(rows[0][0]) if rows else None

    def insert(self, row: Row) -> None:
        text, etag = serialise(row.body)
        self._write(
            "INSERT INTO resources (tenant, kind, name, body, secrets, etag, email, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.tenant, row.kind, row.name, text, row.sealed, etag, row.unique, time.time()),
        )

    def update(self, row: Row) -> None:
        text, etag = serialise(row.body)
        self._write(
            "UPDATE resources SET body = ?, secrets = ?, etag = ?, email = ?, updated_at = ?"
            " WHERE tenant = ? AND kind = ? AND name = ?",
            (text, row.sealed, etag, row.unique, time.time(), self.tenant, row.kind, row.name),
        )

    def update_body(self, kind: str, name: str, body: dict[str, Any]) -> None:
        text, etag = serialise(body)
        self._write(
            "UPDATE resources SET body = ?, etag = ?, updated_at = ?"
            " WHERE tenant = ? AND kind = ? AND name = ?",
            (text, etag, time.time(), self.tenant, kind, name),
        )

    def rename(self, kind: str, old: str, new: str) -> None:
        self._write(
            "UPDATE resources SET name = ? WHERE tenant = ? AND kind = ? AND name = ?",
            (new, self.tenant, kind, old),
        )

    def delete(self, kind: str, name: str) -> None:
        self._write(
            "DELETE FROM resources WHERE tenant = ? AND kind = ? AND name = ?",
            (self.tenant, kind, name),
        )

    def sealed(self, kind: str, name: str) -> bytes | None:
        rows = self._query(
            "SELECT secrets FROM resources WHERE tenant = ? AND kind = ? AND name = ?",
            (self.tenant, kind, name),
        )
        return rows[0][0] if rows else None

    def holds_secrets(self) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM resources WHERE tenant = ? AND secrets IS NOT NULL LIMIT 1",
                (self.tenant,),
            )
        )

    def audit(self, actor: str, kind: str, name: str, action: str, fields: list[str]) -> None:
        self._write(
            "INSERT INTO audit (tenant, at, actor, kind, name, action, fields)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.tenant, time.time(), actor, kind, name, action, json.dumps(fields)),
        )

    # --- the apply lock ---------------------------------------------------------------

    def lock_row(self) -> tuple[LockInfo, float] | None:
        rows = self._query(
            "SELECT holder, host, pid, since, expires FROM apply_lock WHERE tenant = ?",
            (self.tenant,),
        )
        if not rows:
            return None
        holder, host, pid, since, expires = rows[0]
        return LockInfo(holder, host, int(pid), since), float(expires)

    def put_lock(self, info: LockInfo, expires: float) -> None:
        self._write(
            "INSERT OR REPLACE INTO apply_lock (tenant, holder, host, pid, since, expires)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (self.tenant, info.holder, info.host, info.pid, info.since, expires),
        )

    def renew_lock(self, holder: str, expires: float) -> bool:
        sql = "UPDATE apply_lock SET expires = ? WHERE tenant = ? AND holder = ?"
        return bool(self._write(sql, (expires, self.tenant, holder)))

    def drop_lock(self, holder: str) -> bool:
        return bool(
            self._write(
                "DELETE FROM apply_lock WHERE tenant = ? AND holder = ?", (self.tenant, holder)
            )
        )

    # --- what the server reads and records --------------------------------------------

    def resources_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` (kind, name, body, etag) rows after (kind, name), in that order."""
        return self._query(
            "SELECT kind, name, body, etag FROM resources"
            " WHERE tenant = ? AND (kind, name) > (?, ?) ORDER BY kind, name LIMIT ?",
            (self.tenant, kind, name, limit),
        )

    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` rows of one kind with names after ``name``, ordered by name."""
        return self._query(
            "SELECT kind, name, body, etag FROM resources"
            " WHERE tenant = ? AND kind = ? AND name > ? ORDER BY name LIMIT ?",
            (self.tenant, kind, name, limit),
        )

    def counts(self) -> dict[str, int]:
        """How many resources of each kind the tenant holds."""
        rows = self._query(
            "SELECT kind, count(*) FROM resources WHERE tenant = ? GROUP BY kind", (self.tenant,)
        )
        return {kind: int(n) for kind, n in rows}

    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` audit rows (id, at, actor, kind, name, action, fields) after an id."""
        return self._query(
            "SELECT id, at, actor, kind, name, action, fields FROM audit"
            " WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?",
            (self.tenant, entry_id, limit),
        )

    def audit_of(self, kind: str, name: str, limit: int) -> list[tuple[Any, ...]]:
        """The newest ``limit`` audit rows (at, actor, action, fields) of one resource."""
        return self._query(
            "SELECT at, actor, action, fields FROM audit WHERE tenant = ? AND kind = ? AND name = ?"
            " ORDER BY id DESC LIMIT ?",
            (self.tenant, kind, name, limit),
        )

    def record_write(
        self, key: str, kind: str, name: str, action: str, request: str | None
    ) -> None:
        """The outcome of the write sent with Idempotency-Key ``key`` and the digest of its
        ``request`` (the first one stays)."""
        self._write(
            "INSERT OR IGNORE INTO http_writes"
            " (tenant, key, at, kind, name, action, request) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self.tenant, key, time.time(), kind, name, action, request),
        )

    def write_of(self, key: str) -> tuple[str, str, str, str | None] | None:
        """(kind, name, action, request digest) of the write recorded under ``key``, or None."""
        rows = self._query(
            "SELECT kind, name, action, request FROM http_writes WHERE tenant = ? AND key = ?",
            (self.tenant, key),
        )
        return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None


def _bodies(texts: Iterable[str]) -> list[dict[str, Any]]:
    """The stored bodies, parsed as one JSON array (a third faster than one by one)."""
    found: list[dict[str, Any]] = json.loads("[" + ",".join(texts) + "]")
    return found


class SqliteTenants:
    """The ``Tenants`` of one file, on the connection of its repositories."""

    def __init__(self, repo: SqliteRepository) -> None:
        self._repo = repo

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._repo.transaction()

    def names(self) -> list[str]:
        return [r[0] for r in self._repo._query("SELECT name FROM tenants ORDER BY name")]

    def _exists(self, name: str) -> bool:
        return bool(self._repo._query("SELECT 1 FROM tenants WHERE name = ?", (name,)))

    def add(self, name: str, data_key: bytes | None) -> None:
        check_tenant_name(name)
        with self.transaction():
            if self._exists(name):
                raise TargetError(f"tenant '{name}' already exists in {self._repo.path}")
            self._repo._write(
                "INSERT INTO tenants (name, data_key, created) VALUES (?, ?, ?)",
                (name, data_key, time.time()),
            )

    def remove(self, name: str) -> None:
        cannot_remove(name)
        with self.transaction():
            if not self._exists(name):
                raise TargetError(f"no tenant '{name}' in {self._repo.path}")
            for table in TENANT_TABLES:
                self._repo._write(f"DELETE FROM {table} WHERE tenant = ?", (name,))
            self._repo._write("DELETE FROM tenants WHERE name = ?", (name,))

    def data_key(self, name: str) -> bytes | None:
        rows = self._repo._query("SELECT data_key FROM tenants WHERE name = ?", (name,))
        if not rows:
            raise KeyError(name)
        found: bytes | None = rows[0][0]
        return found

    def set_data_key(self, name: str, data_key: bytes) -> None:
        with self.transaction():
            sql = "UPDATE tenants SET data_key = ? WHERE name = ?"
            if not self._repo._write(sql, (data_key, name)):
                raise KeyError(name)

    def holds_secrets(self) -> bool:
        """Whether anything in the file is sealed by the master key (a secret, or a data key)."""
        return bool(
            self._repo._query(
                "SELECT 1 FROM resources WHERE secrets IS NOT NULL"
                " UNION ALL SELECT 1 FROM tenants WHERE data_key IS NOT NULL LIMIT 1"
            )
        )


class SqliteStore:
    """``sqlite:///PATH``: one file of tenants, their master key (PATH with ``.key``), and a
    repository and a ``Tenant`` per tenant."""

    def __init__(self, url: str, *, readonly: bool) -> None:
        path = path_from_url(url)
        key_file = path.with_suffix(".key")
        if not key_file.exists() and path.is_file() and path.stat().st_size:
            _require_tenant_file(path)  # another file at a mistyped path, not a tenant
        self.path = path
        self.readonly = readonly
        self.root = SqliteRepository(path, readonly=readonly)
        self.absent = self.root.absent
        self.tenants = SqliteTenants(self.root)
        try:
            self.master = Keys.open(key_file, self.tenants, readonly=readonly)
        except BaseException:
            self.root.close()
            raise

    def repository(self, tenant: str) -> SqliteRepository:
        return self.root if tenant == DEFAULT_TENANT else self.root.for_tenant(tenant)

    def keys(self, tenant: str) -> Keys:
        """The keys tenant ``tenant`` seals with (KeyError: no such tenant)."""
        sealed = None if self.absent else self.tenants.data_key(tenant)
        return tenant_keys(self.master, sealed, tenant)

    def tenant(self, name: str, *, audit_fields: AuditFields = stored_fields) -> Tenant:
        """The rules of tenant ``name`` over its repository, with its keys."""
        keys = self.keys(name)
        return Tenant(self.repository(name), Sealer(keys), audit_fields=audit_fields)

    def close(self) -> None:
        self.root.close()


def open_tenant(
    url: str, *, readonly: bool, audit_fields: AuditFields = stored_fields
) -> tuple[SqliteRepository, Tenant]:
    """The repository of ``url``'s tenant "default" and the tenant composed over it (its key
    read or made)."""
    store = SqliteStore(url, readonly=readonly)
    try:
        tenant = store.tenant(DEFAULT_TENANT, audit_fields=audit_fields)
    except BaseException:
        store.close()
        raise
    return store.root, tenant


def renew_elsewhere(
    path: Path, holder: str, seconds: float, tenant: str = DEFAULT_TENANT
) -> Callable[[], None]:
    """The heartbeat's renewal, on a connection of its own (the holder's may be busy)."""

    def renew() -> None:
        with contextlib.suppress(sqlite3.Error):
            db = sqlite3.connect(path, timeout=10)
            try:
                with db:
                    db.execute(
                        "UPDATE apply_lock SET expires = ? WHERE tenant = ? AND holder = ?",
                        (time.time() + seconds, tenant, holder),
                    )
            finally:
                db.close()

    return renew


COMMITS_ALONE = 256
BATCH_SECONDS = 0.1


@dataclass
class _Batch:
    started: float = field(default_factory=time.monotonic)
    pending: int = 0  # operations since the last commit
    done: int = 0


class SqliteTarget:
    """``sqlite:///PATH``: the embedded default target."""

    @plain_errors
    def __init__(self, url: str, *, readonly: bool = False, actor: str = "cli") -> None:
        self.url = url
        self.path = path_from_url(url)
        self.readonly = readonly
        self.actor = actor
        self.repo, self.tenant = open_tenant(url, readonly=readonly)
        self.absent = self.repo.absent
        self._lease: lease.Lease | None = None  # the lock this object holds
        self._batch: _Batch | None = None  # the commit operations are gathered into

    def close(self) -> None:
        self.repo.close()

    @plain_errors
    def read(self) -> dict[Key, LiveResource]:
        return {
            (r.kind, r.name): LiveResource(r.kind, r.name, r.body, r.etag) for r in self.repo.all()
        }

    def fingerprint(self, secret: str) -> str:
        return self.tenant.sealer.fingerprint(secret)

    @plain_errors
    def secret_values(self, kind: str, name: str) -> dict[str, str]:
        """The stored secrets of one resource (what the tenant polls and sends with)."""
        return self.tenant.sealer.unseal(self.repo.sealed(kind, name))

    def effective_outgoing(self, resources: dict[Key, LiveResource]) -> str:
        """The tenant's default SMTP server, as the live resources say."""
        return tenant_default_server(r.data for r in resources.values() if r.kind == "SmtpServer")

    @plain_errors
    def apply(self, operation: Operation) -> None:
        if self._batch is None:
            self.tenant.apply(operation, actor=self.actor, lease=self._lease)
            return
        try:
            self.tenant.apply(operation, actor=self.actor, lease=self._lease)  # a savepoint
        except (sqlite3.Error, TargetError) as exc:
            if not self.repo.lost_transaction():
                self.repo.commit()  # what the report calls applied is applied
                raise
            lost, self._batch = self._batch, None
            what = exc if isinstance(exc, TargetError) else f"tenant database {self.path}: {exc}"
            raise TargetError(
                f"{what} (and the database undid the {lost.pending} change(s) before it "
                "since its last commit: run apply again)"
            ) from None
        batch = self._batch
        batch.pending += 1
        batch.done += 1
        if batch.done <= COMMITS_ALONE or time.monotonic() - batch.started >= BATCH_SECONDS:
            self.repo.commit()
            batch.started, batch.pending = time.monotonic(), 0

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Operations applied in the block: the first ``COMMITS_ALONE`` each commit on their
        own (a small apply behaves as one without a batch); the later ones share commits, at
        most ``BATCH_SECONDS`` apart (a commit costs more than a change). Each is still all or
        nothing (a savepoint), and what was applied before a failure is committed before the
        failure is raised, so the apply's report stays true. A process killed in the block
        loses the changes since the last commit, which the next apply makes again, as it does
        the ones never attempted."""
        with self.repo.transaction():
            self._batch = _Batch()
            try:
                yield
            finally:
                self._batch = None

    @plain_errors
    def _try_lock(self, info: LockInfo, seconds: float) -> LockInfo | None:
        return lease.try_take(self.repo, info, seconds)

    @contextlib.contextmanager
    def lock(self, info: LockInfo, timeout: float) -> Iterator[None]:
        seconds = LOCK_LEASE_SECONDS
        lease.wait_for(lambda: self._try_lock(info, seconds), timeout)
        self._lease = lease.Lease(info.holder, seconds, own=True)
        try:
            with lease.heartbeat(renew_elsewhere(self.path, info.holder, seconds), seconds):
                yield
        finally:
            self._lease = None
            with contextlib.suppress(sqlite3.Error, TargetError):
                lease.release(self.repo, info.holder)


def _holds_data(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _signature(path: Path) -> tuple[int, ...]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _check_folders(path: Path) -> None:
    """The nearest existing folder on the way to a tenant that is not there yet is a folder."""
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(parent))
            return
