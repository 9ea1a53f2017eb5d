"""The PostgreSQL store: one database that many `channelsync serve` replicas share.

The tenant's rules, secret sealing and apply lock are the shared pieces of
``channelsync.tenant``; this module is the repository they run over (``PostgresRepository``,
bound to one tenant), the store that holds the tenants (``PostgresStore``: a psycopg 3
connection pool and the versioned schema) and its tenant list (``PostgresTenants``).

Writers of one tenant serialise on that tenant's row (``SELECT ... FOR UPDATE`` as the first
statement of every write transaction), as SQLite's IMMEDIATE transactions do on the file:
the If-Match check, the rules' reads, the write and its audit entry are one transaction
that no other replica interleaves with. The apply lock is a row with a lease, taken and
renewed by conditional updates inside such short transactions; nothing holds a session
lock (advisory locks break behind PgBouncer in transaction mode), so a replica that dies
leaves nothing behind but a lease that runs out.

A URL's password never appears in a message: errors name the store as ``redact(url)``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from channelsync.defaults import DEFAULT_TENANT
from channelsync.targets.base import LockInfo, TargetError
from channelsync.tenant.repository import Row, Stored, cannot_remove, check_tenant_name, serialise
from channelsync.tenant.rules import AuditFields, Tenant, stored_fields
from channelsync.tenant.sealing import Keys, Sealer, tenant_keys

if TYPE_CHECKING:
    from psycopg import Connection
    from psycopg_pool import ConnectionPool

SCHEMES = ("postgresql", "postgres")
CONNECT_SECONDS = 10
# The tables of tenant data, each led by its tenant column (what removing a tenant clears).
TENANT_TABLES = ("resources", "apply_lock", "audit", "http_writes")

# Migration N (1-based) takes the schema from version N-1 to N. Never edit a released one:
# add the next. A server refuses a database whose version is above len(MIGRATIONS).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tenants (
        name TEXT COLLATE "C" PRIMARY KEY,
        data_key BYTEA,
        created DOUBLE PRECISION NOT NULL
    );
    INSERT INTO tenants (name, created) VALUES ('default', extract(epoch FROM now()));
    CREATE TABLE resources (
        tenant TEXT COLLATE "C" NOT NULL,
        kind TEXT COLLATE "C" NOT NULL,
        name TEXT COLLATE "C" NOT NULL,
        body TEXT NOT NULL,
        secrets BYTEA,
        etag TEXT NOT NULL,
        email TEXT COLLATE "C",
        updated_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant, kind, name)
    );
    -- a unique value (a channel's or an agent's address) is unique within its kind and tenant
    CREATE UNIQUE INDEX unique_value ON resources (tenant, kind, email) WHERE email IS NOT NULL;
    CREATE TABLE apply_lock (
        tenant TEXT COLLATE "C" PRIMARY KEY,
        holder TEXT NOT NULL,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        since TEXT NOT NULL,
        expires DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE audit (
        tenant TEXT COLLATE "C" NOT NULL,
        id BIGSERIAL,
        at DOUBLE PRECISION NOT NULL,
        actor TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        action TEXT NOT NULL,
        fields TEXT NOT NULL,
        PRIMARY KEY (tenant, id)
    );
    CREATE TABLE http_writes (
        tenant TEXT COLLATE "C" NOT NULL,
        key TEXT COLLATE "C" NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        action TEXT NOT NULL,
        request TEXT,
        PRIMARY KEY (tenant, key)
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied DOUBLE PRECISION NOT NULL
)
"""


class SchemaError(TargetError):
    """The database's schema is missing, older or newer than this channelsync's."""


def is_postgres_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() in SCHEMES and "://" in url


def redact(url: str) -> str:
    """``url`` fit to show: the password (if any) replaced by ``***``, the rest kept."""
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, path = rest.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if not at:
        return url
    user, colon, _password = userinfo.partition(":")
    shown_user = f"{user}:***" if colon else user
    return f"{head}://{shown_user}@{host}{slash}{path}"


def _password(url: str) -> str | None:
    try:
        raw = urlsplit(url).password
    except ValueError:
        return None
    return unquote(raw) if raw else None


@dataclass
class _Open:
    """A thread's open transaction: its pooled connection and the tenants whose rows it
    holds."""

    conn: Connection[Any]
    tenants: set[str] = field(default_factory=set)


