"""What every handler needs: the tokens file, the store, and who is calling."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from fastapi import Request

from channelsync.server.http import LOCK_HEADER, ApiError
from channelsync.server.store import Store, workers
from channelsync.server.tokens import Role, TokenEntry, TokenStore

T = TypeVar("T")


class Acting:
    """Who writes, under which Idempotency-Key and apply lock: one request's state, passed
    to each store write as arguments."""

    def __init__(self, actor: str, key: str | None, holder: str | None) -> None:
        self.actor = actor
        self.key = key
        self.holder = holder


class Context:
    """One tokens file and one store; the store opens when the application starts.

    The store lives on database threads of its own: every handler hands its whole database
    work to them as one call (``await ctx.db(fn)``), so the event loop never waits on the
    database. On SQLite that is one thread: the requests' database work runs one after
    another in arrival order (no locks of our own, one connection), and the store's IMMEDIATE
    transactions still serialise against other processes. On PostgreSQL a few threads share
    the pool; each write transaction serialises on its tenant's row, against every replica.
    """

    def __init__(
        self, target_url: str, tokens: TokenStore, *, key_file: Path | None = None
    ) -> None:
        self.target_url = target_url
        self.tokens = tokens
        self.key_file = key_file
        self._store: Store | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def db(self, work: Callable[[Store], T]) -> T:
        """Run ``work`` with the store on the database thread."""
        assert self._thread is not None and self._store is not None, "opens at start-up"
        store = self._store
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, store)

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(
            max_workers=workers(self.target_url), thread_name_prefix="channelsync-db"
        )
        loop = asyncio.get_running_loop()
        self._store = await loop.run_in_executor(
            self._thread, lambda: Store(self.target_url, key_file=self.key_file)
        )

    async def close(self) -> None:
        if self._thread is None:
            return
        if self._store is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._store.close)
            self._store = None
        self._thread.shutdown(wait=True)
        self._thread = None

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


def acting(entry: TokenEntry, request: Request) -> Acting:
    """The request's writes: by its token, under its Idempotency-Key and lock."""
    return Acting(
        entry.name, request.headers.get("idempotency-key"), request.headers.get(LOCK_HEADER)
    )
