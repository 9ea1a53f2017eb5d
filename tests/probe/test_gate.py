"""The connection-test gate in `apply`, and `plan --check-connections`, against real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import mailservers
from tests.mailservers import MailServers
from tests.probe.conftest import channel, write
from tests.probe.test_real_servers import Password


@pytest.fixture
def tenant_dir(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(config_dir.parent)
    return config_dir


def _imaps(mail: MailServers, *, enabled: bool = True, **incoming: Any) -> dict[str, Any]:
    return {**channel("imap-ssl", mail.ports["imaps"], **incoming), "enabled": enabled}


def test_apply_tests_new_channels_first_and_applies_when_they_pass(
    mail: MailServers, tenant_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    write(tenant_dir, _imaps(mail))
    result = cli("apply", "--auto-approve", "--dir", "channels.d")
    assert result.code == 0, result.err
    assert "Apply complete: 1 created." in result.out
    assert "connection tests skipped" not in result.err


def test_failed_connection_test_stops_apply_before_any_change(
    mail: MailServers, tenant_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    password("not-the-password")
    write(tenant_dir, _imaps(mail), {"kind": "EmailScript", "name": "Unrelated"})
    result = cli("apply", "--auto-approve", "--dir", "channels.d")
    assert result.code == 1
    assert "connection test failed: EmailChannel 'Test Channel' (incoming, " in result.err
    assert "auth_failed" in result.err
    assert "Apply stopped by the connection tests; nothing was changed." in result.err
    assert "not-the-password" not in result.out + result.err
    plan = json.loads(cli("plan", "--format", "json", "--dir", "channels.d").out)
    assert plan["summary"]["create"] == 2


def test_only_changed_connections_are_tested(
    mail: MailServers, tenant_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    from channelsync import gate
    from channelsync.loader import load_config
    from channelsync.plan import make_plan
    from channelsync.targets import open_target

    write(tenant_dir, _imaps(mail))
    assert cli("apply", "--auto-approve", "--dir", "channels.d").code == 0
    write(tenant_dir, _imaps(mail), {"kind": "EmailScript", "name": "New Script"})
    config = load_config(tenant_dir)
    target = open_target("sqlite:///.channelsync/tenant.db")
    assert gate.resources_to_test(config, make_plan(config, target)) == []

    password("rotated-but-wrong")  # a rotated secret is a connection change: tested first
    result = cli("apply", "--auto-approve", "--dir", "channels.d")
    assert result.code == 1
    assert "auth_failed" in result.err
    target.close()


def test_plan_check_connections_reports_results_in_every_format(
    mail: MailServers, tenant_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    write(tenant_dir, _imaps(mail))
    report = json.loads(
        cli("plan", "--check-connections", "--format", "json", "--dir", "channels.d").out
    )
    tests = report["connection_tests"]
    assert tests["summary"] == {"passed": 1, "failed": 0}
    assert tests["results"][0]["messages"] == mailservers.INBOX_MESSAGES
    markdown = cli("plan", "--check-connections", "--format", "markdown", "--dir", "channels.d")
    assert "**Connection tests:** 1 passed, 0 failed" in markdown.out
    text = cli("plan", "--check-connections", "--dir", "channels.d")
    assert "\nConnection tests:\n" in text.out
    assert text.out.rstrip().endswith("1 passed, 0 failed")

    password("wrong")
    failing = cli("plan", "--check-connections", "--detailed-exitcode", "--dir", "channels.d")
    assert failing.code == 1
    assert "auth_failed" in failing.out