class PostgresStore:
    """One PostgreSQL database holding many tenants, through one connection pool.

    With ``key_file`` (a server's store), the schema is checked and the master key read (or
    made, while no tenant holds a secret): every tenant's data key is sealed by it. Without
    one (``serve --migrate``), only the schema can be read and migrated.
    """

    def __init__(self, url: str, *, key_file: Path | None = None, pool_size: int = 8) -> None:
        if not is_postgres_url(url):
            raise TargetError(f"bad store URL '{redact(url)}': use postgresql://USER@HOST/DB")
        self.url = url
        self.shown = redact(url)
        self.path = self.shown  # how messages name where the tenants live
        self.readonly = False
        self.absent: str | None = None
        self._secret = _password(url)
        self._local = threading.local()
        self._repositories: dict[str, PostgresRepository] = {}
        self._probe()  # the real reason a server is unreachable, before the pool hides it
        from psycopg_pool import ConnectionPool

        self.pool: ConnectionPool[Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_SECONDS},
            open=False,
            name="channelsync",
            timeout=30,
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_SECONDS)
        except Exception as exc:
            self.pool.close()
            raise self.error(exc) from None
        self.tenants = PostgresTenants(self)
        if key_file is None:
            return
        try:
            self.check_schema()
            self.master = Keys.open(key_file, self.tenants, readonly=False)
            self._check_key(key_file)
        except BaseException:
            self.pool.close()
            raise

    def _probe(self) -> None:
        import psycopg

        try:
            psycopg.connect(self.url, connect_timeout=CONNECT_SECONDS).close()
        except psycopg.Error as exc:
            raise self.error(exc) from None

    def error(self, exc: BaseException) -> TargetError:
        """A driver error as one line naming the store, never its password."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        if self._secret:
            text = text.replace(self._secret, "***")
        return TargetError(f"PostgreSQL store {self.shown}: {text}")

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        import psycopg

        try:
            with self.pool.connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise self.error(exc) from None

    def close(self) -> None:
        self.pool.close()

    # --- statements, on the thread's open transaction or a borrowed connection ---------

    def _open(self) -> _Open | None:
        found: _Open | None = getattr(self._local, "open", None)
        return found

    def in_transaction(self) -> bool:
        return self._open() is not None

    @contextlib.contextmanager
    def transaction(self, tenant: str) -> Iterator[None]:
        """One transaction holding ``tenant``'s row (writers of a tenant serialise on it); a
        block inside another, on the same thread, is a savepoint of it."""
        import psycopg

        found = self._open()
        if found is not None:
            try:
                with found.conn.transaction():
                    if tenant not in found.tenants:
                        self._hold(found, tenant)
                    yield
            except psycopg.Error as exc:
                raise self.error(exc) from None
            return
        with self.connection() as conn, conn.transaction():
            opened = _Open(conn)
            self._hold(opened, tenant)
            self._local.open = opened
            try:
                yield
            finally:
                self._local.open = None

    def _hold(self, opened: _Open, tenant: str) -> None:
        row = opened.conn.execute(
            "SELECT 1 FROM tenants WHERE name = %s FOR UPDATE", (tenant,)
        ).fetchone()
        if row is None:
            raise TargetError(f"no tenant '{tenant}' in {self.shown}")
        opened.tenants.add(tenant)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        import psycopg

        found = self._open()
        try:
            if found is not None:
                return found.conn.execute(sql.encode(), params).fetchall()
            with self.pool.connection() as borrowed:
                return borrowed.execute(sql.encode(), params).fetchall()
        except psycopg.Error as exc:
            raise self.error(exc) from None

    def write(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        import psycopg

        found = self._open()
        if found is None:
            raise TargetError("a write outside a transaction")
        try:
            return found.conn.execute(sql.encode(), params).rowcount
        except psycopg.Error as exc:
            raise self.error(exc) from None

    # --- tenants, their repositories and keys -----------------------------------------

    def repository(self, tenant: str = DEFAULT_TENANT) -> PostgresRepository:
        found = self._repositories.get(tenant)
        if found is None:
            found = self._repositories.setdefault(tenant, PostgresRepository(self, tenant=tenant))
        return found

    def keys(self, tenant: str) -> Keys:
        """The keys tenant ``tenant`` seals with (KeyError: no such tenant)."""
        return tenant_keys(self.master, self.tenants.data_key(tenant), tenant)

    def tenant(self, name: str, *, audit_fields: AuditFields = stored_fields) -> Tenant:
        """The rules of tenant ``name`` over its repository, with its keys."""
        keys = self.keys(name)
        return Tenant(self.repository(name), Sealer(keys), audit_fields=audit_fields)

    def _check_key(self, key_file: Path) -> None:
        """A key file that does not open what is stored (another replica's, or a new one made
        where the real one was not copied) is refused before it seals anything."""
        from cryptography.fernet import InvalidToken

        rows = self.query(
            "SELECT data_key FROM tenants WHERE data_key IS NOT NULL LIMIT 1"
        ) or self.query(
            "SELECT r.secrets FROM resources r JOIN tenants t ON t.name = r.tenant"
            " WHERE t.data_key IS NULL AND r.secrets IS NOT NULL LIMIT 1"
        )
        if not rows:
            return
        try:
            self.master.fernet().decrypt(bytes(rows[0][0]))
        except InvalidToken:
            raise TargetError(
                f"key file {key_file} does not open the secrets stored in {self.shown}: "
                "every replica needs a copy of the same key file (restore the right one)"
            ) from None

    # --- the schema -------------------------------------------------------------------

    def version(self) -> int:
        """The schema version of the database (0: no channelsync schema yet)."""
        import psycopg

        with self.connection() as conn:
            try:
                row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
        return int(row[0] or 0) if row else 0

    def migrate(self) -> list[int]:
        """Apply the migrations the database lacks, in one transaction; the versions applied.
        Replicas that start together serialise on the version table's lock."""
        import psycopg

        with self.connection() as conn:
            # a replica that starts at the same moment may create it first
            with contextlib.suppress(
                psycopg.errors.UniqueViolation,
                psycopg.errors.DuplicateTable,
                psycopg.errors.DuplicateObject,  # its row type, made by the other one
            ):
                conn.execute(_VERSIONS)
            with conn.transaction():
                conn.execute("LOCK TABLE schema_version IN EXCLUSIVE MODE")
                row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
                found = row.fetchone()
                current = int(found[0]) if found else 0
                self._refuse_newer(current)
                applied = []
                for version in range(current + 1, SCHEMA_VERSION + 1):
                    conn.execute(MIGRATIONS[version - 1].encode())
                    conn.execute(
                        "INSERT INTO schema_version (version, applied) VALUES (%s, %s)",
                        (version, time.time()),
                    )
                    applied.append(version)
        return applied

    def check_schema(self) -> None:
        """Refuse a database this channelsync cannot serve: no schema, an older one (run
        --migrate), or a newer one (another release migrated it)."""
        current = self.version()
        self._refuse_newer(current)
        if current < SCHEMA_VERSION:
            state = (
                "has no channelsync schema yet"
                if current == 0
                else f"has schema version {current}, older than this channelsync's "
                f"({SCHEMA_VERSION})"
            )
            raise SchemaError(
                f"the store {self.shown} {state}: run 'channelsync serve --store URL "
                "--migrate' first, or start with --migrate-on-start"
            )

    def _refuse_newer(self, current: int) -> None:
        if current > SCHEMA_VERSION:
            raise SchemaError(
                f"the store {self.shown} has schema version {current}, newer than this "
                f"channelsync knows ({SCHEMA_VERSION}): refusing to run; upgrade channelsync "
                "(every replica to the same release)"
            )


