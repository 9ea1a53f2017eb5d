"""Secrets at rest: sealed with Fernet, shown only as HMAC fingerprints, under one key file.

Envelope encryption: the key file is the store's master key; each tenant seals with a data
key of its own (the same 64 bytes: HMAC and Fernet), which the store keeps sealed by the
master key, so one tenant's key is rotated without touching the others. A tenant without a
data key (the tenant "default" of a store from before tenants) seals with the master key.

The key file holds 32 bytes for fingerprints and 32 for encryption, mode 0600, beside the
tenant. A tenant that holds secrets and has lost its key cannot be read: a new key would
silently turn every stored secret into noise, so it is refused. A tenant that holds no secret
yet (a new one, or one left by a crash before its first) needs no old key: a missing or empty
key file there (an empty one is what a crash during an older channelsync's key creation left)
gets a new key, made under the write transaction so two processes never each make one.
"""

from __future__ import annotations

import base64
import json
import os
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from channelsync.document import get_path, secret_paths, set_path
from channelsync.fsio import PRIVATE, write_atomic
from channelsync.secrets import fingerprint
from channelsync.targets.base import TargetError

KEY_SIZE = 64
_MAX_SEALED = 1024


class Guarded(Protocol):
    """What a key is made under: a write transaction, and whether anything is sealed yet."""

    def transaction(self) -> AbstractContextManager[None]: ...

    def holds_secrets(self) -> bool: ...


class Keys:
    def __init__(self, path: Path, raw: bytes | None) -> None:
        self.path = path
        self.hmac_key = raw[:32] if raw else None
        self._fernet_key = base64.urlsafe_b64encode(raw[32:64]) if raw else None

    @classmethod
    def read(cls, path: Path, *, sealed: bool) -> Keys:
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
        if raw is not None and len(raw) != KEY_SIZE and (raw or sealed):
            raise TargetError(
                f"key file {path} is damaged ({len(raw)} bytes, expected {KEY_SIZE}); "
                "restore it from a backup"
            )
        return cls(path, raw or None)

    @classmethod
    def create(cls, path: Path, *, replace: bool) -> Keys:
        """A new key, under ``path`` only once it is complete (never an empty key file)."""
        raw = os.urandom(KEY_SIZE)
        try:
            write_atomic(path, raw, mode=PRIVATE, exclusive=not replace)
        except FileExistsError:  # another process made one first: use its key
            return cls.read(path, sealed=True)
        except OSError as exc:
            raise TargetError(f"cannot write key file {path}: {exc.strerror}") from None
        return cls(path, raw)

    @classmethod
    def open(cls, path: Path, repo: Guarded, *, readonly: bool) -> Keys:
        """The tenant's key; a writer makes one for a tenant that holds no secret yet."""
        keys = cls.read(path, sealed=repo.holds_secrets())
        if keys.hmac_key is None and not readonly:
            with repo.transaction():  # one that took the lock first and stored a secret wins
                keys = cls.read(path, sealed=repo.holds_secrets())
                if keys.hmac_key is None:
                    keys = cls.create(path, replace=path.exists())
        return keys

    def fernet(self) -> Any:
        from cryptography.fernet import Fernet

        if self._fernet_key is None:
            raise TargetError(f"key file {self.path} is missing; secrets cannot be read")
        return Fernet(self._fernet_key)


def new_data_key(master: Keys) -> bytes:
    """A new data key for a tenant, sealed by the master key: what the store keeps."""
    sealed: bytes = master.fernet().encrypt(os.urandom(KEY_SIZE))
    return sealed


def tenant_keys(master: Keys, sealed: bytes | None, tenant: str) -> Keys:
    """The keys tenant ``tenant`` seals and fingerprints with: its data key, unsealed by the
    master key, or the master key itself for a tenant without one (the tenant "default" of a
    store from before tenants, until its key is rotated)."""
    if sealed is None:
        return master
    from cryptography.fernet import InvalidToken

    try:
        raw = master.fernet().decrypt(sealed)
    except InvalidToken:
        raw = b""
    if len(raw) != KEY_SIZE:
        raise TargetError(
            f"the data key of tenant '{tenant}' does not open with key file {master.path}: "
            "that is not the key this store's tenants were sealed with; restore it from a backup"
        )
    return Keys(master.path, raw)


class Sealer:
    """Fingerprints (cached per process only, never written anywhere) and sealed secrets."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self._fernet: Any = None
        self._fingerprints: dict[str, str] = {}
        self._sealed: dict[str, bytes] = {}

    def fingerprint(self, secret: str) -> str:
        if self.keys.hmac_key is None:
            return "(no tenant yet)"  # no secret stored yet: nothing live to compare with
        found = self._fingerprints.get(secret)
        if found is None:
            found = self._fingerprints[secret] = fingerprint(self.keys.hmac_key, secret)
        return found

    def seal(self, kind: str, body: dict[str, Any]) -> bytes | None:
        """Replace the secrets in ``body`` by their fingerprints; the values, sealed."""
        secrets: dict[str, str] = {}
        for path in secret_paths(kind):
            value = get_path(body, path)
            if value is not None:
                secrets[".".join(path)] = value
                set_path(body, path, self.fingerprint(value))
        if not secrets:
            return None
        plain = json.dumps(secrets)
        found = self._sealed.get(plain)
        if found is None:
            # the same secrets sealed once per process: the fingerprints in the bodies show
            # which resources share them anyway
            if len(self._sealed) >= _MAX_SEALED:
                self._sealed.clear()
            found = self._sealed[plain] = self._cipher().encrypt(plain.encode())
        return found

    def unseal(self, sealed: bytes | None) -> dict[str, str]:
        if sealed is None:
            return {}
        values: dict[str, str] = json.loads(self._cipher().decrypt(sealed))
        return values

    def _cipher(self) -> Any:
        if self._fernet is None:
            self._fernet = self.keys.fernet()
        return self._fernet
