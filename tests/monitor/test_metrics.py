"""The monitor's metrics: one definition, written by `channelsync test --format prometheus`
and exposed by `serve` (tests/monitor/test_monitor_serve.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from channelsync.cli import main
from channelsync.monitor.history import CheckKey, CheckResult
from channelsync.monitor.metrics import text
from tests import mailservers
from tests.mailservers import free_port

CHANNEL = """\
kind: EmailChannel
name: Support
email: support@example.test
incoming:
  server: {server}
  protocol: imap-ssl
  port: {port}
  user: {user}
  password: ${{env:MONITOR_TEST_PASSWORD}}
"""


def test_the_text_exposition_of_two_results() -> None:
    key = CheckKey("default", "EmailChannel", "Support", "incoming")
    passing = CheckResult(
        key,
        at=1_700_000_000.0,
        ok=True,
        duration=0.25,
        endpoint="imap-ssl://localhost:993",
        cert_expires_at=1_800_000_000.0,
        messages=0,
    )
    failing = CheckResult(
        CheckKey("default", "SmtpServer", "Relay", "outgoing"),
        at=1_700_000_001.0,
        ok=False,
        duration=1.5,
        endpoint="smtp-starttls://localhost:587",
        code="auth_failed",
    )
    labels = 'check="incoming",kind="EmailChannel",name="Support",tenant="default"'
    relay = 'check="outgoing",kind="SmtpServer",name="Relay",tenant="default"'
    assert text([passing, failing]) == textwrap.dedent(f"""\
        # HELP channelsync_check_up 1 when the last connection test of the check passed, else 0
        # TYPE channelsync_check_up gauge
        channelsync_check_up{{{labels}}} 1.0
        channelsync_check_up{{{relay}}} 0.0
        # HELP channelsync_check_duration_seconds How long the last connection test took
        # TYPE channelsync_check_duration_seconds gauge
        channelsync_check_duration_seconds{{{labels}}} 0.25
        channelsync_check_duration_seconds{{{relay}}} 1.5
        # HELP channelsync_tls_cert_expiry_timestamp_seconds When the server's TLS certificate expires (Unix time)
        # TYPE channelsync_tls_cert_expiry_timestamp_seconds gauge
        channelsync_tls_cert_expiry_timestamp_seconds{{{labels}}} 1.8e+09
        # HELP channelsync_mailbox_messages Messages in the channel's mailbox at the last test
        # TYPE channelsync_mailbox_messages gauge
        channelsync_mailbox_messages{{{labels}}} 0.0
        # HELP channelsync_mailbox_oldest_message_age_seconds Age of the oldest message in the channel's mailbox (0 when it is empty)
        # TYPE channelsync_mailbox_oldest_message_age_seconds gauge
        channelsync_mailbox_oldest_message_age_seconds{{{labels}}} 0.0
        # HELP channelsync_last_check_timestamp_seconds When the check last ran (Unix time)
        # TYPE channelsync_last_check_timestamp_seconds gauge
        channelsync_last_check_timestamp_seconds{{{labels}}} 1.7e+09
        channelsync_last_check_timestamp_seconds{{{relay}}} 1.700000001e+09
        """)  # noqa: E501


def _config(tmp_path: Path, port: int, ca: Path | None = None) -> Path:
    folder = tmp_path / "channels.d"
    folder.mkdir()
    tls = f"  tls:\n    ca_file: {ca}\n" if ca else ""
    (folder / "support.yaml").write_text(
        CHANNEL.format(server="localhost", port=port, user=mailservers.USER) + tls
    )
    return folder


def test_test_writes_the_same_metrics_for_the_textfile_collector(
    mail: mailservers.MailServers,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MONITOR_TEST_PASSWORD", mailservers.PASSWORD)
    folder = _config(tmp_path, mail.ports["imaps"], mail.ca_file)
    out = tmp_path / "textfile" / "channelsync.prom"
    out.parent.mkdir()
    args = ["test", "--dir", str(folder), "--format", "prometheus", "--output", str(out)]
    assert main(args) == 0
    assert capsys.readouterr().out == ""
    written = out.read_text()
    labels = '{check="incoming",kind="EmailChannel",name="Support",tenant=""}'
    assert f"channelsync_check_up{labels} 1.0\n" in written
    assert f"channelsync_mailbox_messages{labels} {float(mailservers.INBOX_MESSAGES)}\n" in written
    assert f"channelsync_tls_cert_expiry_timestamp_seconds{labels} " in written
    assert f"channelsync_mailbox_oldest_message_age_seconds{labels} " in written
    assert sorted(p.name for p in out.parent.iterdir()) == ["channelsync.prom"]  # no temp file
    assert mailservers.PASSWORD not in written


def test_a_failing_check_is_down_in_the_metrics_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONITOR_TEST_PASSWORD", "secret-value-9f2")
    folder = _config(tmp_path, free_port())
    assert main(["test", "--dir", str(folder), "--format", "prometheus"]) == 1
    out = capsys.readouterr().out
    labels = '{check="incoming",kind="EmailChannel",name="Support",tenant=""}'
    assert f"channelsync_check_up{labels} 0.0\n" in out
    assert "channelsync_mailbox_messages{" not in out  # unknown: no sample
    assert "secret-value-9f2" not in out


def test_prometheus_is_for_the_connection_tests_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _config(tmp_path, free_port())
    assert main(["test", "--dir", str(folder), "--format", "prometheus", "--dns"]) == 1
    assert capsys.readouterr().err == (
        "error: --format prometheus reports the connection tests only, not --dns or --end-to-end\n"
    )


def test_an_output_file_that_cannot_be_written_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONITOR_TEST_PASSWORD", "x-secret")
    folder = _config(tmp_path, free_port())
    out = tmp_path / "missing" / "x.prom"
    args = ["test", "--dir", str(folder), "--format", "prometheus", "--output", str(out)]
    assert main(args) == 1
    assert capsys.readouterr().err.endswith(
        f"error: cannot write {out}: No such file or directory\n"
    )
