"""Everything a target driver needs, in one public module (docs/rest-api.md, "Writing a
target driver").

A driver implements ``Target``; what it can do beyond that it declares by implementing a
capability Protocol (``FingerprintsMany``, ``SecretValues``, ``Absent``, ``Batches``,
``AppliesMany``), which channelsync checks with ``isinstance``. Resources reach a driver
normalised (``normalize``: every default applied) with real secret values at
``secret_paths(kind)``; ``read()`` shows those fields as fingerprints only
(``fingerprint(key, value)`` is the keyed HMAC the built-in stores use).

A store (a database of the tenant's own, like the embedded SQLite one) needs none of the rules
itself: it implements ``Repository`` and composes ``Tenant`` (the vendor's rules and the
audit), ``Sealer``/``Keys`` (secrets at rest) and ``lease`` (the apply lock) over it, as
``tests/http/example_driver.py`` does in memory.

Import from here, not from the modules behind it: they may move.
"""

from __future__ import annotations

from channelsync.document import get_path, normalize, secret_paths, set_path
from channelsync.kinds import Kind, all_kinds, builtin_names
from channelsync.secrets import FINGERPRINT_PREFIX, fingerprint
from channelsync.targets.base import (
    Absent,
    Action,
    AppliesMany,
    Batches,
    ConflictError,
    FingerprintsMany,
    Key,
    LiveResource,
    LockInfo,
    LockTimeout,
    Operation,
    SecretValues,
    Target,
    TargetError,
)
from channelsync.tenant import lease
from channelsync.tenant.repository import Repository, Row, Stored, Tenants, serialise
from channelsync.tenant.rules import Tenant
from channelsync.tenant.sealing import Keys, Sealer, new_data_key, tenant_keys

__all__ = [
    "FINGERPRINT_PREFIX",
    "Absent",
    "Action",
    "AppliesMany",
    "Batches",
    "ConflictError",
    "FingerprintsMany",
    "Key",
    "Keys",
    "Kind",
    "LiveResource",
    "LockInfo",
    "LockTimeout",
    "Operation",
    "Repository",
    "Row",
    "Sealer",
    "SecretValues",
    "Stored",
    "Target",
    "TargetError",
    "Tenant",
    "Tenants",
    "all_kinds",
    "builtin_names",
    "fingerprint",
    "get_path",
    "lease",
    "new_data_key",
    "normalize",
    "secret_paths",
    "serialise",
    "set_path",
    "tenant_keys",
]
