"""Sockets and TLS for the probes: verified by default, trusting what ``channelsync.trust``
says for the resource (its ``tls.ca_file``, else ``SSL_CERT_FILE``, else the system store).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from channelsync.probe.check import Attempt, Check, ProbeFailure, TlsInfo
from channelsync.trust import Trust, TrustUnavailable, trust_for, unreadable_hint

EXPIRY_WARNING_DAYS = 21
MAX_READ_BYTES = 32 * 1024 * 1024  # what one connection may send: far over any real answer
HOSTILE_HINT = "check that the host and port are the mail server's; nothing more was read"


def trust_of(check: Check) -> Trust:
    return trust_for(check.ca_file, check.base_dir)


def context_for(check: Check) -> ssl.SSLContext:
    trust = trust_of(check)
    try:
        return trust.context()
    except TrustUnavailable as exc:
        raise ProbeFailure(
            "cert_untrusted", f"{exc}; nothing was sent to the server", unreadable_hint(trust)
        ) from None


def connect(attempt: Attempt) -> socket.socket:
    """A connected socket, already TLS for implicit-TLS protocols; the greeting is next."""
    check = attempt.check
    attempt.step("dns")
    addresses = socket.getaddrinfo(check.host, check.port, type=socket.SOCK_STREAM)
    attempt.step("connect")
    family, kind, proto, _, address = addresses[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.settimeout(attempt.remaining())
        sock.connect(address)
        if check.implicit_tls:
            sock = wrap(attempt, sock)
    except BaseException:
        sock.close()
        raise
    attempt.step("greeting", sock)
    return sock


def wrap(attempt: Attempt, sock: socket.socket) -> ssl.SSLSocket:
    attempt.step("tls", sock)
    tls = context_for(attempt.check).wrap_socket(sock, server_hostname=attempt.check.host)
    record(attempt, tls)
    return tls


def record(attempt: Attempt, sock: ssl.SSLSocket) -> None:
    """Note the TLS version and days to expiry, and warn when renewal is due."""
    attempt.tls_used = True
    expires = expiry(sock)
    days = None if expires is None else int((expires - time.time()) // 86400)
    attempt.tls = TlsInfo(sock.version(), days, expires)
    if days is not None and days < EXPIRY_WARNING_DAYS:
        attempt.warnings.append(
            f"the server's certificate expires in {days} day(s); ask the provider to renew it"
        )


def expiry(sock: ssl.SSLSocket) -> float | None:
    """The certificate's notAfter as a Unix time."""
    cert = sock.getpeercert()
    not_after = cert.get("notAfter") if cert else None
    if not isinstance(not_after, str):
        return None
    return float(ssl.cert_time_to_seconds(not_after))


def require_tls_or_consent(attempt: Attempt, offered: bool) -> bool:
    """Whether to upgrade with STARTTLS; without it, credentials go in clear only by consent."""
    if offered:
        return True
    check = attempt.check
    if not check.allow_insecure_auth:
        raise ProbeFailure(
            "insecure_auth_refused",
            f"{check.host}:{check.port} offers no STARTTLS, so the credentials were not sent",
        )
    warning = "the credentials were sent without TLS (incoming.allow_insecure_auth: true)"
    if warning not in attempt.warnings:  # once, however many sessions the attempt opens
        attempt.warnings.append(warning)
    return False


def hang_up(close: Callable[[], object]) -> None:
    """Close a client without masking the error that ended it.

    After a failed STARTTLS handshake the client's socket is already closed (ssl detached it),
    and imaplib/poplib raise EBADF from their close; that must not replace cert_untrusted.
    """
    with contextlib.suppress(OSError):
        close()


def send_goodbye(sock: socket.socket | None, line: bytes) -> None:
    """Best effort, without waiting for the reply: one round trip less per check."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.sendall(line)


class Reader:
    """What a check reads from its server, bounded: each receive waits only for what is left
    of the check's deadline (a socket timeout alone restarts on every byte a server drips),
    and one connection may send at most ``budget`` bytes (an endless answer or a huge
    literal ends as protocol_error instead of filling the memory).

    ``sock`` gives the connection's current socket (it changes after STARTTLS).
    """

    def __init__(
        self,
        attempt: Attempt,
        sock: Callable[[], socket.socket],
        budget: int = MAX_READ_BYTES,
    ) -> None:
        self._attempt, self._sock, self._left = attempt, sock, budget
        self._budget = budget
        self._buffer = bytearray()
        self._current: socket.socket | None = None

    def close(self) -> None:
        self._buffer.clear()

    def _follow(self) -> socket.socket:
        """The current socket; what was read before STARTTLS is never taken as after it."""
        sock = self._sock()
        if sock is not self._current:
            self._buffer.clear()
            self._current = sock
        return sock

    def readline(self, limit: int = -1) -> bytes:
        """One line (with its LF), at most ``limit`` bytes; shorter only at the end of data."""
        self._follow()
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0 and (limit < 0 or end < limit):
                return self._take(end + 1)
            if 0 <= limit <= len(self._buffer):
                return self._take(limit)
            if not self._fill():
                return self._take(len(self._buffer))

    def read(self, size: int) -> bytes:
        """``size`` bytes (fewer only at the end of data); over the budget fails at once."""
        self._follow()
        if size > self._left + len(self._buffer):
            raise self._too_much(f"announced an answer of {size:,} bytes")
        while len(self._buffer) < size and self._fill():
            pass
        return self._take(min(size, len(self._buffer)))

    def _take(self, size: int) -> bytes:
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken

    def _fill(self) -> bool:
        if self._left <= 0:
            raise self._too_much(f"sent over {self._budget // (1024 * 1024)} MiB")
        sock = self._follow()
        sock.settimeout(self._attempt.remaining())
        chunk = sock.recv(min(65536, self._left))
        self._left -= len(chunk)
        self._buffer += chunk
        return bool(chunk)

    def _too_much(self, what: str) -> ProbeFailure:
        return ProbeFailure(
            "protocol_error",
            f"the server {what} during {self._attempt.stage}; a mail server does not",
            HOSTILE_HINT,
        )


class BoundedReads:
    """For imaplib and poplib clients: everything they read goes through a ``Reader``.

    They read from ``self.file``, which they make with ``sock.makefile`` (again after
    STARTTLS); here ``file`` is always the attempt's reader, and what they made is closed.
    """

    _attempt: Attempt
    sock: Any
    _reader: Reader | None = None

    @property
    def file(self) -> Reader:
        if self._reader is None:
            self._reader = Reader(self._attempt, lambda: self.sock)
        return self._reader

    @file.setter
    def file(self, made: Any) -> None:
        if made is not None:
            hang_up(made.close)
