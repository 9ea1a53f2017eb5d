"""A minimal third-party target driver: a tenant kept in memory, in one small module.

A package makes a driver available by declaring an entry point in the
``channelsync.targets`` group, named after its URL scheme::

    [project.entry-points."channelsync.targets"]
    memory = "example_driver:MemoryTarget"

channelsync then calls ``MemoryTarget(url, readonly=...)`` for ``--target memory://NAME``.
This one keeps its tenants in a dict, so it forgets them when the process ends.

It is a store: it implements only ``Repository`` (rows by key, one transaction at a time) and
composes the vendor's rules, the sealing of secrets and the apply lock from
``channelsync.targets.api``, exactly as the embedded SQLite store does. A driver for a vendor's
own API implements ``Target`` directly instead, and the vendor enforces the rules.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from channelsync.targets.api import (
    Key,
    Keys,
    LiveResource,
    LockInfo,
    Operation,
    Row,
    Sealer,
    Stored,
    TargetError,
    Tenant,
    lease,
    serialise,
)


@dataclass
class _State:
    rows: dict[Key, Row] = field(default_factory=dict)
    lock: tuple[LockInfo, float] | None = None
    audit: list[tuple[str, str, str, str, list[str]]] = field(default_factory=list)
    mutex: threading.RLock = field(default_factory=threading.RLock)


TENANTS: dict[str, _State] = {}


class MemoryRepository:
    """``channelsync.targets.api.Repository`` over a dict; a transaction is a copy to roll
    back to, under a lock that serialises writers."""

    def __init__(self, state: _State, *, readonly: bool) -> None:
        self.state = state
        self.readonly = readonly
        self._depth = 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        if self.readonly:
            raise TargetError("this target was opened read-only")
        with self.state.mutex:
            saved = copy.deepcopy((self.state.rows, self.state.lock, self.state.audit))
            self._depth += 1
            try:
                yield
            except BaseException:
                if self._depth == 1:
                    self.state.rows, self.state.lock, self.state.audit = saved
                raise
            finally:
                self._depth -= 1

    def _writing(self) -> None:
        if not self._depth:
            raise TargetError("a write outside a transaction")

    def get(self, kind: str, name: str) -> Stored | None:
        row = self.state.rows.get((kind, name))
        if row is None:
            return None
        return Stored(kind, name, copy.deepcopy(row.body), serialise(row.body)[1])

    def exists(self, kind: str, name: str) -> bool:
        return (kind, name) in self.state.rows

    def of_kind(self, kind: str) -> list[Stored]:
        found = (self.get(k, n) for k, n in list(self.state.rows) if k == kind)
        return [s for s in found if s is not None]

    def unique_holder(self, kind: str, unique: str, name: str) -> str | None:
        rows = self.state.rows.values()
        found = (r.name for r in rows if r.kind == kind and r.unique == unique and r.name != name)
        return next(found, None)

    def insert(self, row: Row) -> None:
        self._writing()
        self.state.rows[(row.kind, row.name)] = copy.deepcopy(row)

    def update(self, row: Row) -> None:
        self.insert(row)

    def update_body(self, kind: str, name: str, body: dict[str, Any]) -> None:
        self._writing()
        old = self.state.rows[(kind, name)]
        self.state.rows[(kind, name)] = Row(kind, name, copy.deepcopy(body), old.sealed, old.unique)

    def rename(self, kind: str, old: str, new: str) -> None:
        self._writing()
        row = self.state.rows.pop((kind, old))
        self.state.rows[(kind, new)] = Row(kind, new, row.body, row.sealed, row.unique)

    def delete(self, kind: str, name: str) -> None:
        self._writing()
        del self.state.rows[(kind, name)]

    def sealed(self, kind: str, name: str) -> bytes | None:
        row = self.state.rows.get((kind, name))
        return None if row is None else row.sealed

    def holds_secrets(self) -> bool:
        return any(r.sealed is not None for r in self.state.rows.values())

    def audit(self, actor: str, kind: str, name: str, action: str, fields: list[str]) -> None:
        self._writing()
        self.state.audit.append((actor, kind, name, action, fields))

    def lock_row(self) -> tuple[LockInfo, float] | None:
        return self.state.lock

    def put_lock(self, info: LockInfo, expires: float) -> None:
        self._writing()
        self.state.lock = (info, expires)

    def renew_lock(self, holder: str, expires: float) -> bool:
        self._writing()
        if self.state.lock is None or self.state.lock[0].holder != holder:
            return False
        self.state.lock = (self.state.lock[0], expires)
        return True

    def drop_lock(self, holder: str) -> bool:
        self._writing()
        if self.state.lock is None or self.state.lock[0].holder != holder:
            return False
        self.state.lock = None
        return True


class MemoryTarget:
    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.repo = MemoryRepository(TENANTS.setdefault(url, _State()), readonly=readonly)
        raw = hashlib.sha512(url.encode()).digest()  # a real store keeps its key secret
        self.tenant = Tenant(self.repo, Sealer(Keys(Path(url), raw)))
        self._lease: lease.Lease | None = None

    def read(self) -> dict[Key, LiveResource]:
        stored = (self.repo.get(*key) for key in list(self.repo.state.rows))
        return {(s.kind, s.name): LiveResource(s.kind, s.name, s.body, s.etag) for s in stored if s}

    def fingerprint(self, secret: str) -> str:
        return self.tenant.sealer.fingerprint(secret)

    def apply(self, operation: Operation) -> None:
        self.tenant.apply(operation, actor="memory", lease=self._lease)

    @contextlib.contextmanager
    def lock(self, info: LockInfo, timeout: float) -> Iterator[None]:
        seconds = lease.LEASE_SECONDS
        lease.wait_for(lambda: lease.try_take(self.repo, info, seconds), timeout)
        self._lease = lease.Lease(info.holder, seconds, own=True)

        def renew() -> None:
            with self.repo.transaction():
                self.repo.renew_lock(info.holder, time.time() + seconds)

        try:
            with lease.heartbeat(renew, seconds):
                yield
        finally:
            self._lease = None
            lease.release(self.repo, info.holder)

    def close(self) -> None:
        pass
