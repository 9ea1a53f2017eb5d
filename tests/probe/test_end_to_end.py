"""`channelsync test --end-to-end`: a probe through Postfix -> queue -> Dovecot -> IMAP/POP3."""

from __future__ import annotations

import imaplib
import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest

from tests.dnsserver import DnsServer
from tests.mailservers import PASSWORD, USER, MailServers
from tests.probe.conftest import SECRET_ENV, write

Password = Any


def _relay(mail: MailServers, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "SmtpServer",
        "name": "Relay",
        "host": "localhost",
        "port": mail.ports["submission"],
        "user": USER,
        "password": "${env:" + SECRET_ENV + "}",
        "tls": {"ca_file": "certs/ca.pem"},
        **fields,
    }


def _channel(
    mail: MailServers, name: str, email: str, mailbox: str, protocol: str = "imap-ssl", **doc: Any
) -> dict[str, Any]:
    port = mail.ports["imaps" if protocol == "imap-ssl" else "pop3s"]
    return {
        "kind": "EmailChannel",
        "name": name,
        "email": email,
        "enabled": True,
        "incoming": {
            "server": "localhost",
            "protocol": protocol,
            "port": port,
            "user": mailbox,
            "password": "${env:" + SECRET_ENV + "}",
            "tls": {"ca_file": "certs/ca.pem"},
        },
        **doc,
    }


