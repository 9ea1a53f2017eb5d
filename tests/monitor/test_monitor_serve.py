"""The monitor in real `channelsync serve` processes against the real Dovecot: failing within
one interval, /metrics, one alert per change, and replicas sharing the work."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import mailservers
from tests.monitor.conftest import Receiver, Serve, seed, set_dovecot_password
from tests.monitor.conftest import wait_up as _wait_up

INTERVAL = 2.0
NEW_PASSWORD = "rotated-at-3am-7c1e"


def test_a_password_changed_on_the_server_fails_within_one_interval_and_alerts_once(
    mail: mailservers.MailServers,
    tmp_path: Path,
    token_file: tuple[Path, str],
    serve: Callable[..., Serve],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = seed(tmp_path / "tenant.db", mail.ca_file, mail.ports["imaps"], ["Support"])
    monkeypatch.setenv("ALERT_URL", receiver.url)
    path, token = token_file
    server = serve(url, path, "--monitor-every", "2s", "--alert", "${env:ALERT_URL}")
    try:
        _wait_up(server, token, 1.0, timeout=INTERVAL + 10)
        set_dovecot_password(mail, mailservers.USER, NEW_PASSWORD)
        took = _wait_up(server, token, 0.0, timeout=INTERVAL + 10)
        assert took <= INTERVAL + 1.5  # the next scheduled run (plus the check itself)
        alerts = receiver.wait_for(1, timeout=3 * INTERVAL)
        time.sleep(2 * INTERVAL)  # more failing runs: no second alert
        assert len(receiver.received) == 1, receiver.received
        alert = alerts[0]
        assert alert["title"] == "channelsync: EmailChannel 'Support' (incoming) is failing"
        assert alert["type"] == "failure"
        where = f"tenant 'default', imap-ssl://localhost:{mail.ports['imaps']}, "
        assert alert["message"].startswith(where)
        assert ": auth_failed: " in alert["message"]
        assert "\nWhat to do: " in alert["message"]
    finally:
        set_dovecot_password(mail, mailservers.USER, mailservers.PASSWORD)
    _wait_up(server, token, 1.0, timeout=INTERVAL + 10)
    recovered = receiver.wait_for(2, timeout=3 * INTERVAL)
    time.sleep(2 * INTERVAL)
    assert len(receiver.received) == 2, receiver.received
    assert recovered[1]["title"] == "channelsync: EmailChannel 'Support' (incoming) passes again"
    assert recovered[1]["type"] == "info"
    assert server.stop() < 10
    log = server.log.read_text()
    for text in (mailservers.PASSWORD, NEW_PASSWORD, receiver.url, "127.0.0.1:" + receiver.url):
        assert text not in log
        assert all(text not in str(a) for a in receiver.received)
    assert "monitor: alert sent: channelsync: EmailChannel 'Support' (incoming) is failing" in log


def test_metrics_need_a_token(monitored: tuple[Serve, str]) -> None:
    server, token = monitored
    assert server.get("/metrics", "not-a-token")[0] == 401
    _wait_up(server, token, 1.0, timeout=INTERVAL + 10)
    text = server.get("/metrics", token)[1]
    labels = '{check="incoming",kind="EmailChannel",name="Support",tenant="default"}'
    assert f"channelsync_mailbox_messages{labels} {float(mailservers.INBOX_MESSAGES)}" in text
    for name in (
        "channelsync_check_duration_seconds",
        "channelsync_tls_cert_expiry_timestamp_seconds",
        "channelsync_mailbox_oldest_message_age_seconds",
        "channelsync_last_check_timestamp_seconds",
    ):
        assert f"{name}{labels} " in text


def test_two_replicas_on_one_store_run_each_check_once_per_interval(
    mail: mailservers.MailServers,
    tmp_path: Path,
    token_file: tuple[Path, str],
    serve: Callable[..., Serve],
) -> None:
    db = tmp_path / "tenant.db"
    names = [f"Channel {i}" for i in range(6)]
    url = seed(db, mail.ca_file, mail.ports["imaps"], names)
    path, _ = token_file
    replicas = [serve(url, path, "--monitor-every", "2s") for _ in range(2)]
    time.sleep(5 * INTERVAL)
    for replica in replicas:
        replica.stop()
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT name, at, ok, worker FROM monitor_results ORDER BY name, at"
        ).fetchall()
    runs: dict[str, list[float]] = {}
    for name, at, ok, _ in rows:
        assert ok == 1
        runs.setdefault(name, []).append(at)
    assert sorted(runs) == names
    for name, times in runs.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) >= 3, (name, times)
        assert min(gaps) >= INTERVAL * 0.8, (name, gaps)  # twice per interval: ~0 s apart
    assert len({row[3] for row in rows}) == 2  # both replicas took a share


def test_a_password_fixed_through_the_api_is_used_at_the_next_run(
    mail: mailservers.MailServers,
    tmp_path: Path,
    token_file: tuple[Path, str],
    serve: Callable[..., Serve],
) -> None:
    from channelsync.server import tokens

    url = seed(tmp_path / "tenant.db", mail.ca_file, mail.ports["imaps"], ["Support"])
    path, token = token_file
    writer = tokens.add(path, "ci-apply", "write")
    server = serve(url, path, "--monitor-every", "2s")
    try:
        _wait_up(server, token, 1.0, timeout=INTERVAL + 10)
        set_dovecot_password(mail, mailservers.USER, NEW_PASSWORD)
        _wait_up(server, token, 0.0, timeout=INTERVAL + 10)
        status, body = server.get("/v1/channels/Support", token)
        assert status == 200
        channel = json.loads(body)
        channel["incoming"]["password"] = NEW_PASSWORD
        request = urllib.request.Request(
            f"{server.base}/v1/channels/Support",
            data=json.dumps(channel).encode(),
            method="PUT",
            headers={
                "Authorization": f"Bearer {writer}",
                "If-Match": "*",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        took = _wait_up(server, token, 1.0, timeout=INTERVAL + 10)
        assert took <= 2 * INTERVAL + 1.5  # read again within min(interval, 30 s), then run
    finally:
        set_dovecot_password(mail, mailservers.USER, mailservers.PASSWORD)
    assert NEW_PASSWORD not in server.log.read_text()
