"""End-to-end round trips: a probe message out through a channel's real sending path, and
back into the mailbox the channel polls.

The probe goes From the channel's address To the same address, through the SMTP server and
with the credentials the contact centre will really use (the channel's own with ``override``,
else the server's). The mailbox is then watched read-only (IMAP ``EXAMINE`` + ``UID SEARCH
HEADER``; POP3 ``UIDL`` + ``TOP`` of new messages) until the probe arrives or the time is up.
Nothing is deleted, flagged or moved, except that ``cleanup`` removes the probe messages this
run sent (matched by header and id), and only those.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from channelsync.defaults import (
    BUILTIN_SMTP_SERVER,
    E2E_CONCURRENCY,
    E2E_TIMEOUT,
    PROBE_TIMEOUT,
    tenant_default_server,
)
from channelsync.probe.check import Attempt, Check, Diagnosis, Login

if TYPE_CHECKING:
    from channelsync.bindings import Bindings
    from channelsync.loader import Loaded
    from channelsync.secrets import Resolver

PROBE_HEADER = "X-Channelsync-Probe"
SUBJECT_PREFIX = "[channelsync probe]"
CODES = ("e2e_timeout", "e2e_send_failed", "e2e_mailbox_failed", "e2e_not_testable")
_FIRST_POLL, _MAX_POLL = 0.1, 2.0
_MAX_IMAP_POLL = 0.5  # a look over the open IMAP session is cheap (POP3 logs in each time)
_MAX_HEADER_BYTES = 256 * 1024
_MAX_MESSAGES = 500_000  # lines of a UIDL listing
_MAX_HEADER_LINES = 1_000_000  # lines of a TOP answer, read to its end even when skipped
_HEADER_PART = f"(BODY.PEEK[HEADER]<0.{_MAX_HEADER_BYTES}>)"  # unread, and at most this much
_VERDICT = re.compile(r"\b(spf|dkim|dmarc)=([a-z]+)", re.I)

Status = Literal["arrived", "timeout", "failed", "not_testable"]


@dataclass
class Trip:
    """What one channel's round trip found."""

    name: str
    email: str
    status: Status
    probe_id: str | None = None
    sent_through: str | None = None  # endpoint of the SMTP server
    mailbox: str | None = None  # endpoint of the incoming server
    latency_ms: int | None = None
    hops: list[str] = field(default_factory=list)
    authentication: dict[str, str] = field(default_factory=dict)
    cleaned: int | None = None
    diagnosis: Diagnosis | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("arrived", "not_testable")

    @property
    def subject(self) -> str:
        return f"{SUBJECT_PREFIX} {self.probe_id}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "email": self.email,
            "status": self.status,
            "ok": self.ok,
            "probe_id": self.probe_id,
            "sent_through": self.sent_through,
            "mailbox": self.mailbox,
            "latency_ms": self.latency_ms,
            "hops": list(self.hops),
            "authentication": dict(self.authentication),
            "cleaned": self.cleaned,
            "error": self.diagnosis.to_json() if self.diagnosis else None,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class _Plan:
    channel: Loaded
    incoming: Check
    outgoing: Check | None
    reason: str = ""


def plan(channels: Sequence[Loaded], servers: Sequence[Loaded]) -> list[_Plan]:
    """Which path each channel's probe takes; a channel on VCC Internal gets the reason why not."""
    from channelsync.probe.runner import _incoming, _outgoing

    known = {s.name: s for s in servers}
    default = tenant_default_server(s.data for s in servers)
    plans = []
    for channel in channels:
        out = channel.data.get("outgoing")
        server_name = out["server"] if out else default
        server = known.get(server_name)
        incoming = _incoming(channel)
        if server_name == BUILTIN_SMTP_SERVER or server is None:
            reason = (
                f"not testable from outside: replies leave through '{BUILTIN_SMTP_SERVER}', the "
                "tenant's internal SMTP server, from the tenant's default address (the vendor "
                "does not recommend it)"
            )
            plans.append(_Plan(channel, incoming, None, reason))
            continue
        if out and out.get("override"):
            sending = _outgoing(server, channel, out)
        else:
            sending = replace(_outgoing(server, None, None), sender=channel.data["email"])
        plans.append(_Plan(channel, incoming, sending))
    return plans


