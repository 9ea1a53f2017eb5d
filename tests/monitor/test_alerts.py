"""Alerts: destinations as secret references, delivery that never blocks, and the words."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

from channelsync.commands.serve import main as server_main
from channelsync.errors import ChannelsyncError
from channelsync.monitor import alerts
from channelsync.monitor.history import CheckKey, CheckResult
from channelsync.monitor.service import Monitor, Settings
from channelsync.notices import load
from channelsync.probe.check import Check
from channelsync.server.store import Store
from tests import mailservers
from tests.http.conftest import free_port
from tests.monitor.conftest import Receiver, Serve, seed

KEY = CheckKey("default", "EmailChannel", "Support", "incoming")


def test_an_alert_url_must_be_a_secret_reference() -> None:
    with pytest.raises(ChannelsyncError) as caught:
        alerts.parse_destination("json://hooks.example.test/T0KEN")
    assert str(caught.value) == (
        "--alert takes a secret reference to an apprise URL, such as --alert "
        "'${env:ALERT_URL}' or --alert 'TENANT=${file:/run/secrets/alert-url}' (the URL "
        "itself holds credentials, so it never goes on a command line)"
    )
    assert alerts.parse_destination("${env:ALERT_URL}") == ("*", "${env:ALERT_URL}")
    assert alerts.parse_destination("ops=${file:hook}") == ("ops", "${file:hook}")


def test_an_unreadable_or_unknown_alert_url_stops_the_start_without_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ALERT_URL", raising=False)
    with pytest.raises(ChannelsyncError, match=r"^--alert \$\{env:ALERT_URL\}: "):
        alerts.resolve_destinations(["${env:ALERT_URL}"])
    monkeypatch.setenv("ALERT_URL", "nosuchservice://s3cr3t-path")
    with pytest.raises(ChannelsyncError) as caught:
        alerts.resolve_destinations(["${env:ALERT_URL}"])
    assert "s3cr3t" not in str(caught.value)
    assert str(caught.value).startswith("--alert ${env:ALERT_URL}: its value is not an apprise")
    monkeypatch.setenv("ALERT_URL", "json://127.0.0.1:9/hook")
    assert alerts.resolve_destinations(["ops=${env:ALERT_URL}"]) == {
        "ops": ["json://127.0.0.1:9/hook"]
    }


def test_alerts_reach_the_destinations_of_their_tenant(receiver: Receiver) -> None:
    sender = alerts.AlertSender({"ops": [receiver.url]})
    sender.start()
    sender.send(alerts.Alert("other", "not for ops", "x"))
    sender.send(alerts.Alert("ops", "for ops", "body", failing=True))
    got = receiver.wait_for(1, timeout=10)
    sender.stop()
    assert [(a["title"], a["message"], a["type"]) for a in got] == [("for ops", "body", "failure")]
    assert sender.sent == 1


def test_a_receiver_that_never_answers_never_blocks_sending_and_stop_is_bounded() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1024)  # accepts connections into the backlog, never answers
    try:
        port = silent.getsockname()[1]
        sender = alerts.AlertSender({"*": [f"json://127.0.0.1:{port}/hook"]})
        sender.start()
        started = time.monotonic()
        for i in range(alerts.QUEUE_SIZE + 50):
            sender.send(alerts.Alert("default", f"alert {i}", "body"))
        assert time.monotonic() - started < 1
        assert sender.dropped >= 49
        started = time.monotonic()
        sender.stop(timeout=1)
        assert time.monotonic() - started < 2
    finally:
        silent.close()


def test_the_words_of_a_certificate_near_expiry() -> None:
    now = 1_700_000_000.0
    result = CheckResult(
        KEY, at=now, ok=True, duration=0.1, endpoint="imap-ssl://mail.example.test:993"
    )
    soon = CheckResult(**{**result.__dict__, "cert_expires_at": now + 10 * 86400 + 60})
    later = CheckResult(**{**result.__dict__, "cert_expires_at": now + 21 * 86400})
    alert = alerts.for_certificate(soon, now)
    assert alert == alerts.Alert(
        "default",
        "channelsync: the certificate of imap-ssl://mail.example.test:993 expires in 10 day(s)",
        "tenant 'default', EmailChannel 'Support' (incoming): the server's certificate expires "
        "in 10 day(s) (on 2023-11-24 22:14 UTC); ask the provider to renew it",
    )
    assert alerts.for_certificate(later, now) is None
    assert alerts.for_certificate(result, now) is None


def test_the_words_of_a_dated_notice() -> None:
    notice = load()[0]
    today = notice.effective - dt.timedelta(days=12)
    alert = alerts.for_notice(KEY, notice, today)
    assert alert.title == f"channelsync: {notice.provider} changes sign-in for {KEY.label}"
    assert alert.body == f"tenant 'default', {KEY.label}: {notice.warning(today)}"
    assert "(in 12 days)" in alert.body


def test_a_drift_report_is_alerted_once(tmp_path: Path, receiver: Receiver) -> None:
    url = f"sqlite:///{tmp_path / 'tenant.db'}"
    Store(url).close()
    monitor = Monitor(url, Settings(interval=60, destinations={"*": [receiver.url]}))
    monitor.start()
    try:
        differences = ["EmailChannel 'Support': incoming.port 993 -> 995"]
        monitor.drift_reported("default", "github.com/acme/channels", differences)
        receiver.wait_for(1, timeout=10)
        monitor.drift_reported("default", "github.com/acme/channels", differences)
        monitor.drift_reported("default", "github.com/acme/channels", [])
        time.sleep(2)
        assert len(receiver.received) == 1
        assert receiver.received[0]["title"] == (
            "channelsync: tenant 'default' drifted from github.com/acme/channels"
        )
        assert receiver.received[0]["message"] == (
            "1 difference(s) between the tenant and github.com/acme/channels:\n"
            "- EmailChannel 'Support': incoming.port 993 -> 995"
        )
    finally:
        monitor.stop()


def test_alert_without_the_monitor_is_a_usage_error(
    tmp_path: Path, token_file: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["serve", "--target", f"sqlite:///{tmp_path / 't.db'}", "--tokens"]
    argv += [str(token_file[0]), "--port", str(free_port()), "--alert", "${env:ALERT_URL}"]
    assert server_main(argv) == 1
    assert capsys.readouterr().err == (
        "error: --alert needs --monitor-every (alerts come from the monitor)\n"
    )


def test_serve_stops_at_once_while_a_check_hangs(
    mail: mailservers.MailServers,
    tmp_path: Path,
    token_file: tuple[Path, str],
    serve: Callable[..., Serve],
) -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the check connects and waits for a greeting that never comes
    try:
        url = seed(tmp_path / "tenant.db", mail.ca_file, silent.getsockname()[1], ["Stuck"])
        server = serve(url, token_file[0], "--monitor-every", "1s", "--monitor-timeout", "120")
        time.sleep(2.5)
        assert server.stop() < 8
        assert server.proc.returncode == 0
        assert "channelsync serve: stopped" in server.log.read_text()
    finally:
        silent.close()


def _relay_check(host: str) -> Check:
    return Check(
        kind="SmtpServer",
        name="Relay",
        check="outgoing",
        host=host,
        port=587,
        protocol="smtp-starttls",
        base_dir=Path("."),
        user="relay@acme.test",
        password="${stored:SmtpServer/Relay/password}",
    )


def test_a_dated_notice_within_30_days_and_a_certificate_are_alerted_with_their_subjects() -> None:
    key = CheckKey("default", "SmtpServer", "Relay", "outgoing")
    check = _relay_check("smtp.office365.com")
    effective = next(n for n in load() if n.id == "exchange-online-smtp-auth-basic").effective
    now = dt.datetime.combine(effective - dt.timedelta(days=20), dt.time(9), dt.UTC).timestamp()
    result = CheckResult(
        key,
        at=now,
        ok=True,
        duration=0.1,
        endpoint="smtp-starttls://smtp.office365.com:587",
        cert_expires_at=now + 5 * 86400,
    )
    found = alerts.for_result(check, result, now)
    assert [subject for subject, _ in found] == [
        f"cert:SmtpServer/Relay/outgoing:{int(now + 5 * 86400)}",
        "notice:exchange-online-smtp-auth-basic:SmtpServer/Relay/outgoing",
    ]
    assert found[1][1].title == (
        "channelsync: Exchange Online changes sign-in for SmtpServer 'Relay' (outgoing)"
    )
    quiet = CheckResult(**{**result.__dict__, "cert_expires_at": None})
    for days in (31, -1):  # too far ahead; already in force (the check itself says so)
        then = now - (days - 20) * 86400
        assert alerts.for_result(check, quiet, then) == []
    assert alerts.for_result(_relay_check("smtp.acme.test"), quiet, now) == []


HOSTILE = (
    "535 <!channel> @everyone sign in again at <https://evil.test|the portal> or "
    "[here](https://evil.test) \u202ecod.exe\r\nX-Injected: yes " + "A" * 5000
)


def _hostile_change() -> alerts.Alert:
    from channelsync.monitor.history import Change

    result = CheckResult(KEY, time.time(), False, 0.2, "imaps://imap.acme.test:993",
                         "auth_failed", HOSTILE, "check the password")  # fmt: skip
    return alerts.for_change(Change(KEY, "failing", result))


def test_a_hostile_server_reply_reaches_an_alert_bounded_and_neutralised(
    receiver: Receiver,
) -> None:
    alert = _hostile_change()
    sender = alerts.AlertSender({"*": [receiver.url]})
    sender.start()
    sender.send(alert)
    got = receiver.wait_for(1, timeout=10)
    sender.stop()
    message = got[0]["message"]
    quoted = message.split("auth_failed: ", 1)[1].split("\n")[0]
    assert len(quoted) == alerts.MAX_QUOTED and quoted.endswith("…")
    assert quoted.startswith(
        "535 <!channel> @ everyone sign in again at <https://evil.test|the portal> or "
        "[here] (https://evil.test) \\u202Ecod.exe X-Injected: yes AAA"
    )
    assert message.count("\n") == 1 and message.endswith("\nWhat to do: check the password")


def test_a_slack_alert_is_plain_text_so_a_server_cannot_ping_the_channel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    import requests

    posted: list[dict[str, object]] = []

    class Answer:
        status_code = 200
        content = b"ok"
        text = "ok"
        headers: ClassVar[dict[str, str]] = {}

    def request(self: object, method: str, url: str, **kwargs: object) -> Answer:
        assert url.startswith("https://hooks.slack.com/")  # caught here: nothing leaves
        posted.append(json.loads(str(kwargs["data"])))
        return Answer()

    monkeypatch.setattr(requests.sessions.Session, "request", request)
    sender = alerts.AlertSender({})
    assert sender._deliver(
        "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", _hostile_change()
    )
    text = json.dumps(posted)
    assert '"mrkdwn": false' in text
    assert "&lt;!channel&gt;" in text and "&lt;https://evil.test|the portal&gt;" in text
    assert "<!channel>" not in text and "<https://" not in text