class PostgresTenants:
    """The store's tenants (the ``Tenants`` protocol of ``tenant/repository.py``)."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """What the master key is made under: the tenant "default"'s row."""
        return self._store.transaction(DEFAULT_TENANT)

    def names(self) -> list[str]:
        return [str(r[0]) for r in self._store.query("SELECT name FROM tenants ORDER BY name")]

    def add(self, name: str, data_key: bytes | None) -> None:
        check_tenant_name(name)
        with self._store.connection() as conn:
            added = conn.execute(
                "INSERT INTO tenants (name, data_key, created) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO NOTHING",
                (name, data_key, time.time()),
            ).rowcount
        if not added:
            raise TargetError(f"tenant '{name}' already exists in {self._store.shown}")

    def remove(self, name: str) -> None:
        cannot_remove(name)
        with self._store.transaction(name):  # no such tenant: "no tenant NAME in STORE"
            for table in TENANT_TABLES:
                self._store.write(f"DELETE FROM {table} WHERE tenant = %s", (name,))
            self._store.write("DELETE FROM tenants WHERE name = %s", (name,))
        self._store._repositories.pop(name, None)

    def data_key(self, name: str) -> bytes | None:
        rows = self._store.query("SELECT data_key FROM tenants WHERE name = %s", (name,))
        if not rows:
            raise KeyError(name)
        return bytes(rows[0][0]) if rows[0][0] is not None else None

    def set_data_key(self, name: str, data_key: bytes) -> None:
        with self._store.transaction(name):
            sql = "UPDATE tenants SET data_key = %s WHERE name = %s"
            if not self._store.write(sql, (data_key, name)):
                raise KeyError(name)

    def holds_secrets(self) -> bool:
        """Whether anything in the store is sealed by the master key (a secret, or a data
        key)."""
        return bool(
            self._store.query(
                "SELECT 1 FROM resources WHERE secrets IS NOT NULL"
                " UNION ALL SELECT 1 FROM tenants WHERE data_key IS NOT NULL LIMIT 1"
            )
        )