def run_trips(
    channels: Sequence[Loaded],
    servers: Sequence[Loaded],
    *,
    e2e_timeout: float = E2E_TIMEOUT,
    timeout: float = PROBE_TIMEOUT,
    concurrency: int = E2E_CONCURRENCY,
    cleanup: bool = False,
    bindings: Bindings | None = None,
    resolver: Resolver | None = None,
) -> list[Trip]:
    """Every channel's round trip, concurrently; the run takes about the slowest delivery.
    ``resolver``: the run's secrets (default: one for these trips). The trips mostly wait,
    so they are not held to the connection tests' concurrency."""
    from channelsync.secrets import Resolver

    plans = plan(channels, servers)
    if not plans:
        return []
    resolver = resolver or Resolver()
    workers = max(1, min(concurrency, len(plans)))
    stop = threading.Event()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="e2e")
    try:
        futures = [
            pool.submit(
                _trip,
                p,
                e2e_timeout=e2e_timeout,
                timeout=timeout,
                cleanup=cleanup,
                bindings=bindings,
                resolver=resolver,
                stop=stop,
            )
            for p in plans
        ]
        trips = [f.result() for f in futures]
    except BaseException:
        # Ctrl-C: stop at once, as run_checks does; the trips under way end at their next read
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return trips


def _trip(
    p: _Plan,
    *,
    e2e_timeout: float,
    timeout: float,
    cleanup: bool,
    bindings: Bindings | None,
    resolver: Resolver,
    stop: threading.Event | None = None,
) -> Trip:
    email = p.channel.data["email"]
    incoming = p.incoming
    mailbox = f"{incoming.protocol}://{incoming.host}:{incoming.port}"
    trip = Trip(p.channel.name, email, "not_testable", mailbox=mailbox)
    if p.outgoing is None:
        trip.diagnosis = Diagnosis("e2e_not_testable", p.reason, _VCC_HINT)
        return trip
    trip.probe_id = secrets.token_hex(8)
    trip.sent_through = f"{p.outgoing.protocol}://{p.outgoing.host}:{p.outgoing.port}"
    looked = Attempt(incoming, timeout, resolver=resolver, stop=stop)
    try:
        before = _before(looked, bindings)
    except Exception as exc:  # a failure becomes a diagnosis, like every check's
        return _mailbox_failed(trip, exc, looked)
    # the watch's budget starts once the probe is out (below): e2e_timeout to arrive, and
    # timeout more for the last look at the mailbox to finish
    watch = Attempt(incoming, timeout + e2e_timeout, resolver=resolver, stop=stop)
    early = _Early(watch, bindings) if incoming.protocol.startswith("imap") else None
    failed = _send(p.outgoing, email, _message(trip), timeout, bindings, resolver, stop)
    if failed is not None:
        if early is not None:
            early.discard()
        trip.status = "failed"
        trip.diagnosis = Diagnosis(
            "e2e_send_failed",
            f"sending the probe failed: {failed.code}: {failed.message}",
            failed.hint,
        )
        return trip
    watch.started = sent = time.monotonic()
    try:
        found = _watch(watch, trip, sent + e2e_timeout, cleanup, before, bindings, early)
    except Exception as exc:  # a failure becomes a diagnosis, like every check's
        return _mailbox_failed(trip, exc, watch)
    trip.warnings.extend(dict.fromkeys(looked.warnings + watch.warnings))
    if found is None:
        trip.status = "timeout"
        trip.diagnosis = Diagnosis(
            "e2e_timeout",
            f"the probe '{trip.subject}' did not arrive in {mailbox} within {e2e_timeout:g} s",
            f"the contact centre polls this mailbox and may have taken the probe into a queue: "
            f"look for the subject '{trip.subject}' in the queues; otherwise check where mail "
            f"for {email.rsplit('@', 1)[-1]} goes (channelsync test --dns) and the sending "
            "server's queue",
        )
        return trip
    trip.status = "arrived"
    trip.latency_ms = round((found - sent) * 1000)
    return trip


def _mailbox_failed(trip: Trip, exc: Exception, attempt: Attempt) -> Trip:
    from channelsync.probe.diagnose import diagnose

    failed = diagnose(exc, attempt)
    trip.status = "failed"
    trip.diagnosis = Diagnosis(
        "e2e_mailbox_failed",
        f"watching the mailbox failed: {failed.code}: {failed.message}",
        failed.hint,
    )
    return trip


