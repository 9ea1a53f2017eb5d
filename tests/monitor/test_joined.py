"""The monitor joined to the console and to many tenants, in real `channelsync serve`
processes against the real Dovecot: the console shows scheduled results, every tenant is
tested (one added while serving too), and a posted drift report is alerted once."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from channelsync.server import tokens
from tests import mailservers
from tests.console.conftest import csrf_of
from tests.monitor.conftest import Receiver, Serve, check_up, seed, wait_up

INTERVAL = 2.0


@contextlib.contextmanager
def _signed_in(server: Serve, token: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base, follow_redirects=False, timeout=30) as client:
        form = client.get("/sign-in")
        signed = client.post("/sign-in", data={"csrf": csrf_of(form.text), "token": token})
        assert signed.status_code == 303, signed.text
        yield client


def test_the_console_shows_the_monitor_s_results_in_the_list_and_on_the_channel_page(
    mail: mailservers.MailServers, monitored: tuple[Serve, str]
) -> None:
    server, token = monitored
    wait_up(server, token, 1.0, INTERVAL + 10)
    with _signed_in(server, token) as client:
        listed = client.get("/channels")
        assert listed.status_code == 200
        row = listed.text[listed.text.index(">Support</a>") :]
        assert row[: row.index("</tr>")].count('<span class="health ok">ok</span>') == 1
        page = client.get("/channels/Support").text
    endpoint = f"imap-ssl://localhost:{mail.ports['imaps']}"
    assert f'<td data-label="Check">incoming ({endpoint})</td>' in page
    assert '<td data-label="By">monitor (' in page
    assert "Not tested yet." not in page


def test_the_monitor_tests_every_tenant_and_one_added_while_serving(
    mail: mailservers.MailServers,
    tmp_path: Path,
    token_file: tuple[Path, str],
    serve: Callable[..., Serve],
) -> None:
    db = tmp_path / "tenant.db"
    url = seed(db, mail.ca_file, mail.ports["imaps"], ["Support"])
    seed(db, mail.ca_file, mail.ports["imaps"], ["Acme Support"], tenant="acme")
    path, scoped = token_file
    token = tokens.add(path, "operator", "read", ["*"])  # /metrics: the tenants it reaches
    server = serve(url, path, "--monitor-every", "2s")
    wait_up(server, token, 1.0, INTERVAL + 10)
    wait_up(server, token, 1.0, INTERVAL + 10, "Acme Support", "acme")
    assert "acme" not in server.get("/metrics", scoped)[1]  # a default-only token sees its own
    seed(db, mail.ca_file, mail.ports["imaps"], ["Globex Support"], tenant="globex")
    # read again within min(interval, 30 s), then due within one interval
    wait_up(server, token, 1.0, 2 * INTERVAL + 10, "Globex Support", "globex")
    assert check_up(server, token, "Acme Support", "default") is None  # each in its own tenant


def _report(repository: str, enabled: bool) -> dict[str, Any]:
    return {
        "format_version": 1,
        "summary": {"create": 0, "update": 1, "rename": 0, "delete": 0, "no_op": 0},
        "changes": [
            {"kind": "EmailChannel", "name": "Acme Support", "action": "update",
             "fields": [{"path": "enabled", "before": not enabled, "after": enabled,
                         "sensitive": False}]},
        ],
        "drift": True,
        "repository": repository,
    }  # fmt: skip


def test_a_posted_drift_report_is_alerted_once_per_distinct_report(
    mail: mailservers.MailServers,
    tmp_path: Path,
    token_file: tuple[Path, str],
    serve: Callable[..., Serve],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "tenant.db"
    url = seed(db, mail.ca_file, mail.ports["imaps"], [])
    seed(db, mail.ca_file, mail.ports["imaps"], ["Acme Support"], tenant="acme")
    path, _ = token_file
    acme = tokens.add(path, "acme-drift", "write", ["acme"])
    default = tokens.add(path, "default-drift", "write")
    monkeypatch.setenv("ALERT_URL", receiver.url)
    server = serve(url, path, "--monitor-every", "1h", "--alert", "acme=${env:ALERT_URL}")
    with httpx.Client(base_url=server.base, timeout=30) as api:

        def post(tenant_path: str, token: str, body: dict[str, Any]) -> None:
            answer = api.post(
                f"{tenant_path}/drift-reports",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 201, answer.text

        first = _report("acme/channels", enabled=True)
        post("/v1/tenants/acme", acme, first)
        post("/v1/tenants/acme", acme, first)  # the same report again: no second alert
        post("/v1", default, first)  # the tenant "default" has no alert destination
        post("/v1/tenants/acme", acme, {**first, "changes": [], "drift": False})
        assert receiver.wait_for(1, timeout=10)
        time.sleep(2.5)
        assert len(receiver.received) == 1, receiver.received
        alert = receiver.received[0]
        assert alert["title"] == "channelsync: tenant 'acme' drifted from acme/channels"
        assert alert["message"] == (
            "1 difference(s) between the tenant and acme/channels:\n"
            "- update EmailChannel 'Acme Support' (enabled: false → true)"
        )
        assert alert["type"] == "failure"
        post("/v1/tenants/acme", acme, _report("acme/channels", enabled=False))
        second = receiver.wait_for(2, timeout=10)
        assert second[1]["message"].endswith("(enabled: true → false)")
        refused = api.post(
            "/v1/tenants/acme/drift-reports",
            json=first,
            headers={"Authorization": f"Bearer {default}"},
        )
        assert refused.status_code == 404
        assert refused.json() == {"error": "no tenant 'acme' on this server"}


def test_metrics_show_the_scheduled_checks_and_a_press_of_one_but_no_unscheduled_press(
    tmp_path: Path,
) -> None:
    from channelsync.monitor.history import CheckKey, CheckResult, History
    from channelsync.monitor.service import Monitor, Settings
    from channelsync.server.store import Store

    url = seed(tmp_path / "tenant.db", tmp_path / "ca.pem", 9, ["Support"])
    store = Store(url)
    try:
        history = History.of(store)
        history.ensure()
        pressed = [
            CheckResult(CheckKey("default", "EmailChannel", name, "incoming"), at=1.0, ok=True,
                        duration=0.1, endpoint="imap-ssl://localhost:9", worker="console:ops")
            for name in ("Support", "Disabled")
        ]  # fmt: skip
        history.keep_results(pressed)
    finally:
        store.close()
    monitor = Monitor(url, Settings(interval=3600))
    monitor.start()
    try:
        deadline = time.monotonic() + 10
        while not monitor.latest() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.key.name for r in monitor.latest()] == ["Support"]
    finally:
        monitor.stop()