@pytest.fixture(autouse=True)
def _dns(dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """--end-to-end checks DNS too: against the test zone, never the system's resolver."""
    monkeypatch.setenv("CHANNELSYNC_DNS_SERVER", dns_server.address)


def _run(cli: Any, config_dir: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("test", "--dir", str(config_dir), "--end-to-end", "--format", "json", *args)
    assert "Traceback" not in result.err
    return result.code, json.loads(result.out)


def _imap(mail: MailServers, user: str) -> imaplib.IMAP4_SSL:
    ctx = ssl.create_default_context(cafile=str(mail.ca_file))
    client = imaplib.IMAP4_SSL("localhost", mail.ports["imaps"], ssl_context=ctx, timeout=10)
    client.login(user, PASSWORD)
    return client


def _mailbox_bytes(mail: MailServers, user: str) -> list[tuple[bytes, bytes]]:
    """Every message in the INBOX with its flags, read without changing anything."""
    client = _imap(mail, user)
    try:
        client.select("INBOX", readonly=True)
        _, data = client.uid("FETCH", "1:*", "(FLAGS BODY.PEEK[])")
        return sorted((item[0], item[1]) for item in data if isinstance(item, tuple))
    finally:
        client.logout()


def test_imap_round_trip_arrives_with_latency_hops_and_nothing_changed(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    write(
        config_dir,
        _relay(mail),
        _channel(
            mail,
            "Acme Support",
            "support@acme.test",
            "support@acme.test",
            outgoing={"server": "Relay"},
        ),
    )
    code, report = _run(cli, config_dir, "--e2e-timeout", "20")
    assert code == 0, [t["error"] for t in report["e2e"]]
    [trip] = report["e2e"]
    assert trip["status"] == "arrived"
    assert 0 < trip["latency_ms"] < 20_000
    assert trip["sent_through"] == f"smtp-starttls://localhost:{mail.ports['submission']}"
    assert trip["hops"] and trip["hops"][0].startswith("[127.0.0.1] -> localhost")
    assert trip["cleaned"] is None
    assert report["summary"]["e2e"] == {"arrived": 1, "failed": 0, "not_testable": 0}
    messages = _mailbox_bytes(mail, "support@acme.test")
    probes = [m for m in messages if f"X-Channelsync-Probe: {trip['probe_id']}".encode() in m[1]]
    assert len(probes) == 1
    assert b"\\Seen" not in probes[0][0]  # read with PEEK: still unread for the contact centre
    assert f"Subject: [channelsync probe] {trip['probe_id']}".encode() in probes[0][1]


def test_pop3_round_trip_with_the_channels_own_account(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    override = {"server": "Relay", "override": True, "user": USER}
    override["password"] = "${env:" + SECRET_ENV + "}"
    write(
        config_dir,
        _relay(mail, user=None, password=None),
        _channel(mail, "Acme Pop", "pop@acme.test", "pop@acme.test", "pop3-ssl", outgoing=override),
    )
    code, report = _run(cli, config_dir, "--e2e-timeout", "20")
    assert code == 0, [t["error"] for t in report["e2e"]]
    assert report["e2e"][0]["status"] == "arrived"


def test_never_arriving_probe_times_out_and_points_at_the_queues(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    # the MX of google.test points at Google: the probe never reaches the mailbox polled here
    # (the test Postfix discards it), and the DNS check says why
    channel = _channel(mail, "Lost", "lost@google.test", "quiet@acme.test")
    write(config_dir, _relay(mail, default=True), channel)
    started = time.monotonic()
    result = cli("test", "--dir", str(config_dir), "--end-to-end", "--e2e-timeout", "1.5")
    assert time.monotonic() - started < 10
    assert result.code == 1
    assert (
        "error: EmailChannel 'Lost' (dns, google.test): mx_mismatch: MX of google.test points at "
        "Google (aspmx.l.google.com), but the channel polls localhost (localhost); mail to the "
        "address lands where the MX points, not in the mailbox the channel polls: fix the MX, or "
        "poll the mailbox at the MX's provider"
    ) in result.out.splitlines()
    [line] = [x for x in result.out.splitlines() if x.startswith("error: ") and "end-to-end" in x]
    probe_id = line.split("[channelsync probe] ")[1].split("'")[0]
    assert line == (
        "error: EmailChannel 'Lost' (end-to-end): e2e_timeout: the probe '[channelsync probe] "
        f"{probe_id}' did not arrive in imap-ssl://localhost:{mail.ports['imaps']} within 1.5 s; "
        "the contact centre polls this mailbox and may have taken the probe into a queue: look "
        f"for the subject '[channelsync probe] {probe_id}' in the queues; otherwise check where "
        "mail for google.test goes (channelsync test --dns) and the sending server's queue"
    )


def test_channel_on_vcc_internal_is_not_testable_with_the_reason(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    write(config_dir, _channel(mail, "Internal", "support@acme.test", "support@acme.test"))
    result = cli("test", "--dir", str(config_dir), "--end-to-end", "--e2e-timeout", "1")
    assert result.code == 0
    assert (
        "note: EmailChannel 'Internal' (end-to-end): e2e_not_testable: not testable from "
        "outside: replies leave through 'VCC Internal', the tenant's internal SMTP server, from "
        "the tenant's default address (the vendor does not recommend it); give the channel a "
        "custom SmtpServer (outgoing.server) to test the path its replies take"
    ) in result.out.splitlines()
    assert result.out.endswith("\n0 arrived, 0 failed, 1 not testable\n")


@pytest.mark.parametrize("protocol", ["imap-ssl", "pop3-ssl"])
def test_cleanup_removes_only_the_probe_and_leaves_other_mail_byte_identical(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
    protocol: str,
) -> None:
    client = _imap(mail, "cleanup@acme.test")
    for i, flags in enumerate(("", r"(\Seen)", r"(\Deleted)")):  # one marked deleted by a client
        body = f"From: a@b.test\r\nSubject: keep {i}\r\n\r\nkeep me {i}\r\n".encode()
        client.append("INBOX", flags, imaplib.Time2Internaldate(1700000000 + i), body)
    client.logout()
    before = _mailbox_bytes(mail, "cleanup@acme.test")
    write(
        config_dir,
        _relay(mail, default=True),
        _channel(mail, "Cleanup", "cleanup@acme.test", "cleanup@acme.test", protocol),
    )
    code, report = _run(cli, config_dir, "--e2e-timeout", "20", "--cleanup")
    assert code == 0, [t["error"] for t in report["e2e"]]
    assert report["e2e"][0]["cleaned"] == 1
    assert _mailbox_bytes(mail, "cleanup@acme.test") == before


def test_cleanup_without_end_to_end_is_a_usage_error(config_dir: Path, cli: Any) -> None:
    result = cli("test", "--dir", str(config_dir), "--cleanup")
    assert (result.code, result.err) == (1, "error: --cleanup works with --end-to-end only\n")


@pytest.mark.parametrize("count", [6])
def test_channels_run_concurrently_in_about_the_slowest_delivery(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password, cli: Any, count: int
) -> None:
    channels = [
        _channel(mail, f"Lost {i}", f"lost{i}@elsewhere.test", "quiet@acme.test")
        for i in range(count)
    ]
    write(config_dir, _relay(mail, default=True), *channels)
    started = time.monotonic()
    code, report = _run(cli, config_dir, "--e2e-timeout", "2")
    elapsed = time.monotonic() - started
    assert code == 1
    assert [t["status"] for t in report["e2e"]] == ["timeout"] * count
    assert elapsed < 2 * count / 2  # far below the sum of the waits


def test_hops_are_oldest_first_and_authentication_verdicts_are_read() -> None:
    from channelsync.probe.e2e import Trip, _read_headers

    trip = Trip("x", "a@b.test", "arrived", probe_id="1")
    _read_headers(
        trip,
        b"Authentication-Results: mx.google.com;\r\n dkim=pass header.i=@acme.test;\r\n"
        b" spf=softfail (sender IP is 192.0.2.1) smtp.mailfrom=acme.test;\r\n"
        b" dmarc=fail (p=NONE) header.from=acme.test\r\n"
        b"Received: from mail.acme.test (mail.acme.test [192.0.2.1])\r\n"
        b"        by mx.google.com with ESMTPS id abc; Tue, 1 Dec 2026 10:00:01 +0000\r\n"
        b"Received: from [10.0.0.5] by mail.acme.test with ESMTPSA; Tue, 1 Dec 2026\r\n\r\n",
    )
    assert trip.hops == ["[10.0.0.5] -> mail.acme.test", "mail.acme.test -> mx.google.com"]
    assert trip.authentication == {"dkim": "pass", "spf": "softfail", "dmarc": "fail"}


def test_refused_sending_is_e2e_send_failed_with_the_servers_words_and_no_secret(
    mail: MailServers, config_dir: Path, mail_ca: Path, password: Password, cli: Any
) -> None:
    password("Wrong-Secret-42")
    write(
        config_dir,
        _relay(mail, default=True),
        _channel(mail, "Refused", "support@acme.test", "support@acme.test"),
    )
    result = cli("test", "--dir", str(config_dir), "--end-to-end", "--e2e-timeout", "5")
    assert result.code == 1
    assert (
        "error: EmailChannel 'Refused' (end-to-end): e2e_send_failed: sending the probe failed: "
        "auth_failed: 535 5.7.8 Error: authentication failed: "
    ) in result.out
    assert "Wrong-Secret-42" not in result.out + result.err
