"""The embedded tenant: the vendor's Configuration Manager stored in SQLite.

The tenant's rules (``tenant/rules.py``), secret sealing (``tenant/sealing.py``) and the apply
lock (``tenant/lease.py``) are shared by every store; this module is the SQLite repository
they run over, and ``SqliteTarget``, the driver composed of them. Every operation is one
IMMEDIATE transaction, so concurrent writers serialise.
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

from channelsync.defaults import DEFAULT_TARGET, tenant_default_server
from channelsync.targets.base import Key, LiveResource, LockInfo, Operation, TargetError
from channelsync.tenant import lease
from channelsync.tenant.repository import Row, Stored, serialise
from channelsync.tenant.rules import AuditFields, Tenant, stored_fields
from channelsync.tenant.sealing import Keys, Sealer

LOCK_LEASE_SECONDS = lease.LEASE_SECONDS  # read when a lock is taken (tests shorten it)
_READ_ATTEMPTS = 5
_SCHEMA = """
CREATE TABLE IF NOT EXISTS resources (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    secrets BLOB,
    etag TEXT NOT NULL,
    email TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (kind, name)
);
CREATE UNIQUE INDEX IF NOT EXISTS channel_email ON resources (email) WHERE email IS NOT NULL;
CREATE TABLE IF NOT EXISTS apply_lock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    holder TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, since TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    action TEXT NOT NULL, fields TEXT NOT NULL
);
"""
_WRITES_SCHEMA = """
CREATE TABLE IF NOT EXISTS http_writes (
    key TEXT PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    action TEXT NOT NULL
);
"""


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


class SqliteRepository:
    """The ``Repository`` of the tenant's rules, sealing and lease, in one SQLite file.

    A reader (``readonly``) creates nothing: no tenant, no folder, and none of the -wal and
    -shm files a plain read-only SQLite connection leaves behind (nor fails for, in a
    read-only folder). With no -wal file, or an empty one, every committed change is in the
    database file itself, which is then read without locks (``immutable``); ``_query``
    checks that no writer changed the file meanwhile (a checkpoint is the only way one
    changes it). With a -wal file that holds changes, SQLite's read-only mode reads it.
    """

    def __init__(self, path: Path, *, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self.absent: str | None = None  # why there is no tenant here yet (read-only only)
        self._snapshot: tuple[int, ...] | None = None  # the file an unlocked reader reads
        self._depth = 0
        self._db = self._connect_readonly() if readonly else self._connect()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
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
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)

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
        rows = self._query("SELECT kind, name, body, etag FROM resources")
        bodies = _bodies(row[2] for row in rows)
        return [
            Stored(k, n, body, etag) for (k, n, _, etag), body in zip(rows, bodies, strict=True)
        ]

    def get(self, kind: str, name: str) -> Stored | None:
        rows = self._query(
            "SELECT body, etag FROM resources WHERE kind = ? AND name = ?", (kind, name)
        )
        return Stored(kind, name, json.loads(rows[0][0]), rows[0][1]) if rows else None

    def exists(self, kind: str, name: str) -> bool:
        return bool(
            self._query("SELECT 1 FROM resources WHERE kind = ? AND name = ?", (kind, name))
        )

    def of_kind(self, kind: str) -> list[Stored]:
        rows = self._query("SELECT name, body, etag FROM resources WHERE kind = ?", (kind,))
        return [Stored(kind, name, json.loads(body), etag) for name, body, etag in rows]

    def unique_holder(self, kind: str, unique: str, name: str) -> str | None:
        rows = self._query(
            "SELECT name FROM resources WHERE email = ? AND name != ?", (unique, name)
        )
        return str(rows[0][0]) if rows else None

    def insert(self, row: Row) -> None:
        text, etag = serialise(row.body)
        self._write(
            "INSERT INTO resources (kind, name, body, secrets, etag, email, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (row.kind, row.name, text, row.sealed, etag, row.unique, time.time()),
        )

    def update(self, row: Row) -> None:
        text, etag = serialise(row.body)
        self._write(
            "UPDATE resources SET body = ?, secrets = ?, etag = ?, email = ?, updated_at = ?"
            " WHERE kind = ? AND name = ?",
            (text, row.sealed, etag, row.unique, time.time(), row.kind, row.name),
        )

    def update_body(self, kind: str, name: str, body: dict[str, Any]) -> None:
        text, etag = serialise(body)
        self._write(
            "UPDATE resources SET body = ?, etag = ?, updated_at = ? WHERE kind = ? AND name = ?",
            (text, etag, time.time(), kind, name),
        )

    def rename(self, kind: str, old: str, new: str) -> None:
        self._write("UPDATE resources SET name = ? WHERE kind = ? AND name = ?", (new, kind, old))

    def delete(self, kind: str, name: str) -> None:
        self._write("DELETE FROM resources WHERE kind = ? AND name = ?", (kind, name))

    def sealed(self, kind: str, name: str) -> bytes | None:
        rows = self._query(
            "SELECT secrets FROM resources WHERE kind = ? AND name = ?", (kind, name)
        )
        return rows[0][0] if rows else None

    def holds_secrets(self) -> bool:
        return bool(self._query("SELECT 1 FROM resources WHERE secrets IS NOT NULL LIMIT 1"))

    def audit(self, actor: str, kind: str, name: str, action: str, fields: list[str]) -> None:
        self._write(
            "INSERT INTO audit (at, actor, kind, name, action, fields) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), actor, kind, name, action, json.dumps(fields)),
        )

    # --- the apply lock ---------------------------------------------------------------

    def lock_row(self) -> tuple[LockInfo, float] | None:
        rows = self._query("SELECT holder, host, pid, since, expires FROM apply_lock")
        if not rows:
            return None
        holder, host, pid, since, expires = rows[0]
        return LockInfo(holder, host, int(pid), since), float(expires)

    def put_lock(self, info: LockInfo, expires: float) -> None:
        self._write(
            "INSERT OR REPLACE INTO apply_lock (id, holder, host, pid, since, expires)"
            " VALUES (1, ?, ?, ?, ?, ?)",
            (info.holder, info.host, info.pid, info.since, expires),
        )

    def renew_lock(self, holder: str, expires: float) -> bool:
        sql = "UPDATE apply_lock SET expires = ? WHERE holder = ?"
        return bool(self._write(sql, (expires, holder)))

    def drop_lock(self, holder: str) -> bool:
        return bool(self._write("DELETE FROM apply_lock WHERE holder = ?", (holder,)))

    # --- what the server reads and records --------------------------------------------

    def prepare_served(self) -> None:
        """The table of Idempotency-Key outcomes, which only a served store has."""
        self.connection.executescript(_WRITES_SCHEMA)

    def resources_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` (kind, name, body, etag) rows after (kind, name), in that order."""
        return self._query(
            "SELECT kind, name, body, etag FROM resources WHERE (kind, name) > (?, ?)"
            " ORDER BY kind, name LIMIT ?",
            (kind, name, limit),
        )

    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` rows of one kind with names after ``name``, ordered by name."""
        return self._query(
            "SELECT kind, name, body, etag FROM resources WHERE kind = ? AND name > ?"
            " ORDER BY name LIMIT ?",
            (kind, name, limit),
        )

    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` audit rows (id, at, actor, kind, name, action, fields) after an id."""
        return self._query(
            "SELECT id, at, actor, kind, name, action, fields FROM audit WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (entry_id, limit),
        )

    def record_write(self, key: str, kind: str, name: str, action: str) -> None:
        """The outcome of the write sent with Idempotency-Key ``key`` (the first one stays)."""
        self._write(
            "INSERT OR IGNORE INTO http_writes (key, at, kind, name, action)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, time.time(), kind, name, action),
        )

    def write_of(self, key: str) -> tuple[str, str, str] | None:
        """(kind, name, action) of the write recorded under ``key``, or None."""
        rows = self._query("SELECT kind, name, action FROM http_writes WHERE key = ?", (key,))
        return (rows[0][0], rows[0][1], rows[0][2]) if rows else None


def _bodies(texts: Iterable[str]) -> list[dict[str, Any]]:
    """The stored bodies, parsed as one JSON array (a third faster than one by one)."""
    found: list[dict[str, Any]] = json.loads("[" + ",".join(texts) + "]")
    return found


def open_tenant(
    url: str, *, readonly: bool, audit_fields: AuditFields = stored_fields
) -> tuple[SqliteRepository, Tenant]:
    """The repository of ``url`` and the tenant composed over it (its key read or made)."""
    path = path_from_url(url)
    key_file = path.with_suffix(".key")
    if not key_file.exists() and path.is_file() and path.stat().st_size:
        _require_tenant_file(path)  # another file at a mistyped path, not a tenant
    repo = SqliteRepository(path, readonly=readonly)
    try:
        keys = Keys.open(key_file, repo, readonly=readonly)
    except BaseException:
        repo.close()
        raise
    return repo, Tenant(repo, Sealer(keys), audit_fields=audit_fields)


def renew_elsewhere(path: Path, holder: str, seconds: float) -> Callable[[], None]:
    """The heartbeat's renewal, on a connection of its own (the holder's may be busy)."""

    def renew() -> None:
        with contextlib.suppress(sqlite3.Error):
            db = sqlite3.connect(path, timeout=10)
            try:
                with db:
                    db.execute(
                        "UPDATE apply_lock SET expires = ? WHERE holder = ?",
                        (time.time() + seconds, holder),
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
