"""Console sign-in: an API token exchanged for a session cookie, and CSRF tokens.

The session table lives in the server's memory: a random 256-bit id maps to the token's
*name*, the tenant and a CSRF token; the token itself is never kept. Every request looks the
token name up in the tokens file again, so revoking a token (or changing its role) takes
effect on its sessions at once. Sessions expire after ``IDLE_SECONDS`` without a request and
after ``MAX_SECONDS`` in all; a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from channelsync.defaults import DEFAULT_TENANT
from channelsync.server.tokens import Role, TokenEntry, TokenStore

COOKIE = "channelsync_session"
LOGIN_COOKIE = "channelsync_login"  # the sign-in form's CSRF token (double submit)
IDLE_SECONDS = 30 * 60
MAX_SECONDS = 12 * 3600
MAX_SESSIONS = 10_000  # the oldest session goes first beyond this
SIGN_IN_FAILURES = 10  # failed sign-ins a minute per client address (as many at once)


@dataclass
class Session:
    id: str
    token_name: str
    tenant: str
    csrf: str
    created: float
    seen: float


@dataclass(frozen=True)
class SignedIn:
    """A request's session with the token's current role."""

    session: Session
    role: Role

    @property
    def can_test(self) -> bool:
        return self.role == "write"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same(a: str | None, b: str | None) -> bool:
    """Two CSRF tokens match (in constant time); a missing one never does."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))


class Sessions:
    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens
        self._lock = threading.Lock()
        self._by_id: dict[str, Session] = {}

    def sign_in(self, token: str, tenant: str | None) -> tuple[Session, TokenEntry] | None:
        """A session for ``tenant`` (None: the token's own tenant, "default" for an operator's
        token); None for an unknown token. Whether the tenant exists and the token reaches it
        is the caller's to check, with the same answer for both (``Context.db``)."""
        entry = self.tokens.authenticate(token.strip())
        if entry is None:
            return None
        if tenant is None:
            tenant = DEFAULT_TENANT if entry.reaches(DEFAULT_TENANT) else entry.tenants[0]
        now = time.time()
        session = Session(new_secret(), entry.name, tenant, new_secret(), now, now)
        with self._lock:
            self._expire(now)
            while len(self._by_id) >= MAX_SESSIONS:
                del self._by_id[next(iter(self._by_id))]
            self._by_id[session.id] = session
        return session, entry

    def lookup(self, session_id: str | None) -> SignedIn | None:
        """The live session of a cookie, its token still valid; None otherwise."""
        if not session_id:
            return None
        now = time.time()
        with self._lock:
            session = self._by_id.get(session_id)
            if session is None:
                return None
            if _expired(session, now):
                del self._by_id[session_id]
                return None
            session.seen = now
        entry = next((e for e in self.tokens.refresh() if e.name == session.token_name), None)
        if entry is None or not entry.reaches(session.tenant):  # revoked: so are its sessions
            self.sign_out(session_id)
            return None
        return SignedIn(session, entry.role)

    def sign_out(self, session_id: str) -> None:
        with self._lock:
            self._by_id.pop(session_id, None)

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._by_id.items() if _expired(s, now)]:
            del self._by_id[key]


def _expired(session: Session, now: float) -> bool:
    return now - session.seen > IDLE_SECONDS or now - session.created > MAX_SECONDS
