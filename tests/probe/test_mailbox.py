"""The mailbox itself: counts, unseen, the oldest mail (backlog), and what enabling will take."""

from __future__ import annotations

import datetime as dt
import imaplib
import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from tests import mailservers
from tests.mailservers import MailServers
from tests.probe.conftest import channel, write
from tests.probe.test_real_servers import Password

BOX = "backlog@acme.test"
TWO_HOURS = 2 * 3600


@pytest.fixture(scope="module")
def backlog_box(mail: MailServers) -> dt.datetime:
    """backlog@acme.test holds one unread message from two hours ago and one read one."""
    ctx = ssl.create_default_context(cafile=str(mail.ca_file))
    client = imaplib.IMAP4_SSL("localhost", mail.ports["imaps"], ssl_context=ctx, timeout=10)
    client.login(BOX, mailservers.PASSWORD)
    two_hours_ago = int(time.time() - TWO_HOURS)  # when the module runs, not when collected
    old = imaplib.Time2Internaldate(two_hours_ago)
    client.append("INBOX", "", old, b"From: a@b.test\r\nSubject: waiting\r\n\r\nold\r\n")
    client.append("INBOX", r"(\Seen)", None, b"From: a@b.test\r\nSubject: read\r\n\r\nnew\r\n")
    client.logout()
    return dt.datetime.fromtimestamp(two_hours_ago, dt.UTC)


def _box(mail: MailServers, protocol: str = "imap-ssl", **doc: Any) -> dict[str, Any]:
    port = mail.ports["imaps" if protocol == "imap-ssl" else "pop3s"]
    return {**channel(protocol, port, user=BOX, name="Backlog"), **doc}


def _json(cli: Any, config_dir: Path, *args: str) -> dict[str, Any]:
    result = cli("test", "--dir", str(config_dir), "--format", "json", *args)
    assert result.code == 0, result.out + result.err
    [only] = json.loads(result.out)["results"]
    return dict(only)


def test_imap_reports_count_unseen_and_oldest_and_warns_backlog_for_an_enabled_channel(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
    backlog_box: dt.datetime,
) -> None:
    write(config_dir, _box(mail, enabled=True))
    result = _json(cli, config_dir)
    assert (result["messages"], result["unseen"]) == (2, 1)
    assert result["oldest"] == backlog_box.isoformat()
    stamp = backlog_box.strftime("%Y-%m-%d %H:%M UTC")
    assert result["warnings"] == [
        "backlog: mail is waiting: the contact centre may not be polling this mailbox "
        f"(2 message(s), the oldest from {stamp}, 2 h ago)"
    ]
    assert _json(cli, config_dir, "--backlog-after", "180")["warnings"] == []


def test_a_disabled_channel_has_no_backlog_warning(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
    backlog_box: dt.datetime,
) -> None:
    write(config_dir, _box(mail))
    assert _json(cli, config_dir)["warnings"] == []


def test_pop3_reports_the_count(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
    backlog_box: dt.datetime,
) -> None:
    write(config_dir, _box(mail, "pop3-ssl", enabled=True))
    result = _json(cli, config_dir)
    assert (result["messages"], result["unseen"], result["oldest"]) == (2, None, None)


def test_enabling_a_channel_warns_what_the_contact_centre_will_take(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
    backlog_box: dt.datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(config_dir.parent)
    stamp = backlog_box.strftime("%Y-%m-%d %H:%M UTC")
    warning = (
        "enabling: the contact centre will take 2 message(s) (oldest from "
        f"{stamp}) and remove them from the mailbox"
    )
    write(config_dir, _box(mail))
    plan = cli("plan", "--check-connections", "--format", "json", "--dir", "channels.d")
    assert json.loads(plan.out)["connection_tests"]["results"][0]["warnings"] == []
    assert cli("apply", "--auto-approve", "--dir", "channels.d").code == 0

    write(config_dir, _box(mail, enabled=True))  # disabled -> enabled
    plan = cli("plan", "--check-connections", "--format", "json", "--dir", "channels.d")
    assert json.loads(plan.out)["connection_tests"]["results"][0]["warnings"] == [warning]
    applied = cli("apply", "--auto-approve", "--dir", "channels.d")
    assert applied.code == 0
    assert f"warning: EmailChannel 'Backlog' (incoming): {warning}\n" in applied.err


def test_text_and_the_json_mailbox_section_show_count_unseen_and_the_oldest_age(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
    backlog_box: dt.datetime,
) -> None:
    write(config_dir, _box(mail))
    text = cli("test", "--dir", str(config_dir))
    assert text.code == 0, text.out
    assert "ok (2 messages, 1 unseen, oldest 2 h old)" in text.out.splitlines()[1]
    result = cli("test", "--dir", str(config_dir), "--format", "json")
    [figures] = json.loads(result.out)["mailbox"]
    assert figures == {
        "name": "Backlog",
        "endpoint": f"imap-ssl://localhost:{mail.ports['imaps']}",
        "messages": 2,
        "unseen": 1,
        "oldest": backlog_box.isoformat(),
        "oldest_age_minutes": figures["oldest_age_minutes"],
    }
    assert 120 <= figures["oldest_age_minutes"] < 125
