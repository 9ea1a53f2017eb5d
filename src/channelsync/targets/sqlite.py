"""The embedded tenant: a SQLite model of the vendor's Configuration Manager.

The tenant's own rules hold here, whatever client writes: references must exist, a channel
without a script gets the default script, a channel without an outgoing server follows the
tenant's default (there is at most one default SmtpServer), built-ins cannot be changed, and
renaming a server or script carries its channels along. Secrets are kept encrypted (Fernet)
under a key file created with mode 0600 beside the database; reads expose only HMAC
fingerprints. Every operation is one IMMEDIATE transaction, so concurrent writers serialise.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import functools
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from channelsync import kinds
from channelsync.defaults import (
    BUILTIN_SMTP_SERVER,
    DEFAULT_EMAIL_SCRIPT,
    DEFAULT_TARGET,
    tenant_default_server,
)
from channelsync.document import get_path, secret_paths, set_path
from channelsync.fsio import PRIVATE, write_atomic
from channelsync.secrets import fingerprint
from channelsync.targets.base import (
    ConflictError,
    Key,
    LiveResource,
    LockInfo,
    LockTimeout,
    Operation,
    TargetError,
)

LOCK_LEASE_SECONDS = 120.0
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


def path_from_url(url: str) -> Path:
    """sqlite:///relative/path or sqlite:////absolute/path (as SQLAlchemy writes them); the
    scheme in any case, like every URL scheme."""
    scheme, _, rest = url.partition("://")
    if scheme.lower() != "sqlite" or not rest.startswith("/") or rest == "/":
        raise TargetError(f"bad target URL '{url}': use sqlite:///PATH (e.g. {DEFAULT_TARGET})")
    return Path(rest[1:])


class _Keys:
    """The key file: 32 bytes for fingerprints, 32 for encryption, mode 0600, beside the tenant.

    A tenant that holds secrets and has lost its key cannot be read: a new key would silently
    turn every stored secret into noise, so it is refused. A tenant that holds no secret yet
    (a new one, or one left by a crash before its first) needs no old key: a missing or empty
    key file there (an empty one is what a crash during an older channelsync's key creation
    left) gets a new key.
    """

    SIZE = 64

    def __init__(self, path: Path, raw: bytes | None) -> None:
        self.path = path
        self.hmac_key = raw[:32] if raw else None
        self._fernet_key = base64.urlsafe_b64encode(raw[32:64]) if raw else None

    @classmethod
    def read(cls, path: Path, *, sealed: bool) -> _Keys:
        """The key in ``path``; no key when there is none and ``sealed`` (secrets stored under
        it) is False."""
        try:
            raw: bytes | None = path.read_bytes()
        except FileNotFoundError:
            raw = None
        if raw is None and sealed:
            raise TargetError(
                f"key file {path} is missing: the tenant's secrets cannot be read or "
                "compared. Restore it from a backup (a new key would make them unreadable)"
            )
        if raw is not None and len(raw) != cls.SIZE and (raw or sealed):
            raise TargetError(
                f"key file {path} is damaged ({len(raw)} bytes, expected {cls.SIZE}); "
                "restore it from a backup"
            )
        return cls(path, raw or None)

    @classmethod
    def create(cls, path: Path, *, replace: bool) -> _Keys:
        """A new key, under ``path`` only once it is complete (never an empty key file)."""
        raw = os.urandom(cls.SIZE)
        try:
            write_atomic(path, raw, mode=PRIVATE, exclusive=not replace)
        except FileExistsError:  # another process made one first: use its key
            return cls.read(path, sealed=True)
        except OSError as exc:
            raise TargetError(f"cannot write key file {path}: {exc.strerror}") from None
        return cls(path, raw)

    def fernet(self) -> Any:
        from cryptography.fernet import Fernet

        if self._fernet_key is None:
            raise TargetError(f"key file {self.path} is missing; secrets cannot be read")
        return Fernet(self._fernet_key)


_F = TypeVar("_F", bound=Callable[..., Any])


def _plain_errors(method: _F) -> _F:
    """SQLite's own failures (corrupt file, disk full, read-only folder) as one-line errors."""

    @functools.wraps(method)
    def wrapper(self: SqliteTarget, *args: Any, **kwargs: Any) -> Any:
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


