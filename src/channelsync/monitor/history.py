"""The one check history of a store: the schedule each replica claims checks from, the last
results of every check (the monitor's, and the console's Test connection presses), and the
alerts already sent.

Plain SQL (no SQLite-only statements but ``?`` placeholders and ``INTEGER PRIMARY KEY``), so
that the PostgreSQL store can run the same statements with ``%s`` and an identity column.
Replicas share the work through ``monitor_checks``: a check is run by the replica whose
conditional UPDATE moved its ``due`` time forward (one short transaction, no advisory lock),
so each check runs once per interval however many replicas serve the store.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from channelsync.probe.check import Result

KEEP_RESULTS = 1000  # per check
# characters of a diagnosis kept: imaplib takes a reply line of up to 1 MB, and a result is
# kept a thousand times per check and shown fifty times on a page
MAX_KEPT_TEXT = 2000
BUTTON = "console:"  # the worker of a result from the console's Test connection button
SCHEMA = """
CREATE TABLE IF NOT EXISTS monitor_checks (
    tenant TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, check_name TEXT NOT NULL,
    due REAL NOT NULL, claimed_by TEXT, claimed_until REAL,
    alerted TEXT, pending TEXT, streak INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, kind, name, check_name)
);
CREATE TABLE IF NOT EXISTS monitor_results (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, check_name TEXT NOT NULL,
    at REAL NOT NULL, ok INTEGER NOT NULL, duration REAL NOT NULL, endpoint TEXT NOT NULL,
    code TEXT, message TEXT, hint TEXT, warnings TEXT NOT NULL,
    cert_expires_at REAL, messages INTEGER, oldest_at REAL, worker TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS monitor_results_by_check
    ON monitor_results (tenant, kind, name, check_name, id);
CREATE TABLE IF NOT EXISTS monitor_alerts (
    tenant TEXT NOT NULL, subject TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (tenant, subject)
);
"""
_COLUMNS = (
    "tenant, kind, name, check_name, at, ok, duration, endpoint, code, message, hint, "
    "warnings, cert_expires_at, messages, oldest_at, worker"
)
State = Literal["passing", "failing"]


@dataclass(frozen=True, order=True)
class CheckKey:
    tenant: str
    kind: str
    name: str
    check: str

    @property
    def label(self) -> str:
        return f"{self.kind} '{self.name}' ({self.check})"


@dataclass(frozen=True)
class CheckResult:
    """One run of one check, as the history keeps it (what the console shows and the metrics
    are made of): never a secret, only the diagnosis the probe already scrubbed."""

    key: CheckKey
    at: float  # Unix time the check started
    ok: bool
    duration: float  # seconds
    endpoint: str  # protocol://host:port
    code: str | None = None  # the diagnosis (None when ok)
    message: str | None = None
    hint: str | None = None
    warnings: tuple[str, ...] = ()
    cert_expires_at: float | None = None
    messages: int | None = None
    oldest_at: float | None = None  # the mailbox's oldest message (Unix time)
    worker: str = ""  # who ran it: the monitor's replica, or BUTTON + the token's name

    @property
    def check(self) -> str:
        return self.key.check

    @property
    def elapsed_ms(self) -> int:
        return round(self.duration * 1000)

    @property
    def by(self) -> str:
        """Who ran it, in the console's words."""
        if self.worker.startswith(BUTTON):
            return self.worker
        return f"monitor ({self.worker})" if self.worker else "monitor"

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.key.tenant,
            "kind": self.key.kind,
            "name": self.key.name,
            "check": self.key.check,
            "at": self.at,
            "ok": self.ok,
            "duration": self.duration,
            "endpoint": self.endpoint,
            "diagnosis": None
            if self.ok
            else {"code": self.code, "message": self.message, "hint": self.hint},
            "warnings": list(self.warnings),
            "cert_expires_at": self.cert_expires_at,
            "messages": self.messages,
            "oldest_at": self.oldest_at,
        }


@dataclass(frozen=True)
class Change:
    """A check's alerted state changed (after damping): what an alert reports."""

    key: CheckKey
    state: State
    result: CheckResult
    first: bool = False  # the first state seen for this check (only a failure is alerted)


@dataclass
class Damping:
    """A state is alerted once ``results`` consecutive results agree on it; the check runs
    again ``confirm_after`` seconds after a result that disagrees with the alerted state,
    so a real change is confirmed quickly and a one-off blip (or a flapping check, whose
    results never agree twice in a row) sends nothing."""

    results: int = 2
    confirm_after: float = 60.0


