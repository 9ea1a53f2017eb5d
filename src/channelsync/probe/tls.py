"""Sockets and TLS for the probes: verified by default, trusting what ``channelsync.trust``
says for the resource (its ``tls.ca_file``, else ``SSL_CERT_FILE``, else the system store).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Callable

from channelsync.probe.check import Attempt, Check, ProbeFailure, TlsInfo
from channelsync.trust import Trust, TrustUnavailable, trust_for, unreadable_hint

EXPIRY_WARNING_DAYS = 21


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
    days = days_to_expiry(sock)
    attempt.tls = TlsInfo(sock.version(), days)
    if days is not None and days < EXPIRY_WARNING_DAYS:
        attempt.warnings.append(
            f"the server's certificate expires in {days} day(s); ask the provider to renew it"
        )


def days_to_expiry(sock: ssl.SSLSocket) -> int | None:
    cert = sock.getpeercert()
    not_after = cert.get("notAfter") if cert else None
    if not isinstance(not_after, str):
        return None
    return int((ssl.cert_time_to_seconds(not_after) - time.time()) // 86400)


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
    attempt.warnings.append(
        "the credentials were sent without TLS (incoming.allow_insecure_auth: true)"
    )
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