class PostgresRepository:
    """The ``Repository`` of one tenant in a PostgreSQL store.

    Safe to share between threads: each thread's open transaction is its own (one pooled
    connection per outermost transaction, kept by the store); a read outside a transaction
    borrows a pooled connection for that one statement.
    """

    readonly = False
    absent: str | None = None

    def __init__(self, store: PostgresStore, *, tenant: str = DEFAULT_TENANT) -> None:
        self.store = store
        self.tenant = tenant
        self.path = store.shown  # how messages name where the tenant lives

    def close(self) -> None:
        """The pool belongs to the store (``PostgresStore.close``)."""

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """One transaction holding the tenant's row; a block inside another is a savepoint."""
        return self.store.transaction(self.tenant)

    def lost_transaction(self) -> bool:
        """Never: a failure inside a savepoint rolls back that savepoint alone."""
        return False

    def _query(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        return self.store.query(sql, params)

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        return self.store.write(sql, params)

    # --- resources --------------------------------------------------------------------

    def all(self) -> list[Stored]:
        rows = self._query(
            "SELECT kind, name, body, etag FROM resources WHERE tenant = %s", (self.tenant,)
        )
        return [Stored(k, n, json.loads(body), etag) for k, n, body, etag in rows]

    def get(self, kind: str, name: str) -> Stored | None:
        rows = self._query(
            "SELECT body, etag FROM resources WHERE tenant = %s AND kind = %s AND name = %s",
            (self.tenant, kind, name),
        )
        return Stored(kind, name, json.loads(rows[0][0]), rows[0][1]) if rows else None

    def exists(self, kind: str, name: str) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM resources WHERE tenant = %s AND kind = %s AND name = %s",
                (self.tenant, kind, name),
            )
        )

    def of_kind(self, kind: str) -> list[Stored]:
        rows = self._query(
            "SELECT name, body, etag FROM resources WHERE tenant = %s AND kind = %s",
            (self.tenant, kind),
        )
        return [Stored(kind, name, json.loads(body), etag) for name, body, etag in rows]

    def unique_holder(self, kind: str, unique: str, name: str) -> str | None:
        rows = self._query(
            "SELECT name FROM resources WHERE tenant = %s AND kind = %s AND email = %s"
            " AND name != %s",
            (self.tenant, kind, unique, name),
        )
        return str(rows[0][0]) if rows else None

    def insert(self, row: Row) -> None:
        text, etag = serialise(row.body)
        self._write(
            "INSERT INTO resources (tenant, kind, name, body, secrets, etag, email, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (self.tenant, row.kind, row.name, text, row.sealed, etag, row.unique, time.time()),
        )

    def update(self, row: Row) -> None:
        text, etag = serialise(row.body)
        self._write(
            "UPDATE resources SET body = %s, secrets = %s, etag = %s, email = %s,"
            " updated_at = %s WHERE tenant = %s AND kind = %s AND name = %s",
            (text, row.sealed, etag, row.unique, time.time(), self.tenant, row.kind, row.name),
        )

    def update_body(self, kind: str, name: str, body: dict[str, Any]) -> None:
        text, etag = serialise(body)
        self._write(
            "UPDATE resources SET body = %s, etag = %s, updated_at = %s"
            " WHERE tenant = %s AND kind = %s AND name = %s",
            (text, etag, time.time(), self.tenant, kind, name),
        )

    def rename(self, kind: str, old: str, new: str) -> None:
        self._write(
            "UPDATE resources SET name = %s WHERE tenant = %s AND kind = %s AND name = %s",
            (new, self.tenant, kind, old),
        )

    def delete(self, kind: str, name: str) -> None:
        self._write(
            "DELETE FROM resources WHERE tenant = %s AND kind = %s AND name = %s",
            (self.tenant, kind, name),
        )

    def sealed(self, kind: str, name: str) -> bytes | None:
        rows = self._query(
            "SELECT secrets FROM resources WHERE tenant = %s AND kind = %s AND name = %s",
            (self.tenant, kind, name),
        )
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def holds_secrets(self) -> bool:
        return bool(
            self._query(
                "SELECT 1 FROM resources WHERE tenant = %s AND secrets IS NOT NULL LIMIT 1",
                (self.tenant,),
            )
        )

    def audit(self, actor: str, kind: str, name: str, action: str, fields: list[str]) -> None:
        self._write(
            "INSERT INTO audit (tenant, at, actor, kind, name, action, fields)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self.tenant, time.time(), actor, kind, name, action, json.dumps(fields)),
        )

    # --- the apply lock ---------------------------------------------------------------

    def lock_row(self) -> tuple[LockInfo, float] | None:
        lock = " FOR UPDATE" if self.store.in_transaction() else ""
        rows = self._query(
            "SELECT holder, host, pid, since, expires FROM apply_lock WHERE tenant = %s" + lock,
            (self.tenant,),
        )
        if not rows:
            return None
        holder, host, pid, since, expires = rows[0]
        return LockInfo(holder, host, int(pid), since), float(expires)

    def put_lock(self, info: LockInfo, expires: float) -> None:
        self._write(
            "INSERT INTO apply_lock (tenant, holder, host, pid, since, expires)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (tenant) DO UPDATE SET"
            " holder = excluded.holder, host = excluded.host, pid = excluded.pid,"
            " since = excluded.since, expires = excluded.expires",
            (self.tenant, info.holder, info.host, info.pid, info.since, expires),
        )

    def renew_lock(self, holder: str, expires: float) -> bool:
        return bool(
            self._write(
                "UPDATE apply_lock SET expires = %s WHERE tenant = %s AND holder = %s",
                (expires, self.tenant, holder),
            )
        )

    def drop_lock(self, holder: str) -> bool:
        return bool(
            self._write(
                "DELETE FROM apply_lock WHERE tenant = %s AND holder = %s", (self.tenant, holder)
            )
        )

    # --- what the server reads and records --------------------------------------------

    def resources_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` (kind, name, body, etag) rows after (kind, name), in that order."""
        return self._query(
            "SELECT kind, name, body, etag FROM resources WHERE tenant = %s"
            " AND (kind, name) > (%s, %s) ORDER BY kind, name LIMIT %s",
            (self.tenant, kind, name, limit),
        )

    def kind_after(self, kind: str, name: str, limit: int) -> list[tuple[str, str, str, str]]:
        """Up to ``limit`` rows of one kind with names after ``name``, ordered by name."""
        return self._query(
            "SELECT kind, name, body, etag FROM resources WHERE tenant = %s AND kind = %s"
            " AND name > %s ORDER BY name LIMIT %s",
            (self.tenant, kind, name, limit),
        )

    def counts(self) -> dict[str, int]:
        """How many resources of each kind the tenant holds."""
        rows = self._query(
            "SELECT kind, count(*) FROM resources WHERE tenant = %s GROUP BY kind", (self.tenant,)
        )
        return {kind: int(n) for kind, n in rows}

    def audit_after(self, entry_id: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` audit rows (id, at, actor, kind, name, action, fields) after an id."""
        return self._query(
            "SELECT id, at, actor, kind, name, action, fields FROM audit WHERE tenant = %s"
            " AND id > %s ORDER BY id LIMIT %s",
            (self.tenant, entry_id, limit),
        )

    def audit_of(self, kind: str, name: str, limit: int) -> list[tuple[Any, ...]]:
        """The newest ``limit`` audit rows (at, actor, action, fields) of one resource."""
        return self._query(
            "SELECT at, actor, action, fields FROM audit WHERE tenant = %s AND kind = %s"
            " AND name = %s ORDER BY id DESC LIMIT %s",
            (self.tenant, kind, name, limit),
        )

    def record_write(
        self, key: str, kind: str, name: str, action: str, request: str | None
    ) -> None:
        """The outcome of the write sent with Idempotency-Key ``key`` and the digest of its
        ``request`` (the first one stays)."""
        self._write(
            "INSERT INTO http_writes (tenant, key, at, kind, name, action, request)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (self.tenant, key, time.time(), kind, name, action, request),
        )

    def write_of(self, key: str) -> tuple[str, str, str, str | None] | None:
        """(kind, name, action, request digest) of the write recorded under ``key``, or None."""
        rows = self._query(
            "SELECT kind, name, action, request FROM http_writes WHERE tenant = %s AND key = %s",
            (self.tenant, key),
        )
        return (rows[0][0], rows[0][1], rows[0][2], rows[0][3]) if rows else None
