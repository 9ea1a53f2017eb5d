"""The target interface: what a driver for a tenant implements.

A target knows nothing about YAML or plans. It reads the live state (resources in the
normalised form, secrets replaced by keyed fingerprints), fingerprints a secret with its own
key, applies one operation at a time (each one transaction), and holds the apply lock.

What a driver may offer beyond ``Target`` is a capability of its own Protocol, checked with
``isinstance`` (never by probing attribute names). Drivers import all of this from
``channelsync.targets.api``.
"""

from __future__ import annotations

import os
import socket
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

from channelsync.errors import ConflictError as ConflictError
from channelsync.errors import LockTimeout as LockTimeout
from channelsync.errors import TargetError as TargetError

Action = Literal["create", "update", "rename", "delete"]
Key = tuple[str, str]  # (kind, name)


@dataclass(frozen=True)
class LiveResource:
    kind: str
    name: str
    data: dict[str, Any]
    etag: str


@dataclass(frozen=True)
class Operation:
    """One change to make. ``body`` carries real secret values: never log or print it."""

    action: Action
    kind: str
    name: str
    previous_name: str | None = None
    body: dict[str, Any] | None = field(default=None, repr=False)
    expected_etag: str | None = None

    @property
    def key(self) -> Key:
        return (self.kind, self.previous_name or self.name)


@dataclass(frozen=True)
class LockInfo:
    holder: str
    host: str
    pid: int
    since: str

    @classmethod
    def mine(cls, holder: str) -> LockInfo:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(holder, socket.gethostname(), os.getpid(), now)

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.since}"


@runtime_checkable
class Target(Protocol):
    """What every target driver provides (docs/rest-api.md, "Writing a target driver")."""

    url: str

    def read(self) -> dict[Key, LiveResource]:
        """Every resource of the tenant (built-ins excluded), secrets as fingerprints."""
        ...

    def fingerprint(self, secret: str) -> str:
        """The keyed fingerprint this target shows for ``secret``."""
        ...

    def apply(self, operation: Operation) -> None:
        """Make one change atomically, or raise TargetError and change nothing."""
        ...

    def lock(self, info: LockInfo, timeout: float) -> AbstractContextManager[None]:
        """Hold the tenant's apply lock; raise LockTimeout naming the holder."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class FingerprintsMany(Protocol):
    """A driver that fingerprints many secrets in one round trip (and caches the answers);
    the planner asks it for every secret of a plan at once."""

    def fingerprint_many(self, secrets: list[str]) -> list[str]: ...


@runtime_checkable
class Batches(Protocol):
    """A driver that gathers the operations applied inside ``batch()`` into fewer commits,
    each operation still all or nothing, and everything applied before a failure committed
    before ``apply`` raises it (so the apply's report holds)."""

    def batch(self) -> AbstractContextManager[None]: ...


@runtime_checkable
class AppliesMany(Protocol):
    """A driver that applies many operations in one round trip: in order, each all or
    nothing, stopping at the first failure; it answers how many were applied (and committed)
    and that failure, or None when all were. Apply hands it every run of operations up to
    one after which the tenant changes other resources itself."""

    def apply_many(self, operations: list[Operation]) -> tuple[int, TargetError | None]: ...


@runtime_checkable
class SecretValues(Protocol):
    """A driver that can show the secrets it stores for one resource (the embedded tenant:
    what it polls and sends with), as ``{"incoming.password": VALUE}``."""

    def secret_values(self, kind: str, name: str) -> dict[str, str]: ...


@runtime_checkable
class Absent(Protocol):
    """A driver whose URL may name no tenant yet: opened read-only, ``absent`` then says so
    ("no tenant at PATH yet: apply will create it"), else it is None."""

    absent: str | None