@dataclass
class History:
    """The monitor's tables over one store connection (DB-API, ``?`` placeholders)."""

    connection: Any
    transaction: Callable[[], AbstractContextManager[None]]
    damping: Damping = field(default_factory=Damping)
    keep: int = KEEP_RESULTS

    @classmethod
    def of(cls, store: Any, **kwargs: Any) -> History:
        """The history in a served store (``server.store.Store``)."""
        return cls(store.repo.connection, store.repo.transaction, **kwargs)

    def ensure(self) -> None:
        with self.transaction():
            for statement in filter(str.strip, SCHEMA.split(";")):
                self.connection.execute(statement)

    # --- the schedule ----------------------------------------------------------------

    def sync(self, tenant: str, keys: Iterable[CheckKey], interval: float, now: float) -> None:
        """Schedule new checks (spread over the interval by a stable hash of their names, so
        a restart or another replica keeps the same spread) and forget removed ones."""
        wanted = set(keys)
        with self.transaction():
            known = {k for k in self._keys(tenant)}
            for key in sorted(wanted - known):
                offset = zlib.crc32("\0".join(_key(key)).encode()) % 1000 / 1000 * interval
                self.connection.execute(
                    "INSERT INTO monitor_checks (tenant, kind, name, check_name, due, streak)"
                    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING",
                    (*_key(key), now + offset),
                )
            for key in known - wanted:
                for table in ("monitor_checks", "monitor_results"):
                    self.connection.execute(
                        f"DELETE FROM {table} WHERE tenant = ? AND kind = ? AND name = ?"
                        " AND check_name = ?",
                        _key(key),
                    )

    def _keys(self, tenant: str) -> list[CheckKey]:
        rows = self.connection.execute(
            "SELECT tenant, kind, name, check_name FROM monitor_checks WHERE tenant = ?",
            (tenant,),
        ).fetchall()
        return [CheckKey(*row) for row in rows]

    def due(self, now: float, limit: int) -> list[CheckKey]:
        """Up to ``limit`` checks whose time has come and that no replica holds."""
        rows = self.connection.execute(
            "SELECT tenant, kind, name, check_name FROM monitor_checks WHERE due <= ?"
            " AND (claimed_until IS NULL OR claimed_until < ?) ORDER BY due LIMIT ?",
            (now, now, limit),
        ).fetchall()
        return [CheckKey(*row) for row in rows]

    def claim(self, key: CheckKey, worker: str, now: float, interval: float, hold: float) -> bool:
        """Take ``key`` for this run: True for exactly one replica per due time."""
        with self.transaction():
            cursor = self.connection.execute(
                "UPDATE monitor_checks SET due = ?, claimed_by = ?, claimed_until = ?"
                " WHERE tenant = ? AND kind = ? AND name = ? AND check_name = ? AND due <= ?"
                " AND (claimed_until IS NULL OR claimed_until < ?)",
                (now + interval, worker, now + hold, *_key(key), now, now),
            )
            return bool(cursor.rowcount == 1)

    def next_due(self) -> float | None:
        row = self.connection.execute("SELECT MIN(due) FROM monitor_checks").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    # --- results ---------------------------------------------------------------------

    def record(self, result: CheckResult, now: float) -> Change | None:
        """Keep ``result`` (and only the last ``keep`` of its check), release the claim, and
        say whether the check's alerted state changed."""
        key = result.key
        with self.transaction():
            self._insert(result)
            row = self.connection.execute(
                "SELECT alerted, pending, streak, due FROM monitor_checks WHERE tenant = ?"
                " AND kind = ? AND name = ? AND check_name = ?",
                _key(key),
            ).fetchone()
            if row is None:  # removed from the tenant while it ran
                return None
            alerted, pending, streak, due = row
            state: State = "passing" if result.ok else "failing"
            change = None
            if state == alerted:
                pending, streak = None, 0
            else:
                streak = streak + 1 if pending == state else 1
                pending = state
                if alerted is None and state == "passing":  # first sight: nothing to report
                    alerted, pending, streak = state, None, 0
                elif streak >= self.damping.results:
                    change = Change(key, state, result, first=alerted is None)
                    alerted, pending, streak = state, None, 0
                else:
                    due = min(due, now + self.damping.confirm_after)
            self.connection.execute(
                "UPDATE monitor_checks SET alerted = ?, pending = ?, streak = ?, due = ?,"
                " claimed_by = NULL, claimed_until = NULL WHERE tenant = ? AND kind = ?"
                " AND name = ? AND check_name = ?",
                (alerted, pending, streak, due, *_key(key)),
            )
        return change

    def keep_results(self, results: Iterable[CheckResult]) -> None:
        """Keep results that are not the schedule's (Test connection): shown with the
        others, never moving a check's alerted state or its due time (the monitor alerts
        only what it confirmed itself)."""
        with self.transaction():
            for result in results:
                self._insert(result)

    def _insert(self, result: CheckResult) -> None:
        """Inside a transaction: one more result, and only the last ``keep`` of its check."""
        key = _key(result.key)
        self.connection.execute(
            f"INSERT INTO monitor_results ({_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            _row(result),
        )
        self.connection.execute(
            "DELETE FROM monitor_results WHERE tenant = ? AND kind = ? AND name = ?"
            " AND check_name = ? AND id <= (SELECT id FROM monitor_results"
            " WHERE tenant = ? AND kind = ? AND name = ? AND check_name = ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (*key, *key, self.keep),
        )

    def recent(self, tenant: str, kind: str, name: str, limit: int = 50) -> list[CheckResult]:
        """A resource's last ``limit`` results (all its checks), newest first."""
        rows = self.connection.execute(
            f"SELECT {_COLUMNS} FROM monitor_results WHERE tenant = ? AND kind = ? AND name = ?"
            " ORDER BY id DESC LIMIT ?",
            (tenant, kind, name, max(0, min(limit, self.keep))),
        ).fetchall()
        return [_result(row) for row in rows]

    def latest(self, tenant: str | None = None, kind: str | None = None) -> list[CheckResult]:
        """The newest result of every check (of one tenant, of one kind when given),
        ordered by tenant, kind, name, check."""
        where, args = [], []
        for column, value in (("tenant", tenant), ("kind", kind)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        rows = self.connection.execute(
            f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))}"
            " FROM monitor_results r JOIN (SELECT MAX(id) AS id FROM monitor_results"
            f"{' WHERE ' + ' AND '.join(where) if where else ''}"
            " GROUP BY tenant, kind, name, check_name) newest ON r.id = newest.id"
            " ORDER BY r.tenant, r.kind, r.name, r.check_name",
            args,
        ).fetchall()
        return [_result(row) for row in rows]

    def scheduled_tenants(self) -> list[str]:
        """The tenants the schedule holds checks of (a removed tenant's are forgotten)."""
        rows = self.connection.execute("SELECT DISTINCT tenant FROM monitor_checks").fetchall()
        return sorted(str(row[0]) for row in rows)

    def first_alert(self, tenant: str, subject: str, now: float) -> bool:
        """True the first time ``subject`` (a certificate, a notice, a drift report) is
        alerted for ``tenant``; False ever after, on every replica."""
        with self.transaction():
            cursor = self.connection.execute(
                "INSERT INTO monitor_alerts (tenant, subject, at) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (tenant, subject, now),
            )
            return bool(cursor.rowcount == 1)