_VCC_HINT = (
    "give the channel a custom SmtpServer (outgoing.server) to test the path its replies take"
)


def _message(trip: Trip) -> bytes:
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    message = EmailMessage()
    message["From"] = trip.email
    message["To"] = trip.email
    message["Subject"] = trip.subject
    message[PROBE_HEADER] = trip.probe_id
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="channelsync.invalid")
    message.set_content(
        f"This message was sent by 'channelsync test --end-to-end' to check that mail to "
        f"{trip.email} reaches the mailbox of channel '{trip.name}'. If it reached a queue, "
        "close it without replying.\n"
    )
    return message.as_bytes()


def _send(
    check: Check,
    to: str,
    message: bytes,
    timeout: float,
    bindings: Bindings | None,
    resolver: Resolver,
    stop: threading.Event | None = None,
) -> Diagnosis | None:
    from channelsync.probe import smtp
    from channelsync.probe.diagnose import diagnose
    from channelsync.probe.runner import _login

    attempt = Attempt(check, timeout, resolver=resolver, stop=stop)
    attempt.message = message
    try:
        smtp.probe(attempt, _login(attempt, bindings), to)
    except Exception as exc:  # every failure becomes a diagnosis
        return diagnose(exc, attempt)
    return None


def _before(attempt: Attempt, bindings: Bindings | None) -> set[bytes]:
    """POP3: the UIDs in the mailbox before the probe is sent (IMAP searches by header)."""
    if attempt.check.protocol.startswith("imap"):
        return set()
    from channelsync.probe import pop3
    from channelsync.probe.runner import _login

    client = pop3.session(attempt, _login(attempt, bindings))
    try:
        return {uid for _, uid in _uidl(client)}
    finally:
        pop3.close(client)


def _watch(
    attempt: Attempt,
    trip: Trip,
    deadline: float,
    cleanup: bool,
    before: set[bytes],
    bindings: Bindings | None,
    early: _Early | None = None,
) -> float | None:
    """When the probe was first seen (monotonic), or None when the deadline passed first."""
    from channelsync.probe.runner import _login

    if attempt.check.protocol.startswith("imap"):
        early = early or _Early(attempt, bindings)
        return _watch_imap(attempt, early.result(), trip, deadline, cleanup)
    return _watch_pop3(attempt, _login(attempt, bindings), trip, deadline, cleanup, before)


class _Early:
    """The IMAP session of a watch, opened while the probe goes out: a login's wait less."""

    def __init__(self, attempt: Attempt, bindings: Bindings | None) -> None:
        self._client: Any = None
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._open, args=(attempt, bindings), daemon=True)
        self._thread.start()

    def _open(self, attempt: Attempt, bindings: Bindings | None) -> None:
        from channelsync.probe import imap
        from channelsync.probe.runner import _login

        try:
            self._client = imap.session(attempt, _login(attempt, bindings))
        except Exception as exc:  # given to the watch, which diagnoses it
            self._error = exc

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._client

    def discard(self) -> None:
        from channelsync.probe import imap

        self._thread.join()
        if self._client is not None:
            imap.close(self._client)


def _watch_imap(
    attempt: Attempt, client: Any, trip: Trip, deadline: float, cleanup: bool
) -> float | None:
    from channelsync.probe import imap

    try:
        pause = _FIRST_POLL
        while True:
            attempt.step("search", client.sock)
            uids = _search(client, trip)
            if uids:
                seen = time.monotonic()
                status, data = client.uid("FETCH", uids[0], _HEADER_PART)
                header = (
                    data[0][1] if status == "OK" and data and isinstance(data[0], tuple) else b""
                )
                _read_headers(trip, header)
                if cleanup:
                    trip.cleaned = _expunge_imap(client, attempt, trip)
                return seen
            if time.monotonic() + pause > deadline:
                return None
            attempt.pause(pause)
            pause = min(pause * 1.5, _MAX_IMAP_POLL)
            client.noop()
    finally:
        imap.close(client)


def _search(client: Any, trip: Trip) -> list[str]:
    from channelsync.probe.check import ServerRefusal

    status, data = client.uid("SEARCH", "HEADER", PROBE_HEADER, trip.probe_id)
    if status != "OK":
        raise ServerRefusal(data[-1] if data else status)
    return data[0].decode("ascii", "replace").split() if data and data[0] else []


