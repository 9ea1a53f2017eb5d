"""SMTP with STARTTLS, implicit TLS or none: EHLO, AUTH, and optionally one test message."""

from __future__ import annotations

import re
import smtplib
import socket

from channelsync.probe.check import Attempt, Login, ProbeFailure, ServerRefusal
from channelsync.probe.tls import connect, context_for, record, send_goodbye

_MAX_LINE = 2048
_QUEUE_ID = re.compile(r"queued as\s+<?([^\s>]+)", re.I)


class _SMTP(smtplib.SMTP):
    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        super().__init__(timeout=attempt.timeout)
        self._host = attempt.check.host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return connect(self._attempt)

    def greeting(self, sock: socket.socket) -> int:
        """Read the greeting; anything but 220 is refused with the server's exact first line
        (smtplib's own reply drops the first four characters of a line it cannot parse)."""
        self.sock, self.file = sock, sock.makefile("rb")
        first = self.file.peek(_MAX_LINE)[:_MAX_LINE].split(b"\n")[0]
        code, _ = self.getreply()
        if code != 220:
            raise ServerRefusal(first)
        return code


def probe(attempt: Attempt, login: Login | None, send_to: str | None = None) -> None:
    check = attempt.check
    password = login is not None and login.password is not None
    if check.protocol == "smtp" and password and not check.allow_insecure_auth:
        raise ProbeFailure(
            "insecure_auth_refused",
            f"{check.host}:{check.port} has security: none, so nothing was sent (the password "
            "would travel without TLS)",
            "use security: starttls or ssl, or set allow_insecure_auth: true on the SmtpServer "
            "(or on the channel's outgoing section) to accept the risk",
        )
    client = _SMTP(attempt)
    try:
        client.greeting(connect(attempt))
        attempt.step("ehlo", client.sock)
        _expect(250, *client.ehlo())
        if check.protocol == "smtp-starttls":
            if not client.has_extn("starttls"):
                raise ProbeFailure(
                    "starttls_unavailable",
                    f"{check.host}:{check.port} does not offer STARTTLS after EHLO",
                )
            attempt.step("starttls", client.sock)
            client.starttls(context=context_for(check))
            record(attempt, client.sock)  # type: ignore[arg-type]
            attempt.step("ehlo", client.sock)
            _expect(250, *client.ehlo())
        elif check.protocol == "smtp":
            attempt.warnings.append(
                "security: none: mail and the password travel without TLS "
                "(allow_insecure_auth: true); use starttls or ssl"
                if password
                else "security: none: mail travels without TLS; use starttls or ssl"
            )
        if login is not None and login.password is not None:
            attempt.step("auth", client.sock)
            _authenticate(client, attempt, login)
        if send_to:
            attempt.step("send", client.sock)
            attempt.queue_id = _send(client, attempt, send_to)
    finally:
        send_goodbye(client.sock, b"QUIT\r\n")
        client.close()


def _expect(code: int, got: int, reply: bytes) -> None:
    if got != code:
        raise ServerRefusal(f"{got} {reply.decode('utf-8', 'replace')}")


def _expect_rcpt(code: int, reply: bytes) -> None:
    if code not in (250, 251):
        raise ServerRefusal(f"{code} {reply.decode('utf-8', 'replace')}")


def _one_line(*words: str) -> bool:
    return not any(c in w for w in words for c in "\r\n")


def _pipelined(client: _SMTP, sender: str, to: str, data: bytes) -> tuple[int, bytes]:
    """MAIL, RCPT and DATA in one write (RFC 2920 PIPELINING): two round trips less."""
    client.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{to}>\r\nDATA\r\n")
    mail, rcpt, start = client.getreply(), client.getreply(), client.getreply()
    _expect(250, *mail)
    _expect_rcpt(*rcpt)
    _expect(354, *start)
    quoted = re.sub(rb"(?m)^\.", b"..", data)  # dot-stuffing, as smtplib's data() does
    client.send(quoted + (b"" if quoted.endswith(b"\r\n") else b"\r\n") + b".\r\n")
    return client.getreply()


def _authenticate(client: _SMTP, attempt: Attempt, login: Login) -> None:
    host, port = attempt.check.host, attempt.check.port
    if not client.has_extn("auth"):
        hint = (
            "use security: starttls or ssl; this server offers AUTH only over TLS"
            if client.has_extn("starttls")
            else "check the port: this looks like a relay without authentication"
        )
        raise ProbeFailure("protocol_error", f"{host}:{port} offers no AUTH after EHLO", hint)
    offered = client.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise ProbeFailure(
            "protocol_error",
            f"{host}:{port} offers AUTH {' '.join(offered)}, but neither PLAIN nor LOGIN",
            "ask the provider which authentication the server accepts for passwords",
        )
    client.user, client.password = login.user, login.password or ""
    attempt.sasl(f"\0{client.user}\0{client.password}")
    attempt.sasl(client.password)  # AUTH LOGIN sends it alone
    authobject = client.auth_plain if mechanism == "PLAIN" else client.auth_login
    client.auth(mechanism, authobject)


def _send(client: _SMTP, attempt: Attempt, send_to: str) -> str | None:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    check = attempt.check
    sender = check.sender or f"channelsync-test@{check.host}"
    message = EmailMessage()
    message["From"] = sender
    message["To"] = send_to
    message["Subject"] = f"channelsync connection test: {check.name}"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="channelsync.invalid")
    message.set_content(
        f"This message was sent by 'channelsync test' to check the outgoing mail of "
        f"{check.kind} '{check.name}'. No reply is needed.\n"
    )
    data = attempt.message or message.as_bytes()
    if client.has_extn("pipelining") and _one_line(sender, send_to):
        code, reply = _pipelined(client, sender, send_to, data)
    else:
        _expect(250, *client.mail(sender))
        _expect_rcpt(*client.rcpt(send_to))
        code, reply = client.data(data)
    _expect(250, code, reply)
    found = _QUEUE_ID.search(reply.decode("utf-8", "replace"))
    return found.group(1) if found else None
