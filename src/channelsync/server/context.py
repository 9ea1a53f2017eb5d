"""What every handler needs: the tokens file, the store, and who is calling."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from fastapi import Request

from channelsync.defaults import DEFAULT_TENANT
from channelsync.server import limits
from channelsync.server.http import LOCK_HEADER, ApiError
from channelsync.server.store import Store, workers
from channelsync.server.tokens import Role, TokenEntry, TokenStore
from channelsync.tenant.repository import valid_tenant_name

T = TypeVar("T")

# The tenant the request's path names, set by ``Context.auth`` once the token may reach it
# (or by ``bind``); no default: work outside a request names its tenant (``db(tenant=)``).
_TENANT: contextvars.ContextVar[str] = contextvars.ContextVar("channelsync_tenant")


def current_tenant() -> str:
    """The tenant of the request being answered (after ``Context.auth``), for its metrics."""
    return _TENANT.get(DEFAULT_TENANT)


def no_tenant(name: str) -> ApiError:
    """What a token hears of a tenant that does not exist or that it may not reach: the same,
    so a token never learns which other tenants there are."""
    shown = f"'{name}' " if valid_tenant_name(name) else ""
    return ApiError(404, f"no tenant {shown}on this server")


class Acting:
    """Who writes, under which Idempotency-Key and apply lock: one request's state, passed
    to each store write as arguments. ``request`` identifies the request the key was sent
    with (``request_digest``), so that the key is never replayed for another one."""

    def __init__(
        self, actor: str, key: str | None, holder: str | None, request: str | None = None
    ) -> None:
        self.actor = actor
        self.key = key
        self.holder = holder
        self.request = request


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
        self,
        target_url: str,
        tokens: TokenStore,
        fingerprint_rate: int = limits.DEFAULT_FINGERPRINT_RATE,
        *,
        key_file: Path | None = None,
    ) -> None:
        self.target_url = target_url
        self.tokens = tokens
        self.key_file = key_file
        self.fingerprint_budget = limits.Budget(fingerprint_rate)  # per token, a minute
        self._store: Store | None = None
        self._thread: ThreadPoolExecutor | None = None

    async def db(self, work: Callable[[Store], T], *, tenant: str | None = None) -> T:
        """Run ``work`` on the database thread with the store bound to ``tenant``, by default
        the request's (the one ``auth`` let the token reach). Work outside a request (start-up)
        names its tenant; a request that did not pass ``auth`` has none, and fails."""
        assert self._thread is not None and self._store is not None, "opens at start-up"
        store = self._store
        if tenant is None:
            tenant = _TENANT.get()

        def run() -> T:
            bound = store.of(tenant)
            if bound is None:
                raise no_tenant(tenant)
            return work(bound)

        return await asyncio.get_running_loop().run_in_executor(self._thread, run)

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

    def bind(self, tenant: str) -> None:
        """The tenant of this request's later ``db`` calls, for a caller that checked its
        token reaches it another way (the console's session)."""
        _TENANT.set(tenant)

    def auth(self, request: Request, role: Role) -> TokenEntry:
        """The caller's token, which must reach the tenant the path names (else 404, as for
        a tenant that does not exist) and have ``role``; its name goes to the access log."""
        entry = self.caller(request)
        tenant = str(request.path_params.get("tenant", DEFAULT_TENANT))
        if not valid_tenant_name(tenant) or not entry.reaches(tenant):
            raise no_tenant(tenant)
        _TENANT.set(tenant)
        if role == "write" and entry.role != "write":
            raise ApiError(403, f"token '{entry.name}' has the read role; this needs write")
        return entry

    def caller(self, request: Request) -> TokenEntry:
        """The caller's token, whatever it may reach (401 without a known one)."""
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
        return entry


IDEMPOTENCY_KEY = re.compile(r"[!-~]{1,200}")


def acting(entry: TokenEntry, request: Request, body: Any = None) -> Acting:
    """The request's writes: by its token, under its Idempotency-Key and lock, the key bound
    to this token, method, path and body."""
    key = request.headers.get("idempotency-key")
    if key is not None and IDEMPOTENCY_KEY.fullmatch(key) is None:
        raise ApiError(400, "an Idempotency-Key is 1 to 200 visible ASCII characters")
    query = sorted(request.query_params.multi_items())
    digest = request_digest(entry, request.method, request.url.path, query, body)
    return Acting(entry.name, key, request.headers.get(LOCK_HEADER), digest)


def request_digest(
    entry: TokenEntry, method: str, path: str, query: list[tuple[str, str]], body: Any
) -> str:
    """What an Idempotency-Key is bound to: the token (its hash), the method, the path and
    query, and a hash of the body (as parsed, so key order and spacing do not count)."""
    canonical = json.dumps(
        [entry.hash, method, path, query, body], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
