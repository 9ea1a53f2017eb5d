"""The storage interface the tenant's rules, sealing and lease are written against.

A store (SQLite today, PostgreSQL next) implements ``Repository``: rows by (kind, name),
insert/update/delete, the lock row and the audit log, all inside ``transaction()``, which
serialises writers and is re-entrant (a nested block joins the outer transaction, so a caller
can add its own records, such as an Idempotency-Key, to the same commit).

A repository is bound to one tenant of its store when it is made (``tenant=``, "default"
unless said) and every one of its queries is that tenant's. The store's list of tenants, and
each tenant's data key (sealed by the server's master key), are ``Tenants``.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from channelsync.defaults import DEFAULT_TENANT, TENANT_NAME_PATTERN
from channelsync.errors import visible
from channelsync.targets.base import LockInfo, TargetError

_TENANT_NAME = re.compile(TENANT_NAME_PATTERN)


@dataclass(frozen=True)
class Stored:
    kind: str
    name: str
    body: dict[str, Any] = field(repr=False)
    etag: str


@dataclass(frozen=True)
class Row:
    """A resource as written: its body (secrets as fingerprints), the sealed secrets, and the
    value that must be unique across the tenant (a channel's address), if any."""

    kind: str
    name: str
    body: dict[str, Any] = field(repr=False)
    sealed: bytes | None = field(default=None, repr=False)
    unique: str | None = None


class Repository(Protocol):
    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction (re-entrant); writes outside one are refused."""
        ...

    def get(self, kind: str, name: str) -> Stored | None: ...

    def exists(self, kind: str, name: str) -> bool: ...

    def of_kind(self, kind: str) -> list[Stored]: ...

    def unique_holder(self, kind: str, unique: str, name: str) -> str | None:
        """The name of another resource of ``kind`` holding the unique value ``unique``
        (lower case), or None: values are unique within a kind (an agent may share a
        channel's address)."""
        ...

    def insert(self, row: Row) -> None: ...

    def update(self, row: Row) -> None:
        """Replace body, sealed secrets and unique value."""
        ...

    def update_body(self, kind: str, name: str, body: dict[str, Any]) -> None:
        """Replace the body only (secrets and unique value stay)."""
        ...

    def rename(self, kind: str, old: str, new: str) -> None: ...

    def delete(self, kind: str, name: str) -> None: ...

    def sealed(self, kind: str, name: str) -> bytes | None: ...

    def holds_secrets(self) -> bool: ...

    def audit(self, actor: str, kind: str, name: str, action: str, fields: list[str]) -> None: ...

    def lock_row(self) -> tuple[LockInfo, float] | None:
        """The apply lock's holder and when its lease expires (epoch seconds), or None."""
        ...

    def put_lock(self, info: LockInfo, expires: float) -> None: ...

    def renew_lock(self, holder: str, expires: float) -> bool: ...

    def drop_lock(self, holder: str) -> bool: ...


class Tenants(Protocol):
    """The tenants of one store. Every store has the tenant "default" from its creation."""

    def names(self) -> list[str]:
        """Sorted."""
        ...

    def add(self, name: str, data_key: bytes | None) -> None:
        """TargetError if it exists."""
        ...

    def remove(self, name: str) -> None:
        """Delete all its rows, in one transaction; "default" cannot be removed."""
        ...

    def data_key(self, name: str) -> bytes | None:
        """Its data key, sealed by the master key (None: it seals with the master key);
        KeyError if the tenant does not exist."""
        ...

    def set_data_key(self, name: str, data_key: bytes) -> None: ...


def valid_tenant_name(name: str) -> bool:
    return _TENANT_NAME.fullmatch(name) is not None


def check_tenant_name(name: str) -> str:
    """``name`` if it can name a tenant, else a TargetError saying what can."""
    if not valid_tenant_name(name):
        raise TargetError(
            f"'{visible(name)}' cannot name a tenant: use 1 to 63 lower-case letters, digits "
            "and '-', starting with a letter or digit"
        )
    return name


def cannot_remove(name: str) -> None:
    """The default tenant is the store's own: every single-tenant path names it."""
    if name == DEFAULT_TENANT:
        raise TargetError(f"the tenant '{DEFAULT_TENANT}' cannot be removed")


_STORED = json.JSONEncoder(sort_keys=True, separators=(",", ":"))  # json.dumps: one per call


def serialise(body: dict[str, Any]) -> tuple[str, str]:
    """The stored text of a body and its ETag (a hash of exactly that text), for every store."""
    text = _STORED.encode(body)
    return text, hashlib.sha256(text.encode()).hexdigest()[:20]
