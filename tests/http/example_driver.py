"""A minimal third-party target driver: the whole plugin interface in one small class.

A package makes a driver available by declaring an entry point in the
``channelsync.targets`` group, named after its URL scheme::

    [project.entry-points."channelsync.targets"]
    memory = "example_driver:MemoryTarget"

channelsync then calls ``MemoryTarget(url, readonly=...)`` for ``--target memory://NAME``.
This one keeps its tenants in a dict, so it forgets them when the process ends.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import hmac
import json
from collections.abc import Iterator
from typing import Any

from channelsync.targets.base import (
    ConflictError,
    Key,
    LiveResource,
    LockInfo,
    Operation,
    TargetError,
)

TENANTS: dict[str, dict[Key, dict[str, Any]]] = {}
SECRET_FIELDS = {
    "EmailChannel": (("incoming", "password"), ("outgoing", "password")),
    "SmtpServer": (("password",),),
}


class MemoryTarget:
    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.readonly = readonly
        self._key = hashlib.sha256(url.encode()).digest()  # a real driver keeps it secret
        self.tenant = TENANTS.setdefault(url, {})

    def read(self) -> dict[Key, LiveResource]:
        return {
            k: LiveResource(k[0], k[1], copy.deepcopy(v), _etag(v)) for k, v in self.tenant.items()
        }

    def fingerprint(self, secret: str) -> str:
        return "hmac-sha256:" + hmac.new(self._key, secret.encode(), "sha256").hexdigest()

    def apply(self, operation: Operation) -> None:
        op = operation
        if self.readonly:
            raise TargetError("this target was opened read-only")
        current = self.tenant.get(op.key)
        if (current is None) != (op.action == "create"):
            raise ConflictError(f"{op.kind} '{op.name}' changed in the tenant since the plan")
        if current is not None and op.expected_etag not in (None, _etag(current)):
            raise ConflictError(f"{op.kind} '{op.name}' changed in the tenant since the plan")
        self.tenant.pop(op.key, None)
        if op.action != "delete":
            assert op.body is not None
            body = copy.deepcopy(op.body)
            for path in SECRET_FIELDS.get(op.kind, ()):  # store only what read() shows
                node = body
                for part in path[:-1]:
                    node = node.get(part) or {}
                if isinstance(node.get(path[-1]), str):
                    node[path[-1]] = self.fingerprint(node[path[-1]])
            self.tenant[(op.kind, op.name)] = body

    @contextlib.contextmanager
    def lock(self, info: LockInfo, timeout: float) -> Iterator[None]:
        yield  # one process: nothing to coordinate

    def close(self) -> None:
        pass


def _etag(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
