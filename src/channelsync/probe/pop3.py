"""POP3 and POP3 over SSL: log in and STAT; nothing is ever retrieved or deleted."""

from __future__ import annotations

import poplib
import socket
from collections.abc import Iterator

from channelsync.probe.check import Attempt, Login, ProbeFailure, ServerRefusal, needs_login
from channelsync.probe.oauth import xoauth2
from channelsync.probe.tls import (
    HOSTILE_HINT,
    BoundedReads,
    connect,
    context_for,
    hang_up,
    record,
    require_tls_or_consent,
    send_goodbye,
)

_MAX_LINE = 2048


class _POP3(BoundedReads, poplib.POP3):  # type: ignore[misc]
    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        self.sock = self.file = None
        try:
            super().__init__(attempt.check.host, attempt.check.port, timeout=attempt.timeout)
        except BaseException:
            self.close()  # poplib leaves the socket open when the greeting fails
            raise

    def _create_socket(self, timeout: float) -> socket.socket:
        return connect(self._attempt)


def probe(attempt: Attempt, login: Login | None, send_to: str | None = None) -> None:
    close(session(attempt, login))


def session(attempt: Attempt, login: Login | None) -> _POP3:
    """Logged in, with ``attempt.messages`` from STAT; the caller closes it (``close``)."""
    check = attempt.check
    login = needs_login(login)
    client = _POP3(attempt)
    try:
        if not check.implicit_tls:
            attempt.step("starttls", client.sock)
            if require_tls_or_consent(attempt, "STLS" in _capabilities(client)):
                client.stls(context=context_for(check))
                record(attempt, client.sock)
        attempt.step("auth", client.sock)
        if login.token is not None:
            _sasl(client, "XOAUTH2 " + attempt.sasl(xoauth2(login.user, login.token)))
        else:
            client.user(login.user)
            client.pass_(login.password or "")
        attempt.step("mailbox", client.sock)
        attempt.messages, _ = client.stat()
        return client
    except BaseException:
        close(client)
        raise


def close(client: _POP3) -> None:
    """QUIT without waiting for the answer: nothing is ever marked for deletion here."""
    send_goodbye(client.sock, b"QUIT\r\n")
    hang_up(client.close)


def listing(client: _POP3, command: str, limit: int) -> Iterator[bytes | None]:
    """The lines of the multi-line answer to ``command``, dot-unstuffed, at most ``limit``.

    A line over the POP3 limit is read to its end and given as None (poplib would stop in
    its middle); the caller reads the listing to its end or closes the session.
    """
    client.sock.sendall(f"{command}\r\n".encode())
    reply = client.file.readline(_MAX_LINE + 1)
    if not reply.startswith(b"+OK"):
        raise ServerRefusal(reply.rstrip(b"\r\n"))
    for _ in range(limit):
        line = client.file.readline(_MAX_LINE + 1)
        if not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = client.file.readline(_MAX_LINE + 1)
            if not line:
                raise EOFError(f"the answer to {command.split()[0]} ended early")
            yield None
            continue
        line = line.rstrip(b"\r\n")
        if line == b".":
            return
        yield line[1:] if line.startswith(b"..") else line
    raise ProbeFailure(
        "protocol_error",
        f"the answer to {command.split()[0]} is over {limit:,} lines; a mail server's is not",
        HOSTILE_HINT,
    )


def _capabilities(client: _POP3) -> dict[str, list[str]]:
    try:
        return client.capa()
    except poplib.error_proto:  # a server without CAPA offers no STLS either
        return {}


def _sasl(client: _POP3, command: str) -> None:
    """AUTH with an initial response; an error challenge ('+ <json>') is answered empty."""
    client.sock.sendall(f"AUTH {command}\r\n".encode())
    reply = client.file.readline(_MAX_LINE)
    if reply.startswith(b"+") and not reply.startswith(b"+OK"):
        client.sock.sendall(b"\r\n")
        reply = client.file.readline(_MAX_LINE)
    if not reply.startswith(b"+OK"):
        raise ServerRefusal(reply)
