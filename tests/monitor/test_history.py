"""The monitor's history in a real SQLite store: claims, the bound, damping, and reading it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from channelsync.monitor.history import CheckKey, CheckResult, Damping, History
from channelsync.server.store import Store

KEY = CheckKey("default", "EmailChannel", "Support", "incoming")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[list[Store]]:
    """Two connections to one store file, as two replicas have."""
    url = f"sqlite:///{tmp_path / 'tenant.db'}"
    opened = [Store(url), Store(url)]
    yield opened
    for store in opened:
        store.close()


def _history(store: Store, **kwargs: object) -> History:
    history = History.of(store, **kwargs)
    history.ensure()
    return history


def _result(ok: bool, at: float = 0.0, key: CheckKey = KEY) -> CheckResult:
    return CheckResult(
        key,
        at=at,
        ok=ok,
        duration=0.1,
        endpoint="imap-ssl://localhost:993",
        code=None if ok else "auth_failed",
        message=None if ok else "the server refused the login",
        hint=None if ok else "check the password",
    )


def test_a_due_check_is_claimed_by_exactly_one_replica(stores: list[Store]) -> None:
    first, second = (_history(s) for s in stores)
    first.sync("default", [KEY], interval=60, now=0)
    assert first.due(now=100, limit=10) == [KEY]
    assert first.claim(KEY, "a", now=100, interval=60, hold=30)
    assert not second.claim(KEY, "b", now=100, interval=60, hold=30)
    assert second.due(now=100, limit=10) == []
    first.record(_result(True, at=100), now=101)
    assert not second.claim(KEY, "b", now=120, interval=60, hold=30)  # due again at 160
    assert second.claim(KEY, "b", now=160, interval=60, hold=30)


def test_new_checks_are_spread_over_the_interval(stores: list[Store]) -> None:
    history = _history(stores[0])
    keys = [CheckKey("default", "EmailChannel", f"Channel {i}", "incoming") for i in range(50)]
    history.sync("default", keys, interval=300, now=0)
    dues = [
        row[0] for row in history.connection.execute("SELECT due FROM monitor_checks").fetchall()
    ]
    assert 0 <= min(dues) < 60 and 240 < max(dues) < 300


def test_a_removed_resource_leaves_the_schedule_and_its_history(stores: list[Store]) -> None:
    history = _history(stores[0])
    history.sync("default", [KEY], interval=60, now=0)
    history.record(_result(True), now=1)
    history.sync("default", [], interval=60, now=2)
    assert history.due(now=1000, limit=10) == []
    assert history.recent("default", KEY.kind, KEY.name) == []


def test_only_the_last_results_of_a_check_are_kept(stores: list[Store]) -> None:
    history = _history(stores[0], keep=5)
    other = CheckKey("default", "SmtpServer", "Relay", "outgoing")
    history.sync("default", [KEY, other], interval=60, now=0)
    history.record(_result(True, key=other), now=0)
    for i in range(12):
        history.record(_result(True, at=i), now=i)
    kept = history.recent("default", KEY.kind, KEY.name, limit=100)
    assert [r.at for r in kept] == [11, 10, 9, 8, 7]  # newest first
    assert len(history.recent("default", "SmtpServer", "Relay")) == 1


def test_the_default_bound_is_a_thousand_results_per_check(stores: list[Store]) -> None:
    history = _history(stores[0])
    history.sync("default", [KEY], interval=60, now=0)
    for i in range(1005):
        history.record(_result(True, at=i), now=i)
    count = history.connection.execute("SELECT COUNT(*) FROM monitor_results").fetchone()[0]
    assert count == 1000


def _states(history: History, results: list[bool]) -> list[str | None]:
    changes = []
    for i, ok in enumerate(results):
        change = history.record(_result(ok, at=i), now=i)
        changes.append(None if change is None else change.state)
    return changes


def test_a_change_is_reported_once_after_two_agreeing_results(stores: list[Store]) -> None:
    history = _history(stores[0])
    history.sync("default", [KEY], interval=60, now=0)
    assert _states(history, [True, False, False, False, True, True, True]) == [
        None,  # first sight, passing: nothing to report
        None,  # one failure: not yet
        "failing",
        None,
        None,
        "passing",
        None,
    ]


def test_a_flapping_check_sends_nothing(stores: list[Store]) -> None:
    history = _history(stores[0])
    history.sync("default", [KEY], interval=60, now=0)
    assert _states(history, [True, False, True, False, True, False, True]) == [None] * 7


def test_a_check_failing_from_the_start_is_reported_as_failing(stores: list[Store]) -> None:
    history = _history(stores[0])
    history.sync("default", [KEY], interval=60, now=0)
    change = history.record(_result(False), now=0)
    assert change is None
    change = history.record(_result(False), now=1)
    assert change is not None and change.state == "failing" and change.first


def test_a_disagreeing_result_is_confirmed_soon(stores: list[Store]) -> None:
    history = _history(stores[0], damping=Damping(results=2, confirm_after=10))
    history.sync("default", [KEY], interval=300, now=0)
    assert history.claim(KEY, "a", now=300, interval=300, hold=30)  # next due at 600
    history.record(_result(True), now=301)
    assert history.claim(KEY, "a", now=600, interval=300, hold=30)  # next due at 900
    history.record(_result(False), now=601)
    assert history.due(now=612, limit=10) == [KEY]  # not at 900


def test_latest_is_the_newest_result_of_every_check(stores: list[Store]) -> None:
    history = _history(stores[0])
    other = CheckKey("default", "SmtpServer", "Relay", "outgoing")
    history.sync("default", [KEY, other], interval=60, now=0)
    history.record(_result(True, at=1), now=1)
    history.record(_result(False, at=2), now=2)
    history.record(_result(True, at=3, key=other), now=3)
    assert [(r.key.kind, r.ok, r.at) for r in history.latest()] == [
        ("EmailChannel", False, 2),
        ("SmtpServer", True, 3),
    ]
    assert history.recent("default", KEY.kind, KEY.name)[0].to_json() == {
        "tenant": "default",
        "kind": "EmailChannel",
        "name": "Support",
        "check": "incoming",
        "at": 2,
        "ok": False,
        "duration": 0.1,
        "endpoint": "imap-ssl://localhost:993",
        "diagnosis": {
            "code": "auth_failed",
            "message": "the server refused the login",
            "hint": "check the password",
        },
        "warnings": [],
        "cert_expires_at": None,
        "messages": None,
        "oldest_at": None,
    }


def test_a_certificate_or_notice_is_alerted_once_across_replicas(stores: list[Store]) -> None:
    first, second = (_history(s) for s in stores)
    assert first.first_alert("default", "cert:EmailChannel/Support/incoming:1", now=0)
    assert not second.first_alert("default", "cert:EmailChannel/Support/incoming:1", now=1)
    assert second.first_alert("default", "cert:EmailChannel/Support/incoming:2", now=1)


@pytest.mark.parametrize(("given", "seconds"), [("5m", 300), ("30s", 30), ("2", 2), ("1h", 3600)])
def test_an_interval_is_seconds_minutes_or_hours(given: str, seconds: float) -> None:
    from channelsync.argtypes import duration

    assert duration(given) == seconds


def test_a_button_press_is_kept_with_the_schedule_s_results_without_moving_its_state(
    stores: list[Store],
) -> None:
    from dataclasses import replace

    from channelsync.console import history as console_history

    history = _history(stores[0], keep=3)
    history.sync("default", [KEY], interval=60, now=0)
    assert history.record(_result(True, at=1), now=1) is None
    pressed = [replace(_result(False, at=t), worker="console:ops") for t in (2, 3)]
    history.keep_results(pressed)
    history.keep_results(pressed[1:])
    # two failing presses in a row: the monitor did not confirm them, so nothing to alert
    assert history.record(_result(True, at=4), now=4) is None
    recent = console_history.recent(stores[0], "EmailChannel", "Support", 50)
    assert [(r.at, r.by) for r in recent] == [
        (4, "monitor"),
        (3, "console:ops"),
        (3, "console:ops"),
    ]  # one table, bounded per check whoever ran it
    latest = console_history.latest(stores[0], "EmailChannel")
    assert [(r.check, r.at, r.elapsed_ms) for r in latest["Support"]] == [("incoming", 4, 100)]
    assert console_history.latest(stores[0], "SmtpServer") == {}


def test_a_huge_server_reply_is_kept_bounded(stores: list[Store]) -> None:
    import time

    from channelsync.monitor import history
    from channelsync.probe.check import Diagnosis, Result

    reply = "[AUTHENTICATIONFAILED] " + "A" * 900_000  # imaplib reads a line of up to 1 MB
    probe = Result("EmailChannel", "Support", "incoming", "imap.acme.test", 993, "imaps",
                   False, 120, error=Diagnosis("auth_failed", reply, reply),
                   warnings=[reply])  # fmt: skip
    kept = history.from_probe(probe, "default", time.time())
    _history(stores[0]).keep_results([kept])
    (shown,) = _history(stores[1]).recent("default", "EmailChannel", "Support", 1)
    assert [len(t) for t in (shown.message or "", shown.hint or "", *shown.warnings)] == [
        history.MAX_KEPT_TEXT
    ] * 3
    assert shown.message is not None and shown.message.startswith("[AUTHENTICATIONFAILED] AAA")
    assert shown.message.endswith("A…")
