"""IMAP and IMAP over SSL: log in, EXAMINE the inbox (read-only) and count its messages."""

from __future__ import annotations

import imaplib
import itertools
import re

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

_CAPABILITY = re.compile(rb"\[CAPABILITY ([^\]\r\n]*)\]", re.IGNORECASE)
_LITERAL = re.compile(rb"\{([0-9]{1,10})\}\r?\n?$")
# bounds of the replies read below (one mailbox's answers to LOGIN, EXAMINE, SEARCH, FETCH)
MAX_REPLY_LINES = 10_000  # untagged lines before the tagged answer
MAX_LITERAL = 64 * 1024  # one {N} literal's bytes

_INTERNALDATE = re.compile(
    rb'INTERNALDATE "([ 0-9]{1,2}-[A-Za-z]{3}-[0-9]{4} [0-9:]{8} [+-][0-9]{4})"'
)


class _IMAP(BoundedReads, imaplib.IMAP4):  # type: ignore[misc]
    """imaplib on a socket that ``tls.connect`` made, so that stages and TLS are ours."""

    def __init__(self, attempt: Attempt) -> None:
        self._attempt = attempt
        self._first_line: bytes | None = None
        self._asked = False  # capability() asked before: only the connection's own call
        self._own_tags = itertools.count(1)
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

    def open(self, host: str = "", port: int = 143, timeout: float | None = None) -> None:
        """The documented hook for a connection of our own (as imaplib's ``open`` does)."""
        self.host, self.port = host, port
        self.sock = connect(self._attempt)
        self.file = self.sock.makefile("rb")

    def capability(self) -> tuple[str, list[bytes | None]]:
        """At connection, the capabilities the greeting announced instead of asking: a round
        trip less. Any later call asks (after STARTTLS as RFC 3501 requires, after login for
        what the server adds then).
        """
        announced = None if self._asked else _CAPABILITY.search(self._first_line or b"")
        self._asked = True
        if announced:
            return "OK", [announced.group(1)]
        return super().capability()

    def tag(self) -> bytes:
        """A tag of our own for the commands sent without imaplib (pipelined)."""
        return b"CS%d" % next(self._own_tags)


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
        _read_stats(_Replies(client), attempt, *tags)


def _stat_tags(client: _IMAP) -> tuple[bytes, bytes]:
    return client.tag(), client.tag()


class _Replies:
    """The answers to the commands sent without imaplib (pipelined), read as they come.

    A server may finish pipelined commands in any order (Dovecot answers FETCH before
    SEARCH): answers to other tags are kept. Untagged lines are collected: ``untagged``
    maps EXISTS to the numbers, SEARCH to its text, FETCH (and others) to the whole line.
    Through imaplib's public ``readline``/``read`` only, every read bounded: lines by
    imaplib, their count by MAX_REPLY_LINES, literals by MAX_LITERAL.
    """

    def __init__(self, client: _IMAP) -> None:
        self.client = client
        self.untagged: dict[bytes, list[bytes]] = {}
        self._answers: dict[bytes, tuple[str, bytes]] = {}

    def answer(self, tag: bytes) -> tuple[str, bytes]:
        """The status (OK, NO, BAD) and text of the server's answer to ``tag``."""
        for _ in range(MAX_REPLY_LINES):
            if tag in self._answers:
                return self._answers.pop(tag)
            line = _reply_line(self.client)
            if line.startswith(b"* "):
                word, _, rest = line[2:].partition(b" ")
                if word.isdigit():  # "* 3 EXISTS", "* 1 FETCH (...)"
                    name = rest.partition(b" ")[0].upper()
                    self.untagged.setdefault(name, []).append(word if name == b"EXISTS" else line)
                else:
                    self.untagged.setdefault(word.upper(), []).append(rest)
            else:
                got, _, rest = line.partition(b" ")
                status, _, text = rest.partition(b" ")
                self._answers[got] = (status.decode("ascii", "replace").upper(), text)
        raise self.client.abort(f"more than {MAX_REPLY_LINES:,} lines before an answer")


def _reply_line(client: _IMAP) -> bytes:
    """One reply line without its CRLF, with any literals ({N} and N bytes) inside it."""
    parts = []
    for _ in range(MAX_REPLY_LINES):
        line = client.readline()
        if not line:
            raise client.abort("socket error: EOF")
        literal = _LITERAL.search(line)
        if literal is None:
            parts.append(line.rstrip(b"\r\n"))
            return b"".join(parts)
        size = int(literal.group(1))
        if size > MAX_LITERAL:
            raise client.abort(f"a literal of {size:,} bytes (more than {MAX_LITERAL:,})")
        parts.append(line[: literal.start()] + client.read(size))
    raise client.abort(f"more than {MAX_REPLY_LINES:,} literals in one reply")


def _read_stats(replies: _Replies, attempt: Attempt, search_tag: bytes, fetch_tag: bytes) -> None:
    import datetime as dt

    attempt.step("mailbox", replies.client.sock)
    searched, _ = replies.answer(search_tag)
    fetched, _ = replies.answer(fetch_tag)
    unseen = replies.untagged.get(b"SEARCH")
    dates = replies.untagged.get(b"FETCH")
    if searched == "OK" and unseen:
        attempt.unseen = len(b" ".join(unseen).split())
    elif searched == "OK":
        attempt.unseen = 0
    first = dates[0] if fetched == "OK" and dates else None
    found = _INTERNALDATE.search(first) if first is not None else None
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
    login_tag, examine_tag = client.tag(), client.tag()
    command = b"%s LOGIN %s %s\r\n%s EXAMINE INBOX\r\n"
    batch = command % (login_tag, _quoted(user), _quoted(password), examine_tag)
    stat_tags = _stat_tags(client) if stats else None
    if stat_tags:
        batch += _STATS % stat_tags
    client.send(batch)
    replies = _Replies(client)
    for tag, stage in ((login_tag, "auth"), (examine_tag, "mailbox")):
        attempt.step(stage, client.sock)
        status, text = replies.answer(tag)
        if status != "OK":
            raise ServerRefusal(text or status)
    exists = replies.untagged.pop(b"EXISTS", [b"0"])
    attempt.messages = int(_text(exists[-1]) or 0)
    if stat_tags:
        _read_stats(replies, attempt, *stat_tags)
    return attempt.messages


def _text(value: object) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def close(client: _IMAP) -> None:
    _close(client)


def _close(client: _IMAP) -> None:
    send_goodbye(client.sock, client.tag() + b" LOGOUT\r\n")
    hang_up(client.shutdown)
