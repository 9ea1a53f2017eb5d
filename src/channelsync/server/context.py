"""What every handler needs: the tokens file, the store, and who is calling."""

from __future__ import annotations

from contextlib import AbstractContextManager

from fastapi import Request

from channelsync.server.http import LOCK_HEADER, ApiError
from channelsync.server.store import Store
from channelsync.server.tokens import Role, TokenEntry, TokenStore


class Context:
    """One tokens file and one store; the store opens when the application starts."""

    def __init__(self, target_url: str, tokens: TokenStore) -> None:
        self.target_url = target_url
        self.tokens = tokens
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        assert self._store is not None, "the store opens at application start-up"
        return self._store

    async def open(self) -> None:
        """Opened on the event loop's thread: the only thread that ever uses the store."""
        self._store = Store(self.target_url)

    async def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def auth(self, request: Request, role: Role) -> TokenEntry:
        """The caller's token, which must have ``role``; its name goes to the access log."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        entry = self.tokens.authenticate(token.strip()) if scheme.lower() == "bearer" else None
        if entry is None:
            raise ApiError(
                401,
                "missing or unknown bearer token",
                {"WWW-Authenticate": 'Bearer realm="channelsync"'},
            )
        request.state.actor = entry.name
        if role == "write" and entry.role != "write":
            raise ApiError(403, f"token '{entry.name}' has the read role; this needs write")
        return entry

    def acting(self, entry: TokenEntry, request: Request) -> AbstractContextManager[None]:
        """Store writes for this request: by its token, under its Idempotency-Key and lock."""
        key = request.headers.get("idempotency-key")
        return self.store.acting(entry.name, key, request.headers.get(LOCK_HEADER))
