"""Connection tests against real Dovecot and Postfix on loopback (started by the session)."""

from __future__ import annotations

import datetime
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import mailservers
from tests.mailservers import MailServers
from tests.probe.conftest import (
    Probe,
    assert_failed,
    channel,
    oauth,
    only,
    smtp_server,
)
from tests.probe.responder import Responder, imap

Password = Callable[[str], str]


def _exchange(
    mail: MailServers,
    monkeypatch: pytest.MonkeyPatch,
    client: str,
    secret: str,
    *,
    protocol: str = "imap-ssl",
    tenant: str = "",
) -> dict[str, Any]:
    """A microsoft-exchange channel whose token comes from the loopback token service."""
    monkeypatch.setenv("SSL_CERT_FILE", str(mail.ca_file))
    monkeypatch.setenv("OAUTH_SECRET", secret)
    port = mail.ports["imaps" if protocol == "imap-ssl" else "pop3s"]
    return channel(
        protocol,
        port,
        auth="microsoft-exchange",
        oauth=oauth(client, "OAUTH_SECRET", mail.authority, tenant=tenant),
    )


def _inbox_count(mail: MailServers) -> int:
    box = mail.state / "mail" / "example.test" / "testuser" / "Maildir"
    return sum(1 for folder in ("new", "cur") for _ in (box / folder).iterdir())


@pytest.mark.parametrize(
    ("protocol", "port_name"),
    [("imap-ssl", "imaps"), ("imap", "imap"), ("pop3-ssl", "pop3s"), ("pop3", "pop3")],
)
def test_incoming_logs_in_over_tls_and_counts_without_touching_mail(
    mail: MailServers, probe: Probe, password: Password, protocol: str, port_name: str
) -> None:
    result = only(probe(channel(protocol, mail.ports[port_name])))
    assert result.ok, result.error
    assert result.messages == mailservers.INBOX_MESSAGES
    assert result.tls.version in ("TLSv1.2", "TLSv1.3")  # STARTTLS/STLS used on plain ports
    assert result.tls.cert_expires_in_days is not None and result.tls.cert_expires_in_days > 21
    assert result.warnings == []
    assert _inbox_count(mail) == mailservers.INBOX_MESSAGES


@pytest.mark.parametrize(("protocol", "port_name"), [("imap", "imap"), ("pop3-ssl", "pop3s")])
def test_wrong_password_is_auth_failed_with_the_servers_words(
    mail: MailServers, probe: Probe, password: Password, protocol: str, port_name: str
) -> None:
    secret = password("Wrong-Secret-42")
    result = only(probe(channel(protocol, mail.ports[port_name])))
    assert_failed(result, "auth_failed")
    assert result.error is not None
    expected = {
        "imap": "[AUTHENTICATIONFAILED] Authentication failed.",
        "pop3-ssl": "-ERR [AUTH] Authentication failed.",
    }[protocol]
    assert result.error.message == expected
    assert (
        result.error.hint == "check the user name and the password the secret reference points to"
    )
    assert secret not in str(result.to_json())


