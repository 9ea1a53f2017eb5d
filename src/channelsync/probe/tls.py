"""Sockets and TLS for the probes: verified by default, with the resource's own CA if it has one.

Trust is the system store (which honours ``SSL_CERT_FILE``) plus the resource's ``tls.ca_file``,
read relative to the YAML file's folder. Contexts are cached: loading the system store costs
milliseconds, and a run may open hundreds of connections.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from pathlib import Path

from channelsync.probe.check import Attempt, Check, ProbeFailure, TlsInfo

EXPIRY_WARNING_DAYS = 21

_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_lock = threading.Lock()


def ca_path(check: Check) -> Path | None:
    if check.ca_file is None:
        return None
    path = Path(check.ca_file)
    return path if path.is_absolute() else check.base_dir / path


def context_for(check: Check) -> ssl.SSLContext:
    import os

    ca = ca_path(check)
    key = (str(ca) if ca else None, os.environ.get("SSL_CERT_FILE"))
    with _lock:
        ctx = _contexts.get(key)
        if ctx is None:
            ctx = ssl.create_default_context()
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if ca is not None:
                ctx.load_verify_locations(cafile=str(ca))
            _contexts[key] = ctx
        return ctx


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


def send_goodbye(sock: socket.socket | None, line: bytes) -> None:
    """Best effort, without waiting for the reply: one round trip less per check."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.sendall(line)
