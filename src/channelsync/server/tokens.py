"""Bearer tokens for `channelsync serve`: a file of hashes, names and roles.

Only a SHA-256 hash of each token is stored. Tokens are 256-bit random strings, so a fast
hash is enough (no password stretching needed), and a stolen tokens file does not let anyone
call the API. The server re-reads the file whenever it changes on disk, so ``token add`` and
``token revoke`` take effect without a restart.

Each token reaches the tenants it names (``tenants``; ``*``: every tenant, an operator's
token). A token in a file from before tenants names none: it reaches the tenant "default"
only, which was the only one there was.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from channelsync.defaults import DEFAULT_TENANT, TOKEN_ROLES, TokenRole
from channelsync.defaults import DEFAULT_TOKENS_FILE as DEFAULT_TOKENS_FILE
from channelsync.errors import ChannelsyncError
from channelsync.fsio import PRIVATE, write_atomic

Role = TokenRole
ROLES = TOKEN_ROLES
TOKEN_PREFIX = "cst_"
EVERY_TENANT = "*"


@dataclass(frozen=True)
class TokenEntry:
    name: str
    role: Role
    hash: str
    created: str
    tenants: tuple[str, ...] = (DEFAULT_TENANT,)

    def reaches(self, tenant: str) -> bool:
        return EVERY_TENANT in self.tenants or tenant in self.tenants


def _scope(tenants: Sequence[str]) -> tuple[str, ...]:
    """The tenants a token may name: tenant names, or ``*`` alone."""
    from channelsync.tenant.repository import check_tenant_name

    found = tuple(dict.fromkeys(tenants))
    if EVERY_TENANT in found:
        if len(found) > 1:
            raise ChannelsyncError("--tenant '*' (every tenant) goes alone")
        return found
    if not found:
        raise ChannelsyncError("a token needs at least one --tenant")
    for name in found:
        check_tenant_name(name)
    return found


def _entry(raw: dict[str, object]) -> TokenEntry:
    tenants = raw.get("tenants", [DEFAULT_TENANT])
    if not isinstance(tenants, list) or not all(isinstance(t, str) for t in tenants):
        raise TypeError("tenants")
    return TokenEntry(**{**raw, "tenants": _scope(tenants)})  # type: ignore[arg-type]


def _digest(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


digest = _digest  # public: the metrics token is hashed as the API tokens are


def load(path: Path) -> list[TokenEntry]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [_entry(entry) for entry in raw["tokens"]]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ChannelsyncError(f"cannot read tokens file {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, ChannelsyncError):
        raise ChannelsyncError(f"{path} is not a channelsync tokens file") from None


def _save(path: Path, entries: list[TokenEntry]) -> None:
    """Atomic replace with mode 0600, so a reader never sees half a file."""
    text = json.dumps({"tokens": [asdict(e) for e in entries]}, indent=2) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text, mode=PRIVATE)
    except OSError as exc:
        raise ChannelsyncError(f"cannot write tokens file {path}: {exc.strerror}") from None


def add(path: Path, name: str, role: Role, tenants: Sequence[str] = (DEFAULT_TENANT,)) -> str:
    """Create a token for ``tenants``; the only time its value exists outside the caller's
    memory is here."""
    if role not in ROLES:
        raise ChannelsyncError(f"unknown role '{role}'; use read or write")
    scope = _scope(tenants)
    entries = load(path)
    if any(e.name == name for e in entries):
        raise ChannelsyncError(
            f"a token named '{name}' already exists in {path}; revoke it first or pick another name"
        )
    import secrets

    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entries.append(TokenEntry(name, role, _digest(token), created, scope))
    _save(path, entries)
    return token


def revoke(path: Path, name: str) -> None:
    entries = load(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        raise ChannelsyncError(f"no token named '{name}' in {path}")
    _save(path, kept)


class TokenStore:
    """The tokens file as the server sees it, reloaded when its stat signature changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._entries: list[TokenEntry] = []
        self.refresh()

    def refresh(self) -> list[TokenEntry]:
        try:
            st = self.path.stat()
            signature = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            signature = None
        if signature != self._signature:
            self._entries = load(self.path) if signature is not None else []
            self._signature = signature
        return self._entries

    def authenticate(self, token: str) -> TokenEntry | None:
        """The entry for ``token``; every stored hash is compared, in constant time."""
        digest = _digest(token)
        found: TokenEntry | None = None
        for entry in self.refresh():
            if hmac.compare_digest(entry.hash, digest):
                found = entry
        return found