class SqliteTarget:
    """``sqlite:///PATH``: the embedded default target."""

    @_plain_errors
    def __init__(self, url: str, *, readonly: bool = False, actor: str = "cli") -> None:
        self.url = url
        self.path = path_from_url(url)
        self.readonly = readonly
        self.actor = actor
        self.absent: str | None = None  # why there is no tenant here yet (read-only only)
        self._holder: str | None = None
        self._own_lock: str | None = None  # the holder id of a lock this object took
        self._renewed = 0.0
        self._fernet_cache: Any = None
        self._fingerprints: dict[str, str] = {}  # per process only; never written anywhere
        self._snapshot: tuple[int, ...] | None = None  # the file an unlocked reader reads
        key_file = self.path.with_suffix(".key")
        if not key_file.exists() and self.path.is_file() and self.path.stat().st_size:
            _require_tenant_file(self.path)  # another file at a mistyped path, not a tenant
        self._db = self._connect_readonly() if readonly else self._connect()
        self.keys = _Keys.read(key_file, sealed=self._holds_secrets())
        if self.keys.hmac_key is None and not readonly:
            self.keys = self._new_key(key_file)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def _connect_readonly(self) -> sqlite3.Connection | None:
        """A reader that creates nothing: no tenant, no folder, and none of the -wal and -shm
        files a plain read-only SQLite connection leaves behind (nor fails for, in a read-only
        folder). With no -wal file, or an empty one, every committed change is in the database
        file itself, which is then read without locks (``immutable``); ``_query`` checks that
        no writer changed the file meanwhile (a checkpoint is the only way one changes it).
        With a -wal file that holds changes, SQLite's read-only mode reads it.
        """
        if not self.path.exists() or self.path.stat().st_size == 0:
            _check_folders(self.path)
            self.absent = f"no tenant at {self.path} yet: apply will create it"
            return None
        journal = any(_holds_data(Path(f"{self.path}{end}")) for end in ("-wal", "-journal"))
        self._snapshot = None if journal else _signature(self.path)
        mode = "mode=ro" if journal else "immutable=1"
        uri = f"file:{quote(str(self.path.resolve()))}?{mode}"
        return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30)

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

    def _holds_secrets(self) -> bool:
        return bool(self._query("SELECT 1 FROM resources WHERE secrets IS NOT NULL LIMIT 1"))

    def _new_key(self, path: Path) -> _Keys:
        """A key for a tenant that holds no secret, made under the write lock: two processes
        never each make one, and one that took the lock first and stored a secret wins."""
        with self._transaction():
            keys = _Keys.read(path, sealed=self._holds_secrets())
            if keys.hmac_key is None:
                keys = _Keys.create(path, replace=path.exists())
        return keys

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    # --- reading ---------------------------------------------------------------------

    @_plain_errors
    def read(self) -> dict[Key, LiveResource]:
        rows = self._query("SELECT kind, name, body, etag FROM resources")
        return {
            (kind, name): LiveResource(kind, name, json.loads(body), etag)
            for kind, name, body, etag in rows
        }

    def fingerprint(self, secret: str) -> str:
        if self.keys.hmac_key is None:
            return "(no tenant yet)"  # no secret stored yet: nothing live to compare with
        found = self._fingerprints.get(secret)
        if found is None:
            found = self._fingerprints[secret] = fingerprint(self.keys.hmac_key, secret)
        return found

    @_plain_errors
    def secret_values(self, kind: str, name: str) -> dict[str, str]:
        """The stored secrets of one resource (what the tenant polls and sends with)."""
        assert self._db is not None
        row = self._db.execute(
            "SELECT secrets FROM resources WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
        if row is None or row[0] is None:
            return {}
        values: dict[str, str] = json.loads(self._fernet().decrypt(row[0]))
        return values

    def effective_outgoing(self, resources: dict[Key, LiveResource]) -> str:
        """The tenant's default SMTP server, as the live resources say."""
        return tenant_default_server(r.data for r in resources.values() if r.kind == "SmtpServer")

    # --- writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._db is None or self.readonly:
            raise TargetError("this target was opened read-only")
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @_plain_errors
    def apply(self, operation: Operation) -> None:
        with self._transaction() as db:
            self._renew_lease(db)
            getattr(self, "_" + operation.action)(db, operation)

    def _row(self, db: sqlite3.Connection, kind: str, name: str) -> tuple[str, str] | None:
        row = db.execute(
            "SELECT body, etag FROM resources WHERE kind = ? AND name = ?", (kind, name)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def _expect(self, db: sqlite3.Connection, op: Operation, name: str) -> None:
        row = self._row(db, op.kind, name)
        if row is None:
            raise ConflictError(f"{op.kind} '{name}' no longer exists in the tenant")
        if op.expected_etag is not None and row[1] != op.expected_etag:
            raise ConflictError(f"{op.kind} '{name}' was changed in the tenant since the plan")

    def _create(self, db: sqlite3.Connection, op: Operation) -> None:
        if self._row(db, op.kind, op.name) is not None:
            raise ConflictError(f"{op.kind} '{op.name}' already exists in the tenant")
        self._write(db, op, op.name, insert=True)

    def _update(self, db: sqlite3.Connection, op: Operation) -> None:
        self._expect(db, op, op.name)
        self._write(db, op, op.name, insert=False)

    def _rename(self, db: sqlite3.Connection, op: Operation) -> None:
        old = op.previous_name
        assert old is not None
        self._expect(db, op, old)
        if self._row(db, op.kind, op.name) is not None:
            raise ConflictError(f"cannot rename to '{op.name}': that {op.kind} already exists")
        db.execute(
            "UPDATE resources SET name = ? WHERE kind = ? AND name = ?", (op.name, op.kind, old)
        )
        if kinds.referring_kinds(op.kind):
            self._follow_rename(db, op.kind, old, op.name)
        self._write(db, op, op.name, insert=False)

    def _delete(self, db: sqlite3.Connection, op: Operation) -> None:
        self._expect(db, op, op.name)
        users = self._users_of(db, op.kind, op.name)
        if users:
            raise TargetError(f"{op.kind} '{op.name}' is still used by {', '.join(users[:5])}")
        db.execute("DELETE FROM resources WHERE kind = ? AND name = ?", (op.kind, op.name))
        self._audit(db, op, [])

    def _users_of(self, db: sqlite3.Connection, kind: str, name: str) -> list[str]:
        """The users of a resource, grouped by kind: "channel(s) A, B", "queue(s) Q"."""
        found: dict[str, list[str]] = {}
        for user_kind, user_name, _ in self._referrers(db, kind, name):
            found.setdefault(user_kind, []).append(user_name)
        return [
            f"{kinds.get(k).called}(s) {', '.join(list(dict.fromkeys(n))[:5])}"
            for k, n in found.items()
        ]

    def _referrers(
        self, db: sqlite3.Connection, kind: str, name: str
    ) -> list[tuple[str, str, kinds.Path]]:
        """(kind, name, path) of every stored resource whose reference names this one."""
        users = sorted({k for k, _ in kinds.referring_kinds(kind)})
        if not users:
            return []
        rows = db.execute(
            f"SELECT kind, name, body FROM resources WHERE kind IN ({', '.join('?' * len(users))})",
            tuple(users),
        )
        return kinds.users_of(((k, n, json.loads(b)) for k, n, b in rows), kind, name)

    def _follow_rename(self, db: sqlite3.Connection, kind: str, old: str, new: str) -> None:
        for user_kind, name, path in self._referrers(db, kind, old):
            row = self._row(db, user_kind, name)
            assert row is not None
            body = json.loads(row[0])
            set_path(body, path, new)
            self._store_body(db, user_kind, name, body)

    def _write(self, db: sqlite3.Connection, op: Operation, name: str, *, insert: bool) -> None:
        if op.body is None:
            raise TargetError(f"{op.action} of {op.kind} '{name}' carries no body")
        if name == kinds.get(op.kind).builtin:
            raise TargetError(f"'{name}' is built in and cannot be changed")
        body = json.loads(json.dumps(op.body))
        body["name"] = name
        self._check_rules(db, op.kind, name, body)
        secrets: dict[str, str] = {}
        for path in secret_paths(op.kind):
            value = get_path(body, path)
            if value is not None:
                secrets[".".join(path)] = value
                set_path(body, path, self.fingerprint(value))
        sealed = self._fernet().encrypt(json.dumps(secrets).encode()) if secrets else None
        email = body.get("email", "").lower() if op.kind == "EmailChannel" else None
        if op.kind == "SmtpServer" and body.get("default"):
            self._clear_other_defaults(db, name)
        text, etag = _serialise(body)
        if insert:
            db.execute(
                "INSERT INTO resources (kind, name, body, secrets, etag, email, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (op.kind, name, text, sealed, etag, email, time.time()),
            )
        else:
            db.execute(
                "UPDATE resources SET body = ?, secrets = ?, etag = ?, email = ?, updated_at = ?"
                " WHERE kind = ? AND name = ?",
                (text, sealed, etag, email, time.time(), op.kind, name),
            )
        self._audit(db, op, sorted(body))

    def _store_body(
        self, db: sqlite3.Connection, kind: str, name: str, body: dict[str, Any]
    ) -> None:
        text, etag = _serialise(body)
        db.execute(
            "UPDATE resources SET body = ?, etag = ?, updated_at = ? WHERE kind = ? AND name = ?",
            (text, etag, time.time(), kind, name),
        )

    def _clear_other_defaults(self, db: sqlite3.Connection, name: str) -> None:
        rows = db.execute(
            "SELECT name, body FROM resources WHERE kind = 'SmtpServer' AND name != ?", (name,)
        ).fetchall()
        for other, text in rows:
            body = json.loads(text)
            if body.get("default"):
                body["default"] = False
                self._store_body(db, "SmtpServer", other, body)

    def _check_rules(
        self, db: sqlite3.Connection, kind: str, name: str, body: dict[str, Any]
    ) -> None:
        if kind == "EmailChannel":
            body.setdefault("script", DEFAULT_EMAIL_SCRIPT)
        for _, target, value in kinds.references_of(kind, body):
            referred = kinds.get(target)
            if value != referred.builtin and self._row(db, target, value) is None:
                raise TargetError(
                    f"{kinds.get(kind).called} '{name}': {referred.console.noun} '{value}'"
                    " does not exist"
                )
        if kind != "EmailChannel":
            return
        outgoing = body.get("outgoing")
        if outgoing is not None:
            server = outgoing.get("server")
            if server == BUILTIN_SMTP_SERVER and outgoing.get("override"):
                raise TargetError(f"channel '{name}': '{BUILTIN_SMTP_SERVER}' cannot be overridden")
        clash = db.execute(
            "SELECT name FROM resources WHERE email = ? AND name != ?",
            (body.get("email", "").lower(), name),
        ).fetchone()
        if clash is not None:
            raise TargetError(
                f"channel '{name}': email {body.get('email')} is used by '{clash[0]}'"
            )

    def _audit(self, db: sqlite3.Connection, op: Operation, fields: list[str]) -> None:
        """Hook: the audit entry of one operation (a served store records changed paths)."""
        self._record(db, op.kind, op.name, op.action, fields)

    def _record(
        self, db: sqlite3.Connection, kind: str, name: str, action: str, fields: list[str]
    ) -> None:
        """Hook: write one audit entry, inside the transaction of the change it describes."""
        db.execute(
            "INSERT INTO audit (at, actor, kind, name, action, fields) VALUES (?, ?, ?, ?, ?, ?)",
            (time.time(), self.actor, kind, name, action, json.dumps(fields)),
        )

    def _fernet(self) -> Any:
        if self._fernet_cache is None:
            self._fernet_cache = self.keys.fernet()
        return self._fernet_cache

    # --- the apply lock --------------------------------------------------------------

    def _renew_lease(self, db: sqlite3.Connection) -> None:
        if self._holder is not None:
            now = time.monotonic()
            if self._holder == self._own_lock and now - self._renewed < LOCK_LEASE_SECONDS / 4:
                return  # our own lock, renewed moments ago: one statement less per change
            self._renewed = now
            updated = db.execute(
                "UPDATE apply_lock SET expires = ? WHERE holder = ?",
                (time.time() + LOCK_LEASE_SECONDS, self._holder),
            ).rowcount
            if not updated:
                raise TargetError("lost the apply lock (its lease expired); run apply again")

    @contextlib.contextmanager
    def lock(self, info: LockInfo, timeout: float) -> Iterator[None]:
        deadline = time.monotonic() + timeout
        while True:
            holder = self._try_lock(info)
            if holder is None:
                break
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"the target is locked by another apply ({holder.describe()}); "
                    f"waited {timeout:g} s. Try again later, or raise --lock-timeout"
                )
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        self._holder = self._own_lock = info.holder
        self._renewed = time.monotonic()
        heartbeat = _Heartbeat(self.path, info.holder)
        heartbeat.start()
        try:
            yield
        finally:
            heartbeat.stop()
            self._holder = self._own_lock = None
            with contextlib.suppress(sqlite3.Error), self._transaction() as db:
                db.execute("DELETE FROM apply_lock WHERE holder = ?", (info.holder,))

    @_plain_errors
    def _try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the lock and return None, or return the live holder's details."""
        with self._transaction() as db:
            row = db.execute("SELECT holder, host, pid, since, expires FROM apply_lock").fetchone()
            if row is not None:
                current = LockInfo(row[0], row[1], int(row[2]), row[3])
                if not _abandoned(current, float(row[4])):
                    return current
            db.execute(
                "INSERT OR REPLACE INTO apply_lock (id, holder, host, pid, since, expires)"
                " VALUES (1, ?, ?, ?, ?, ?)",
                (info.holder, info.host, info.pid, info.since, time.time() + LOCK_LEASE_SECONDS),
            )
        return None

    # --- for a store served over the REST API ---------------------------------------

    @property
    def connection(self) -> sqlite3.Connection:
        """The open connection, for read queries a subclass composes itself."""
        if self._db is None:
            raise TargetError(f"tenant database {self.path} is not open")
        return self._db

    def row(self, kind: str, name: str) -> tuple[str, str] | None:
        """The stored body text and ETag of one resource, or None."""
        return None if self._db is None else self._row(self._db, kind, name)

    @contextlib.contextmanager
    def renewing_lease(self, holder: str | None) -> Iterator[None]:
        """Writes in this block renew the lease of a lock taken elsewhere (by a server's client)
        and fail once it is lost; None: writes outside any lock."""
        previous, self._holder = self._holder, holder
        try:
            yield
        finally:
            self._holder = previous

    def try_lock(self, info: LockInfo) -> LockInfo | None:
        """Take the apply lock for ``info`` and return None, or return the live holder."""
        return self._try_lock(info)

    def release(self, holder: str) -> bool:
        """Release the apply lock if ``holder`` holds it; False when it does not."""
        with self._transaction() as db:
            gone = db.execute("DELETE FROM apply_lock WHERE holder = ?", (holder,)).rowcount
        return bool(gone)

    def set_default(self, name: str) -> bool:
        """Make SmtpServer ``name`` the tenant's default (for the built-in: mark none), in one
        audited transaction; False, changing nothing, when there is no such server."""
        try:
            with self._transaction() as db:
                self._renew_lease(db)
                if name != BUILTIN_SMTP_SERVER:
                    found = self._row(db, "SmtpServer", name)
                    if found is None:
                        raise _NoSuchServer
                    server = json.loads(found[0])
                    server["default"] = True
                    self._store_body(db, "SmtpServer", name, server)
                self._clear_other_defaults(db, name)
                self._record(db, "SmtpServer", name, "set-default", ["default"])
        except _NoSuchServer:
            return False
        return True


class _NoSuchServer(Exception):
    """Rolls back ``set_default`` for a server that does not exist."""


def _serialise(body: dict[str, Any]) -> tuple[str, str]:
    """The stored text of a body and its ETag (a hash of exactly that text)."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return text, hashlib.sha256(text.encode()).hexdigest()[:20]


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


def _abandoned(holder: LockInfo, expires: float) -> bool:
    """A lock whose lease ran out (its holder stopped renewing it), or whose process on this
    host is gone (a killed apply: no need to wait for the lease)."""
    if expires < time.time():
        return True
    if holder.host != socket.gethostname():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class _Heartbeat(threading.Thread):
    """Renews the lease while the lock is held, whatever the holder is busy with (waiting
    for a confirmation, running connection tests), on a connection of its own."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(name="channelsync-lock-heartbeat", daemon=True)
        self._path = path
        self._holder = holder
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(LOCK_LEASE_SECONDS / 4):
            with contextlib.suppress(sqlite3.Error):
                db = sqlite3.connect(self._path, timeout=10)
                try:
                    with db:
                        db.execute(
                            "UPDATE apply_lock SET expires = ? WHERE holder = ?",
                            (time.time() + LOCK_LEASE_SECONDS, self._holder),
                        )
                finally:
                    db.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=5)
