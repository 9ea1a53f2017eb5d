"""IMAP and IMAP over SSL: log in, EXAMINE the inbox (read-only) and count its messages."""

from __future__ import annotations

import imaplib
import re
import socket

from channelsync.probe.check import Attempt, Login, ServerRefusal, needs_login
from channelsync.probe.oauth import xoauth2
from channelsync.probe.tls import (
    BoundedReads,
    connect,
    context_for,
    hang_up,
    record,
    require_tls_or_consent,
    send_goodbye,
)

_INTERNALDATE = re.compile(
    rb'INTERNALDATE "([ 0-9]{1,2}-[A-Za-z]{3}-[0-9]{4} [0-9:]{8} [+-][0-9]{4})"'
)


class _IMAP(BoundedReads, imaplib.IMAP4):  # type: ignore[misc]
    """imaplib on a socket that ``tls.connect`` made, so that stages and TLS are ours."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        self._first_line: bytes | None = None
        try:
            super().__init__(attempt.check.host, attempt.check.port, timeout=attempt.timeout)
        except imaplib.IMAP4.error:
            if attempt.stage == "greeting" and self._first_line:
                raise ServerRefusal(self._first_line) from None  # imaplib may lose the words
            raise

    def readline(self) -> bytes:
        line = super().readline()
        if self._first_line is None:
            self._first_line = line
        return line

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return connect(self._attempt)

    def _get_capabilities(self) -> None:
        """Take the capabilities the greeting announced instead of asking: a round trip less.

        After STARTTLS they are asked for again, as RFC 3501 requires.
        """
        announced = self.untagged_responses.pop("CAPABILITY", None)
        if announced and not self._tls_established:
            self.capabilities = tuple(_text(announced[-1]).upper().split())
            return
        super()._get_capabilities()  # type: ignore[misc]


def probe(attempt: Attempt, login: Login | None, send_to: str | None = None) -> None:
    _close(session(attempt, login, stats=True))


_STATS = b"%s UID SEARCH UNSEEN\r\n%s FETCH 1 (INTERNALDATE)\r\n"


def _mailbox_stats(client: _IMAP, attempt: Attempt) -> None:
    """Unseen count and the first message's INTERNALDATE, read-only (SEARCH, FETCH).

    Sent as two pipelined commands; a server that refuses either (BAD/NO) just gets no
    figures, and an empty mailbox needs neither.
    """
    if attempt.messages:
        tags = _stat_tags(client)
        client.send(_STATS % tags)
        _read_stats(client, attempt, *tags)


def _stat_tags(client: _IMAP) -> tuple[bytes, bytes]:
    tags = (client._new_tag(), client._new_tag())
    for tag in tags:
        client.tagged_commands[tag] = None  # before sending: the answers may come at once
    return tags


def _read_stats(client: _IMAP, attempt: Attempt, search_tag: bytes, fetch_tag: bytes) -> None:
    import datetime as dt

    attempt.step("mailbox", client.sock)
    searched, _ = client._get_tagged_response(search_tag)
    fetched, _ = client._get_tagged_response(fetch_tag)
    unseen = client.untagged_responses.pop("SEARCH", None)
    dates = client.untagged_responses.pop("FETCH", None)
    if searched == "OK" and unseen:
        attempt.unseen = len(b" ".join(u for u in unseen if isinstance(u, bytes)).split())
    elif searched == "OK":
        attempt.unseen = 0
    first = dates[0] if fetched == "OK" and dates else None
    found = _INTERNALDATE.search(first) if isinstance(first, bytes) else None
    if found:
        stamp = dt.datetime.strptime(found.group(1).decode().strip(), "%d-%b-%Y %H:%M:%S %z")
        attempt.oldest = stamp.astimezone(dt.UTC)


def session(attempt: Attempt, login: Login | None, *, stats: bool = False) -> _IMAP:
    """Logged in with INBOX open read-only (EXAMINE); ``attempt.messages`` is its count,
    and with ``stats`` the unseen count and the oldest date too.

    The caller closes the session (``close``); on a failure it is closed here.
    """
    check = attempt.check
    login = needs_login(login)
    client = _IMAP(attempt)
    try:
        if not check.implicit_tls:
            attempt.step("starttls", client.sock)
            if require_tls_or_consent(attempt, "STARTTLS" in client.capabilities):
                client.starttls(ssl_context=context_for(check))
                record(attempt, client.sock)
        attempt.step("auth", client.sock)
        if login.token is not None:
            response = xoauth2(login.user, login.token)
            attempt.sasl(response)
            client.authenticate(
                "XOAUTH2", lambda challenge: b"" if challenge else response.encode()
            )
        elif "LOGINDISABLED" in client.capabilities:
            plain = f"\0{login.user}\0{login.password}"
            attempt.sasl(plain)
            client.authenticate("PLAIN", lambda challenge: plain.encode())
        elif _pipelinable(login.user, login.password or ""):
            attempt.messages = _login_and_examine(
                client, attempt, login.user, login.password or "", stats=stats
            )
            client.state, client.is_readonly = "SELECTED", True  # as imaplib's own select sets
            return client
        else:
            client.login(login.user, login.password or "")
        attempt.step("mailbox", client.sock)
        status, data = client.select("INBOX", readonly=True)
        if status != "OK":
            raise ServerRefusal(data[-1] if data else status)
        attempt.messages = int(data[0] or 0)
        if stats:
            _mailbox_stats(client, attempt)
        return client
    except BaseException:
        _close(client)
        raise


def _pipelinable(*words: str) -> bool:
    return all(w.isascii() and w.isprintable() for w in words)


def _quoted(text: str) -> bytes:
    return ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"').encode()


def _login_and_examine(
    client: _IMAP, attempt: Attempt, user: str, password: str, *, stats: bool = False
) -> int:
    """LOGIN and EXAMINE INBOX sent together (RFC 3501 5.5 pipelining): a round trip less.

    EXAMINE opens the mailbox read-only; if LOGIN fails, the server refuses it too. With
    ``stats`` the unseen and oldest-date queries go in the same batch.
    """
    login_tag, examine_tag = client._new_tag(), client._new_tag()
    for tag in (login_tag, examine_tag):
        client.tagged_commands[tag] = None
    command = b"%s LOGIN %s %s\r\n%s EXAMINE INBOX\r\n"
    batch = command % (login_tag, _quoted(user), _quoted(password), examine_tag)
    stat_tags = _stat_tags(client) if stats else None
    if stat_tags:
        batch += _STATS % stat_tags
    client.send(batch)
    for tag, stage in ((login_tag, "auth"), (examine_tag, "mailbox")):
        attempt.step(stage, client.sock)
        status, data = client._get_tagged_response(tag)
        if status != "OK":
            raise ServerRefusal(data[-1] if data else status)
    exists = client.untagged_responses.pop("EXISTS", [b"0"])
    attempt.messages = int(_text(exists[-1]) or 0)
    if stat_tags:
        _read_stats(client, attempt, *stat_tags)
    return attempt.messages


def _text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def close(client: _IMAP) -> None:
    _close(client)


def _close(client: _IMAP) -> None:
    send_goodbye(client.sock, client._new_tag() + b" LOGOUT\r\n")
    hang_up(client.shutdown)
