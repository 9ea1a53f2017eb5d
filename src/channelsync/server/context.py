"""What every handler needs: the tokens file, the store, and who is calling."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import Request

from channelsync.defaults import DEFAULT_TENANT
from channelsync.server.http import LOCK_HEADER, ApiError
from channelsync.server.store import Store
from channelsync.server.tokens import Role, TokenEntry, TokenStore
from channelsync.tenant.repository import valid_tenant_name

T = TypeVar("T")

# The tenant the request's path names, set by ``Context.auth`` once the token may reach it;
# start-up work (the console's tables) is the default tenant's.
_TENANT: contextvars.ContextVar[str] = contextvars.ContextVar(
    "channelsync_tenant", default=DEFAULT_TENANT
)


def no_tenant(name: str) -> ApiError:
    """What a token hears of a tenant that does not exist or that it may not reach: the same,
    so a token never learns which other tenants there are."""
    shown = f"'{name}' " if valid_tenant_name(name) else ""
    return ApiError(404, f"no tenant {shown}on this server")


class Acting:
    """Who writes, under which Idempotency-Key and apply lock: one request's state, passed
    to each store write as arguments."""

    def __init__(self, actor: str, key: str | None, holder: str | None) -> None:
        self.actor = actor
        self.key = key
        self.holder = holder


class Context:
    """One tokens file and one store; the store opens when the application starts.

    The store lives on one database thread of its own: every handler hands its whole
    database work to it as one call (``await ctx.db(fn)``), so the event loop never waits on
    SQLite, the requests' database work runs one after another in arrival order (no locks of
    our own, one connection), and the store's IMMEDIATE transactions still serialise against
    other processes.
    """

    def __init__(self, target_url: str, tokens: TokenStore) -> None:
        self.target_url = target_url
        self.tokens = tokens
        self._store: Store | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def db(self, work: Callable[[Store], T]) -> T:
        """Run ``work`` on the database thread with the store bound to the request's tenant
        (the one ``auth`` let the token reach)."""
        assert self._thread is not None and self._store is not None, "opens at start-up"
        store = self._store
        tenant = _TENANT.get()

        def run() -> T:
            bound = store.of(tenant)
            if bound is None:
                raise no_tenant(tenant)
            return work(bound)

        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

    async def open(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="channelsync-db")
        loop = asyncio.get_running_loop()
        self._store = await loop.run_in_executor(self._thread, Store, self.target_url)

    async def close(self) -> None:
        if self._thread is None:
            return
        if self._store is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._store.close)
            self._store = None
        self._thread.shutdown(wait=True)
        self._thread = None

    def auth(self, request: Request, role: Role) -> TokenEntry:
        """The caller's token, which must reach the tenant the path names (else 404, as for
        a tenant that does not exist) and have ``role``; its name goes to the access log."""
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
        tenant = str(request.path_params.get("tenant", DEFAULT_TENANT))
        if not valid_tenant_name(tenant) or not entry.reaches(tenant):
            raise no_tenant(tenant)
        _TENANT.set(tenant)
        if role == "write" and entry.role != "write":
            raise ApiError(403, f"token '{entry.name}' has the read role; this needs write")
        return entry


def acting(entry: TokenEntry, request: Request) -> Acting:
    """The request's writes: by its token, under its Idempotency-Key and lock."""
    return Acting(
        entry.name, request.headers.get("idempotency-key"), request.headers.get(LOCK_HEADER)
    )