def _expunge_imap(client: Any, attempt: Attempt, trip: Trip) -> int:
    """Delete this run's probe by UID only (UIDPLUS), so no other message is expunged."""
    from channelsync.probe.check import ServerRefusal

    attempt.step("cleanup", client.sock)
    _, announced = client.capability()  # what the greeting listed is from before login
    if b"UIDPLUS" not in (announced[-1] or b"").upper().split():
        attempt.warnings.append(
            "the probe was left in the mailbox: the server lacks UIDPLUS (UID EXPUNGE), and a "
            "plain EXPUNGE could remove other messages marked deleted"
        )
        return 0
    status, data = client.select("INBOX")
    if status != "OK":
        raise ServerRefusal(data[-1] if data else status)
    uids = _search(client, trip)
    if not uids:
        return 0
    numbers = ",".join(uids)
    for command in (("STORE", numbers, "+FLAGS.SILENT", r"(\Deleted)"), ("EXPUNGE", numbers)):
        status, data = client.uid(*command)
        if status != "OK":
            raise ServerRefusal(data[-1] if data else status)
    return len(uids)


def _watch_pop3(
    attempt: Attempt,
    login: Login | None,
    trip: Trip,
    deadline: float,
    cleanup: bool,
    known: set[bytes],
) -> float | None:
    """POP3 shows a mailbox as it was at login: each look is a new session."""
    from channelsync.probe import pop3

    pause = _FIRST_POLL
    while True:
        client = pop3.session(attempt, login)
        try:
            attempt.step("search", client.sock)
            for number, uid in _uidl(client):
                if uid in known:
                    continue
                known.add(uid)
                header = _top(client, number)
                if header is None or _probe_id_of(header) != trip.probe_id:
                    continue
                seen = time.monotonic()
                _read_headers(trip, header)
                if cleanup:
                    client.dele(number)
                    client.quit()  # DELE takes effect at QUIT
                    trip.cleaned = 1
                return seen
        finally:
            pop3.close(client)
        if time.monotonic() + pause > deadline:
            return None
        attempt.pause(pause)
        pause = min(pause * 1.5, _MAX_POLL)


def _top(client: Any, number: int) -> bytes | None:
    """TOP n 0 (the header), or None when it is over ``_MAX_HEADER_BYTES`` or has a line over
    the POP3 limit: not a probe, and skipped (read to its end, none of it kept)."""
    from channelsync.probe import pop3

    lines: list[bytes] = []
    size = 0
    for line in pop3.listing(client, f"TOP {number} 0", _MAX_HEADER_LINES):
        size += _MAX_HEADER_BYTES + 1 if line is None else len(line) + 2
        if size <= _MAX_HEADER_BYTES and line is not None:
            lines.append(line)
    return b"\n".join(lines) if size <= _MAX_HEADER_BYTES else None


def _uidl(client: Any) -> list[tuple[int, bytes]]:
    from channelsync.probe import pop3
    from channelsync.probe.check import ProbeFailure

    listing = []
    for line in pop3.listing(client, "UIDL", _MAX_MESSAGES):
        number, _, uid = (line or b"").partition(b" ")
        if not number.isdigit() or not uid.strip():
            raise ProbeFailure(
                "protocol_error",
                f"the UIDL listing has a line that is not 'number uid': {(line or b'')[:60]!r}",
            )
        listing.append((int(number), uid.strip()))
    return listing


def _probe_id_of(header: bytes) -> str | None:
    from email.parser import BytesHeaderParser
    from email.policy import default

    value = BytesHeaderParser(policy=default).parsebytes(header).get(PROBE_HEADER)
    return str(value).strip() if value is not None else None


def _read_headers(trip: Trip, header: bytes) -> None:
    """The hops (oldest first) from Received, and the verdicts from Authentication-Results."""
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    message = BytesHeaderParser(policy=compat32).parsebytes(header[:_MAX_HEADER_BYTES])
    for received in reversed(message.get_all("Received") or []):
        text = " ".join(str(received).split())
        by = re.search(r"\bby\s+(\S+)", text)
        origin = re.search(r"\bfrom\s+(\S+)", text)
        parts = [m.group(1).rstrip(";") for m in (origin, by) if m]
        if parts:
            trip.hops.append(" -> ".join(parts))
    for results in message.get_all("Authentication-Results") or []:
        for method, verdict in _VERDICT.findall(str(results)):
            trip.authentication.setdefault(method.lower(), verdict.lower())