def _key(key: CheckKey) -> tuple[str, str, str, str]:
    return key.tenant, key.kind, key.name, key.check


def _row(r: CheckResult) -> tuple[Any, ...]:
    return (
        *_key(r.key),
        r.at,
        1 if r.ok else 0,
        r.duration,
        r.endpoint,
        r.code,
        r.message,
        r.hint,
        json.dumps(list(r.warnings)),
        r.cert_expires_at,
        r.messages,
        r.oldest_at,
        r.worker,
    )


def _result(row: tuple[Any, ...]) -> CheckResult:
    return CheckResult(
        CheckKey(row[0], row[1], row[2], row[3]),
        at=row[4],
        ok=bool(row[5]),
        duration=row[6],
        endpoint=row[7],
        code=row[8],
        message=row[9],
        hint=row[10],
        warnings=tuple(json.loads(row[11])),
        cert_expires_at=row[12],
        messages=row[13],
        oldest_at=row[14],
        worker=row[15],
    )


def from_probe(result: Result, tenant: str, at: float, worker: str = "") -> CheckResult:
    """A probe's result (``channelsync test``'s) as the history and the metrics keep it."""
    error = result.error
    return CheckResult(
        CheckKey(tenant, result.kind, result.name, result.check),
        at=at,
        ok=result.ok,
        duration=result.elapsed_ms / 1000,
        endpoint=result.endpoint,
        code=error.code if error else None,
        message=_kept(error.message) if error else None,
        hint=_kept(error.hint) if error else None,
        warnings=tuple(_kept(w) for w in result.warnings),
        cert_expires_at=result.tls.cert_expires_at,
        messages=result.messages,
        oldest_at=result.oldest.timestamp() if result.oldest else None,
        worker=worker,
    )


def _kept(text: str) -> str:
    return text if len(text) <= MAX_KEPT_TEXT else text[: MAX_KEPT_TEXT - 1] + "…"
