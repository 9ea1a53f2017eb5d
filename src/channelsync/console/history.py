"""Check history: what the console reads (and its Test button writes), behind one small seam.

The monitor records its scheduled results through the same ``History`` interface, so the
console shows both without knowing who ran a check. ``SqliteHistory`` keeps them in the
served tenant's own database file (table ``check_results``), bounded per check.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from channelsync.probe.check import Result

KEEP_PER_CHECK = 1000  # results kept per (tenant, kind, name, check); older ones are dropped


@dataclass(frozen=True)
class CheckResult:
    """One recorded check: what the console shows of a ``probe.check.Result``."""

    tenant: str
    kind: str
    name: str
    check: str  # incoming | outgoing
    at: float  # epoch seconds
    ok: bool
    elapsed_ms: int
    endpoint: str  # protocol://host:port
    code: str | None = None  # the diagnosis code when it failed
    message: str = ""
    hint: str = ""
    warnings: tuple[str, ...] = ()
    by: str = ""  # who ran it: "console:<token name>", "monitor", ...

    @classmethod
    def of(cls, tenant: str, result: Result, *, by: str, at: float | None = None) -> CheckResult:
        error = result.error
        return cls(
            tenant=tenant,
            kind=result.kind,
            name=result.name,
            check=result.check,
            at=time.time() if at is None else at,
            ok=result.ok,
            elapsed_ms=result.elapsed_ms,
            endpoint=result.endpoint,
            code=error.code if error else None,
            message=error.message if error else "",
            hint=error.hint if error else "",
            warnings=tuple(result.warnings),
            by=by,
        )


class History(Protocol):
    """Where check results are kept; the console reads, the Test button and the monitor write.

    Called on the store's database thread (``Context.db``)."""

    def record(self, results: Sequence[CheckResult]) -> None: ...

    def recent(self, tenant: str, kind: str, name: str, limit: int) -> list[CheckResult]:
        """The newest ``limit`` results of one resource, newest first."""
        ...

    def latest(self, tenant: str, kind: str) -> dict[str, list[CheckResult]]:
        """Per resource name, the newest result of each of its checks."""
        ...


NEEDS_SQLITE = "Check history and drift reports need the SQLite store for now."


class NoHistory:
    """The history of a store that keeps none (PostgreSQL, for now): nothing is kept, and the
    console says ``NEEDS_SQLITE`` where results would be shown."""

    def record(self, results: Sequence[CheckResult]) -> None:
        """Nothing is kept."""

    def recent(self, tenant: str, kind: str, name: str, limit: int) -> list[CheckResult]:
        return []

    def latest(self, tenant: str, kind: str) -> dict[str, list[CheckResult]]:
        return {}


_SCHEMA = """
CREATE TABLE IF NOT EXISTS check_results (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, kind TEXT NOT NULL,
    name TEXT NOT NULL, "check" TEXT NOT NULL, at REAL NOT NULL, ok INTEGER NOT NULL,
    elapsed_ms INTEGER NOT NULL, endpoint TEXT NOT NULL, code TEXT, message TEXT NOT NULL,
    hint TEXT NOT NULL, warnings TEXT NOT NULL, by TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS check_results_by_resource
    ON check_results (tenant, kind, name, "check", id);
"""
_COLUMNS = (
    'tenant, kind, name, "check", at, ok, elapsed_ms, endpoint, code, message, hint, warnings, by'
)
_ONE_CHECK = 'tenant = ? AND kind = ? AND name = ? AND "check" = ?'
_SEPARATOR = "\x1f"  # warnings are one line each; the unit separator never appears in them


class SqliteHistory:
    """``History`` in a table of the tenant's SQLite file."""

    def __init__(self, connection: sqlite3.Connection, keep: int = KEEP_PER_CHECK) -> None:
        self.connection = connection
        self.keep = keep
        connection.executescript(_SCHEMA)

    def record(self, results: Sequence[CheckResult]) -> None:
        db = self.connection
        db.execute("BEGIN IMMEDIATE")
        try:
            for r in results:
                db.execute(
                    f"INSERT INTO check_results ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        r.tenant,
                        r.kind,
                        r.name,
                        r.check,
                        r.at,
                        int(r.ok),
                        r.elapsed_ms,
                        r.endpoint,
                        r.code,
                        r.message,
                        r.hint,
                        _SEPARATOR.join(r.warnings),
                        r.by,
                    ),
                )
                db.execute(
                    f"DELETE FROM check_results WHERE {_ONE_CHECK} AND id <= (SELECT id FROM"
                    f" check_results WHERE {_ONE_CHECK} ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (*(r.tenant, r.kind, r.name, r.check) * 2, self.keep),
                )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def recent(self, tenant: str, kind: str, name: str, limit: int) -> list[CheckResult]:
        rows = self.connection.execute(
            f"SELECT {_COLUMNS} FROM check_results WHERE tenant = ? AND kind = ? AND name = ?"
            " ORDER BY id DESC LIMIT ?",
            (tenant, kind, name, limit),
        ).fetchall()
        return [_result(row) for row in rows]

    def latest(self, tenant: str, kind: str) -> dict[str, list[CheckResult]]:
        rows = self.connection.execute(
            f"SELECT {_COLUMNS} FROM check_results WHERE id IN (SELECT MAX(id) FROM check_results"
            ' WHERE tenant = ? AND kind = ? GROUP BY name, "check") ORDER BY name, "check"',
            (tenant, kind),
        ).fetchall()
        found: dict[str, list[CheckResult]] = {}
        for row in rows:
            result = _result(row)
            found.setdefault(result.name, []).append(result)
        return found


def _result(row: tuple[object, ...]) -> CheckResult:
    tenant, kind, name, check, at, ok, elapsed, endpoint, code, message, hint, warnings, by = row
    return CheckResult(
        tenant=str(tenant),
        kind=str(kind),
        name=str(name),
        check=str(check),
        at=float(str(at)),
        ok=bool(ok),
        elapsed_ms=int(str(elapsed)),
        endpoint=str(endpoint),
        code=None if code is None else str(code),
        message=str(message),
        hint=str(hint),
        warnings=tuple(str(warnings).split(_SEPARATOR)) if warnings else (),
        by=str(by),
    )
