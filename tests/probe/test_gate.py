"""The connection-test gate in `apply`, and `plan --check-connections`, against real servers."""

from __future__ import annotations

import json
import os
import pty
import signal
import socket
import subprocess
import sys
import time
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


def test_gate_ends_with_a_summary_line(
    mail: MailServers, tenant_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    write(tenant_dir, _imaps(mail))
    result = cli("apply", "--auto-approve", "--dir", "channels.d")
    assert result.code == 0, result.err
    assert result.err.endswith("connection tests: 1 passed\n")


def test_gate_timeout_is_per_check_seconds(
    tenant_dir: Path, password: Password, silent_port: int, cli: Any
) -> None:
    silent = channel("imap-ssl", silent_port, server="127.0.0.1", ca=False)
    write(tenant_dir, {**silent, "enabled": True})
    started = time.monotonic()
    result = cli("apply", "--auto-approve", "--dir", "channels.d", "--timeout", "0.5")
    assert time.monotonic() - started < 5
    assert result.code == 1
    assert "timeout: no answer within 0.5 s" in result.err
    assert result.err.endswith(
        "connection tests: 0 passed, 1 failed\n"
        "Apply stopped by the connection tests; nothing was changed.\n"
    )


def test_disabled_channel_that_is_not_ready_only_warns(
    mail: MailServers, tenant_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    password("not-the-password")
    write(tenant_dir, _imaps(mail, enabled=False))
    reviewed = cli("plan", "--check-connections", "--dir", "channels.d")
    assert reviewed.code == 0  # reviewers see the failure; it blocks nothing
    assert "auth_failed" in reviewed.out
    assert reviewed.err.startswith("warning: connection test failed on a disabled channel: ")
    result = cli("apply", "--auto-approve", "--dir", "channels.d")
    assert result.code == 0, result.err
    assert "Apply complete: 1 created." in result.out
    warning = next(line for line in result.err.splitlines() if line.startswith("warning: conn"))
    assert warning.startswith(
        "warning: connection test failed on a disabled channel: EmailChannel 'Test Channel' "
        f"(incoming, imap-ssl://localhost:{mail.ports['imaps']}): auth_failed"
    )
    assert warning.endswith(". It does not block apply; it will once the channel is enabled")
    assert result.err.endswith("connection tests: 0 passed, 1 failed\n")
    assert "not-the-password" not in result.out + result.err

    write(tenant_dir, _imaps(mail, enabled=True))  # enabling it: now it blocks
    enabling = cli("apply", "--auto-approve", "--dir", "channels.d")
    assert enabling.code == 1
    assert "Apply stopped by the connection tests; nothing was changed." in enabling.err


def _apply_process(tenant_dir: Path, *args: str, **popen: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "channelsync", "apply", "--dir", "channels.d", *args],
        cwd=tenant_dir.parent,
        env={**os.environ, "NO_COLOR": "1"},
        **popen,
    )


def test_ctrl_c_stops_the_gate_at_once_and_changes_nothing(
    tenant_dir: Path, password: Password, cli: Any
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(30)
        port = listener.getsockname()[1]
        silent = channel("imap-ssl", port, server="127.0.0.1", ca=False)
        write(tenant_dir, {**silent, "enabled": True})
        proc = _apply_process(
            tenant_dir,
            "--auto-approve",
            "--timeout",
            "60",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        connection, _ = listener.accept()  # the gate is waiting for this server's answer
        with connection:
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
            assert time.monotonic() - started < 3
    assert proc.returncode == 130
    assert err.decode().endswith(
        "Connection tests interrupted; nothing was changed.\ninterrupted\n"
    )
    plan = json.loads(cli("plan", "--format", "json", "--dir", "channels.d").out)
    assert plan["summary"]["create"] == 1


def test_gate_shows_progress_on_a_terminal(
    mail: MailServers, tenant_dir: Path, mail_ca: Path, password: Password
) -> None:
    second = {**_imaps(mail, name="Second Channel"), "email": "second@example.test"}
    write(tenant_dir, _imaps(mail), second)
    leader, follower = pty.openpty()
    proc = _apply_process(
        tenant_dir,
        "--auto-approve",
        stdout=subprocess.DEVNULL,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    text = seen.decode()
    assert proc.wait(timeout=30) == 0, text
    assert "testing [###############...............] 1/2" in text
    assert "testing [##############################] 2/2" in text
    # the bar is cleared, then the warnings (enabling takes the test mailbox's mail), the summary
    assert "testing [##############################] 2/2\r\x1b[K" in text
    assert text.endswith("\r\nconnection tests: 2 passed\r\n")