@pytest.mark.parametrize("protocol", ["imap-ssl", "pop3-ssl"])
def test_exchange_oauth_gets_a_token_and_logs_in_with_xoauth2(
    mail: MailServers, probe: Probe, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    doc = _exchange(mail, monkeypatch, "good-client", "good-secret", protocol=protocol)
    result = only(probe(doc))
    assert result.ok, result.error
    assert result.messages == mailservers.INBOX_MESSAGES


def test_token_endpoint_refusal_is_oauth_token_with_the_providers_code(
    mail: MailServers, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _exchange(mail, monkeypatch, "good-client", "expired-Secret-value")
    result = only(probe(doc))
    assert_failed(result, "oauth_token")
    assert result.error is not None
    assert result.error.message.startswith(
        f"token request to {mail.authority}/{mailservers.TENANT} refused: invalid_client "
        "(AADSTS7000215: Invalid client secret provided."
    )
    assert "client secret is wrong or expired" in result.error.hint
    assert "expired-Secret-value" not in str(result.to_json())


def test_unknown_tenant_is_oauth_token(
    mail: MailServers, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _exchange(mail, monkeypatch, "good-client", "good-secret", tenant="no-such-tenant")
    result = only(probe(doc))
    assert_failed(result, "oauth_token")
    assert result.error is not None
    assert (
        "invalid_tenant (AADSTS90002: Tenant 'no-such-tenant' not found.)" in result.error.message
    )


def test_token_the_server_rejects_is_auth_failed(
    mail: MailServers, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = _exchange(mail, monkeypatch, "other-client", "other-secret")
    result = only(probe(doc))
    assert_failed(result, "auth_failed")
    assert result.error is not None
    assert result.error.message == "[AUTHENTICATIONFAILED] Authentication failed."
    assert "IMAP.AccessAsApp" in result.error.hint


def test_tls_spoken_to_a_plain_port_is_wrong_protocol(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    result = only(probe(channel("imap-ssl", mail.ports["imap"])))
    assert_failed(result, "wrong_protocol")
    assert result.error is not None
    assert "plain-text answer" in result.error.message
    assert "speaks plain text, not TLS" in result.error.hint


def test_certificate_from_an_unknown_ca_is_cert_untrusted(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    result = only(probe(channel("imap-ssl", mail.ports["imaps"], ca=False)))
    assert_failed(result, "cert_untrusted")
    assert result.error is not None
    assert "unable to get local issuer certificate" in result.error.message
    assert "tls.ca_file" in result.error.hint


def test_ssl_cert_file_is_trusted(
    mail: MailServers, probe: Probe, password: Password, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(mail.ca_file))
    assert only(probe(channel("pop3-ssl", mail.ports["pop3s"], ca=False))).ok


def test_smtp_submission_and_smtps_authenticate(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    starttls = smtp_server("starttls", mail.ports["submission"], name="Submission")
    implicit = smtp_server("ssl", mail.ports["smtps"], name="SMTPS")
    results = probe(starttls, implicit)
    assert [r.ok for r in results] == [True, True], [r.error for r in results]
    assert [r.protocol for r in results] == ["smtp-starttls", "smtp-ssl"]
    assert all(r.tls.version for r in results)


def test_smtp_wrong_password_is_auth_failed(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    secret = password("not-the-password")
    result = only(probe(smtp_server("ssl", mail.ports["smtps"])))
    assert_failed(result, "auth_failed")
    assert result.error is not None
    assert result.error.message == "535 5.7.8 Error: authentication failed: (reason unavailable)"
    assert secret not in str(result.to_json())


def test_server_without_starttls_is_starttls_unavailable(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    result = only(probe(smtp_server("starttls", mail.ports["smtp_plain"])))
    assert_failed(result, "starttls_unavailable")
    assert result.error is not None
    assert (
        result.error.message
        == f"localhost:{mail.ports['smtp_plain']} does not offer STARTTLS after EHLO"
    )


def test_smtp_security_none_works_with_a_warning(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    doc = smtp_server("none", mail.ports["smtp_plain"], ca=False, allow_insecure_auth=True)
    result = only(probe(doc))
    assert result.ok, result.error
    assert result.warnings == [
        "security: none: mail and the password travel without TLS (allow_insecure_auth: true); "
        "use starttls or ssl"
    ]


def test_send_test_message_reports_the_queue_id(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    results = probe(
        smtp_server("starttls", mail.ports["submission"]),
        send_test_message="someone@example.com",
    )
    result = only(results)
    assert result.ok, result.error
    assert result.queue_id and result.queue_id.isalnum()


def test_channel_override_is_tested_with_the_channels_account(
    mail: MailServers, probe: Probe, password: Password, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PASSWORD", "wrong relay password")
    relay = smtp_server("ssl", mail.ports["smtps"], password="${env:RELAY_PASSWORD}")
    doc = channel("imap-ssl", mail.ports["imaps"])
    doc["outgoing"] = {
        "server": "Test Relay",
        "override": True,
        "user": mailservers.USER,
        "password": "${env:PROBE_TEST_PASSWORD}",
    }
    results = probe(doc, relay)
    assert [(r.kind, r.check, r.ok) for r in results] == [
        ("EmailChannel", "incoming", True),
        ("EmailChannel", "outgoing", True),
        ("SmtpServer", "outgoing", False),
    ]


def _expiring_imap(
    mail: MailServers, responders: Callable[..., Responder], not_after: datetime.datetime
) -> Responder:
    greeting, script = imap()
    ctx = mail.issue("leaf", "localhost", not_after=not_after)
    return responders(greeting, script, ctx)


def test_expired_certificate_is_cert_expired(
    mail: MailServers, probe: Probe, password: Password, responders: Callable[..., Responder]
) -> None:
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=3)
    server = _expiring_imap(mail, responders, past)
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "cert_expired")
    assert result.error is not None
    assert result.error.message == "certificate verify failed: certificate has expired"


def test_certificate_expiring_soon_passes_with_a_warning(
    mail: MailServers, probe: Probe, password: Password, responders: Callable[..., Responder]
) -> None:
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=10, hours=1)
    server = _expiring_imap(mail, responders, soon)
    result = only(probe(channel("imap-ssl", server.port)))
    assert result.ok, result.error
    assert result.tls.cert_expires_in_days == 10
    assert result.warnings == [
        "the server's certificate expires in 10 day(s); ask the provider to renew it"
    ]


def test_certificate_for_another_host_is_cert_hostname(
    mail: MailServers, probe: Probe, password: Password, responders: Callable[..., Responder]
) -> None:
    greeting, script = imap()
    server = responders(greeting, script, mail.issue("leaf", "mail.other.example"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "cert_hostname")
    assert result.error is not None
    assert "Hostname mismatch" in result.error.message
    assert "not valid for 'localhost'" in result.error.hint


def test_server_that_drops_the_handshake_is_tls_handshake(
    mail: MailServers, probe: Probe, password: Password, responders: Callable[..., Responder]
) -> None:
    server = responders(None, lambda line, state: None, hang_up_on_hello=True)
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "tls_handshake")


def test_starttls_upgrade_failure_is_reported(
    mail: MailServers, probe: Probe, password: Password, responders: Callable[..., Responder]
) -> None:
    greeting, script = imap(capabilities="IMAP4rev1 STARTTLS AUTH=PLAIN")
    server = responders(greeting, script)
    result = only(probe(channel("imap", server.port)))
    assert_failed(result, "starttls_unavailable")
    assert not any("LOGIN" in line for line in server.received)


def test_ssl_context_is_verified_by_default(mail: MailServers) -> None:
    from channelsync.probe.check import Check
    from channelsync.probe.tls import context_for

    ctx = context_for(Check("EmailChannel", "x", "incoming", "h", 1, "imap-ssl", Path(".")))
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname


@pytest.mark.parametrize(
    ("protocol", "port_name", "found", "wanted", "advice"),
    [
        ("pop3", "imap", "IMAP", "POP3", "POP3 uses 110, or 995 with pop3-ssl"),
        ("pop3-ssl", "imaps", "IMAP", "POP3", "POP3 uses 110, or 995 with pop3-ssl"),
        ("imap", "pop3", "POP3", "IMAP", "IMAP uses 143, or 993 with imap-ssl"),
        ("imap-ssl", "pop3s", "POP3", "IMAP", "IMAP uses 143, or 993 with imap-ssl"),
        ("imap", "submission", "SMTP", "IMAP", "IMAP uses 143, or 993 with imap-ssl"),
        ("pop3", "submission", "SMTP", "POP3", "POP3 uses 110, or 995 with pop3-ssl"),
    ],
)
def test_mailbox_check_on_another_protocols_port_says_what_answered(
    probe: Probe,
    mail: MailServers,
    password: Password,
    protocol: str,
    port_name: str,
    found: str,
    wanted: str,
    advice: str,
) -> None:
    port = mail.ports[port_name]
    result = only(probe(channel(protocol, port)))
    assert_failed(result, "wrong_protocol")
    assert result.error is not None
    article = "an" if found == "IMAP" else "a"
    assert result.error.message.startswith(
        f"localhost:{port} answered as {article} {found} server: "
    )
    assert result.error.hint == f"this port speaks {found}, not {wanted}; check the port ({advice})"


@pytest.mark.parametrize(
    ("security", "port_name", "found"),
    [
        ("none", "imap", "IMAP"),
        ("none", "pop3", "POP3"),
        ("ssl", "imaps", "IMAP"),
        ("ssl", "pop3s", "POP3"),
    ],
)
def test_smtp_check_on_a_mailbox_port_says_what_answered(
    probe: Probe, mail: MailServers, password: Password, security: str, port_name: str, found: str
) -> None:
    port = mail.ports[port_name]
    consent = {"allow_insecure_auth": True} if security == "none" else {}
    result = only(probe(smtp_server(security, port, **consent)))
    assert_failed(result, "wrong_protocol")
    assert result.error is not None
    greeting = "* OK [CAPABILITY" if found == "IMAP" else "+OK"
    article = "an" if found == "IMAP" else "a"
    assert result.error.message.startswith(
        f"localhost:{port} answered as {article} {found} server: {greeting}"
    )
    assert result.error.hint == (
        f"this port speaks {found}, not SMTP; check the port (SMTP uses 587 with security: "
        "starttls, or 465 with security: ssl)"
    )


def _other_ca(folder: Path) -> Path:
    """A CA that signed nothing the servers present."""
    import trustme

    path = folder / "certs" / "other.pem"
    path.parent.mkdir(exist_ok=True)
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


@pytest.mark.parametrize(
    ("doc", "port_name"),
    [
        (lambda port: channel("imap", port, ca=False), "imap"),
        (lambda port: channel("pop3", port, ca=False), "pop3"),
        (lambda port: smtp_server("starttls", port, ca=False), "submission"),
    ],
    ids=["imap-starttls", "pop3-stls", "smtp-starttls"],
)
def test_untrusted_certificate_after_starttls_is_cert_untrusted(
    mail: MailServers, probe: Probe, password: Password, doc: Any, port_name: str
) -> None:
    result = only(probe(doc(mail.ports[port_name])))
    assert_failed(result, "cert_untrusted")
    assert result.error is not None
    assert result.error.message == (
        "certificate verify failed: unable to get local issuer certificate"
    )
    assert result.error.hint == (
        "the certificate is not signed by a CA in the system store; for a private CA set "
        "tls.ca_file (relative to the YAML file) or SSL_CERT_FILE"
    )


def test_tls_ca_file_is_the_only_trust_when_set(
    mail: MailServers,
    probe: Probe,
    password: Password,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """tls.ca_file, else SSL_CERT_FILE, else the system store: never a mix of them."""
    _other_ca(config_dir)
    monkeypatch.setenv("SSL_CERT_FILE", str(mail.ca_file))  # would trust the server
    doc = channel("imap-ssl", mail.ports["imaps"], tls={"ca_file": "certs/other.pem"})
    result = only(probe(doc))
    assert_failed(result, "cert_untrusted")
    assert result.error is not None
    assert result.error.hint.startswith(
        "the certificate is not signed by a CA in tls.ca_file certs/other.pem (the only CAs "
        "trusted here)"
    )


def test_hint_names_ssl_cert_file_when_it_is_in_force(
    mail: MailServers,
    probe: Probe,
    password: Password,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = _other_ca(config_dir)
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    result = only(probe(smtp_server("ssl", mail.ports["smtps"], ca=False)))
    assert_failed(result, "cert_untrusted")
    assert result.error is not None
    assert f"not signed by a CA in SSL_CERT_FILE={other} " in result.error.hint


def test_unreadable_trust_is_a_clear_failure(
    mail: MailServers,
    probe: Probe,
    password: Password,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (config_dir / "certs" / "bad.pem").write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(config_dir / "missing.pem"))
    bad_file = channel("imap-ssl", mail.ports["imaps"], tls={"ca_file": "certs/bad.pem"})
    missing_env = smtp_server("ssl", mail.ports["smtps"], ca=False)
    results = probe(bad_file, missing_env)
    assert [r.error.message if r.error else None for r in results] == [
        "cannot load the CA certificates of tls.ca_file certs/bad.pem "
        "(no certificate or crl found); fix the path or the file; nothing was sent to the server",
        f"cannot load the CA certificates of SSL_CERT_FILE={config_dir / 'missing.pem'} "
        "(No such file or directory); fix the path or the file; nothing was sent to the server",
    ]
    assert [r.error.hint if r.error else None for r in results] == [
        "tls.ca_file is relative to the YAML file and must hold PEM certificates",
        "SSL_CERT_FILE must name a file of PEM certificates; fix it, or unset it to trust "
        "the system store",
    ]


def _oauth_channel(mail: MailServers, monkeypatch: pytest.MonkeyPatch, ca: bool = True) -> Any:
    monkeypatch.setenv("OAUTH_SECRET", "good-secret")
    return channel(
        "imap-ssl",
        mail.ports["imaps"],
        ca=ca,
        auth="microsoft-exchange",
        oauth=oauth("good-client", "OAUTH_SECRET", mail.authority),
    )


def test_requests_ca_bundle_does_not_override_the_trust_of_the_token_endpoint(
    mail: MailServers,
    probe: Probe,
    config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(mail.ca_file))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(_other_ca(config_dir)))
    result = only(probe(_oauth_channel(mail, monkeypatch, ca=False)))
    assert result.ok, result.error


def test_untrusted_token_endpoint_is_cert_untrusted_naming_the_trust(
    mail: MailServers,
    probe: Probe,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(mail.ca_file))  # must not be used
    result = only(probe(_oauth_channel(mail, monkeypatch, ca=False)))
    assert_failed(result, "cert_untrusted")
    assert result.error is not None
    assert result.error.message.startswith(
        f"certificate of the token endpoint {mail.authority}/{mailservers.TENANT} not trusted ("
    )
    assert "not signed by a CA in the system store" in result.error.hint


def test_token_endpoint_trusts_the_resources_ca_file(
    mail: MailServers, probe: Probe, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert only(probe(_oauth_channel(mail, monkeypatch))).ok
