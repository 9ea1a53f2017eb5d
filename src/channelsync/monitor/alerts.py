"""Alerts through apprise URLs (Slack, Microsoft Teams, email, a generic webhook...).

The URLs are secrets (a webhook's path or an SMTP password is a credential): they are given
as references (``${env:NAME}``, ``${file:PATH}``), read once at start-up, and never logged;
a failed delivery is logged as "destination #N of tenant T". Sending runs on a thread of its
own behind a bounded queue, each delivery within apprise's connect and read timeouts, so a
slow or dead receiver never delays a check: when the queue is full, the alert is dropped and
that is logged.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from channelsync.errors import ChannelsyncError, visible

if TYPE_CHECKING:
    from channelsync.monitor.history import Change, CheckKey, CheckResult
    from channelsync.notices import Notice
    from channelsync.probe.check import Check

log = logging.getLogger("channelsync.monitor")
QUEUE_SIZE = 256
SEND_TIMEOUT = 5.0  # seconds to connect, and to read, per destination
CERT_DAYS = 21  # a certificate is alerted this many days before it expires
MAX_QUOTED = 500  # characters of a mail server's (or a drift report's) words in one alert
# what a chat acts on in text: a mention of everyone, and a markdown link that hides its URL
_MENTION = re.compile(r"@(?=(?:everyone|here|channel|all|room)\b)", re.IGNORECASE)
_LINK = re.compile(r"\]\(")
ALL_TENANTS = "*"


@dataclass(frozen=True)
class Alert:
    tenant: str
    title: str
    body: str
    failing: bool = False  # apprise's "failure" type (red), else "info"


def parse_destination(text: str) -> tuple[str, str]:
    """``[TENANT=]REFERENCE`` (``--alert``): the tenant (every tenant: ``*``) and the
    reference of the URL; ChannelsyncError names what is wrong."""
    from channelsync.secrets import parse_ref

    tenant, sep, ref = text.partition("=")
    if not sep or tenant.startswith("$"):
        tenant, ref = ALL_TENANTS, text
    if parse_ref(ref) is None:
        raise ChannelsyncError(
            "--alert takes a secret reference to an apprise URL, such as "
            "--alert '${env:ALERT_URL}' or --alert 'TENANT=${file:/run/secrets/alert-url}' "
            "(the URL itself holds credentials, so it never goes on a command line)"
        )
    return tenant, ref


def resolve_destinations(given: Sequence[str]) -> dict[str, list[str]]:
    """Tenant -> the apprise URLs of its alerts, read now (an unreadable secret or a URL
    apprise does not know stops the server from starting, naming the reference only)."""
    from channelsync.secrets import Resolver, SecretUnavailable, parse_ref

    resolver = Resolver()
    found: dict[str, list[str]] = {}
    for text in given:
        tenant, ref = parse_destination(text)
        parsed = parse_ref(ref)
        assert parsed is not None
        try:
            url = resolver.resolve(parsed).strip()
        except SecretUnavailable as exc:
            raise ChannelsyncError(f"--alert {ref}: {exc}") from None
        if _instance(url) is None:
            raise ChannelsyncError(
                f"--alert {ref}: its value is not an apprise URL apprise can send to "
                "(e.g. json://host/path, slack://..., mailtos://...)"
            )
        found.setdefault(tenant, []).append(url)
    return found


def _apprise() -> Any:
    # apprise's plug-ins import the deprecated imghdr module; not our warning to raise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise.instantiate("json://localhost")  # loads the plug-ins once
    logging.getLogger("apprise").disabled = True  # its log lines may name the URL
    return apprise


def _instance(url: str) -> Any:
    apprise = _apprise()
    found = apprise.Apprise.instantiate(url)
    if not found:
        return None
    found.socket_connect_timeout = SEND_TIMEOUT
    found.socket_read_timeout = SEND_TIMEOUT
    return found


class AlertSender:
    """Delivers alerts on its own thread; ``send`` never blocks."""

    def __init__(self, destinations: Mapping[str, Sequence[str]]) -> None:
        self._urls = {tenant: list(urls) for tenant, urls in destinations.items()}
        self._queue: queue.Queue[Alert | None] = queue.Queue(QUEUE_SIZE)
        self._thread: threading.Thread | None = None
        self.sent = 0  # delivered to every destination
        self.dropped = 0

    def destinations(self, tenant: str) -> list[str]:
        return self._urls.get(tenant, []) + self._urls.get(ALL_TENANTS, [])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def send(self, alert: Alert) -> None:
        if not self.destinations(alert.tenant):
            return
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            self.dropped += 1
            log.warning("monitor: alert queue full; dropped: %s", alert.title)

    def stop(self, timeout: float = SEND_TIMEOUT) -> None:
        if self._thread is None:
            return
        left = 0
        with contextlib.suppress(queue.Empty):  # what is still queued goes with the process
            while True:
                self._queue.get_nowait()
                left += 1
        if left:
            log.warning("monitor: stopping; %d alert(s) not sent", left)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while (alert := self._queue.get()) is not None:
            delivered = True
            for i, url in enumerate(self.destinations(alert.tenant), 1):
                if not self._deliver(url, alert):
                    delivered = False
                    log.warning(
                        "monitor: alert not delivered to destination #%d of tenant '%s': %s",
                        i,
                        alert.tenant,
                        alert.title,
                    )
            if delivered:
                self.sent += 1
                log.info("monitor: alert sent: %s", alert.title)

    def _deliver(self, url: str, alert: Alert) -> bool:
        try:
            apprise = _apprise()
            target = apprise.Apprise()
            instance = _instance(url)
            if instance is None:
                return False
            target.add(instance)
            kind = apprise.NotifyType.FAILURE if alert.failing else apprise.NotifyType.INFO
            # plain text: each plug-in escapes its own markup (Slack's <!channel>, <url|text>)
            text = apprise.NotifyFormat.TEXT
            return bool(
                target.notify(
                    body=alert.body, title=alert.title, notify_type=kind, body_format=text
                )
            )
        except Exception:  # a plug-in's failure: its words may hold the URL
            return False


# --- what an alert says ---------------------------------------------------------------------


def quoted(text: str | None, limit: int = MAX_QUOTED) -> str:
    """Words an alert quotes from a mail server's reply (or a drift report): one line of at
    most ``limit`` characters, hidden characters as \\uXXXX, and no mention or markdown link a
    Slack, Teams or Discord channel would act on (``@ here``, ``] (``)."""
    line = _LINK.sub("] (", _MENTION.sub("@ ", visible(" ".join(str(text or "").split()))))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _subject(key: CheckKey) -> str:
    return f"{key.kind} '{key.name}' ({key.check})"


def _stamp(when: float) -> str:
    return dt.datetime.fromtimestamp(when, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def for_change(change: Change) -> Alert:
    """passing -> failing with the diagnosis and its hint; failing -> passing."""
    key, result = change.key, change.result
    where = f"tenant '{key.tenant}', {result.endpoint}, {_stamp(result.at)}"
    if change.state == "failing":
        return Alert(
            key.tenant,
            f"channelsync: {_subject(key)} is failing",
            f"{where}: {result.code}: {quoted(result.message)}\nWhat to do: {quoted(result.hint)}",
            failing=True,
        )
    return Alert(
        key.tenant,
        f"channelsync: {_subject(key)} passes again",
        f"{where}: the connection test passes again",
    )


def for_certificate(result: CheckResult, now: float) -> Alert | None:
    """A certificate that expires within ``CERT_DAYS`` days (None: not so soon)."""
    expires = result.cert_expires_at
    if expires is None or expires - now >= CERT_DAYS * 86400:
        return None
    days = int((expires - now) // 86400)
    when = f"expires in {days} day(s)" if days >= 0 else "has expired"
    return Alert(
        result.key.tenant,
        f"channelsync: the certificate of {result.endpoint} {when}",
        f"tenant '{result.key.tenant}', {_subject(result.key)}: the server's certificate "
        f"{when} (on {_stamp(expires)}); ask the provider to renew it",
    )


def for_notice(key: CheckKey, notice: Notice, today: dt.date) -> Alert:
    return Alert(
        key.tenant,
        f"channelsync: {notice.provider} changes sign-in for {_subject(key)}",
        f"tenant '{key.tenant}', {_subject(key)}: {notice.warning(today)}",
    )


def for_result(check: Check, result: CheckResult, now: float) -> list[tuple[str, Alert]]:
    """The alerts a result calls for besides a state change, each with the subject that is
    alerted only once: a certificate near expiry (again for a renewed one that nears its
    own), and each dated provider notice that applies to the check."""
    from channelsync.monitor.checks import upcoming_notices

    key = result.key
    where = f"{key.kind}/{key.name}/{key.check}"
    found = []
    cert = for_certificate(result, now)
    if cert is not None:
        found.append((f"cert:{where}:{int(result.cert_expires_at or 0)}", cert))
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    for notice in upcoming_notices(check, today):
        found.append((f"notice:{notice.id}:{where}", for_notice(key, notice, today)))
    return found


def for_drift(tenant: str, repository: str, differences: Sequence[str]) -> Alert:
    listed = "\n".join(f"- {quoted(d, 300)}" for d in differences[:50])
    more = f"\n(and {len(differences) - 50} more)" if len(differences) > 50 else ""
    return Alert(
        tenant,
        f"channelsync: tenant '{tenant}' drifted from {repository}",
        f"{len(differences)} difference(s) between the tenant and {repository}:\n{listed}{more}",
        failing=True,
    )
