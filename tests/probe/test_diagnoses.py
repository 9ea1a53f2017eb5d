"""Diagnoses that need no real mail server: network failures, vendor replies, secrets."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from channelsync.probe.diagnose import scrub
from tests.mailservers import free_port
from tests.probe.conftest import Probe, assert_failed, channel, only, smtp_server
from tests.probe.responder import Responder, imap, smtp

Responders = Callable[..., Responder]
Password = Callable[[str], str]

GMAIL_IMAP_APP_PASSWORD = (
    "NO [ALERT] Application-specific password required: "
    "https://support.google.com/accounts/answer/185833 (Failure)"
)
GMAIL_SMTP_APP_PASSWORD = (
    "534-5.7.9 Application-specific password required. Learn more at\r\n"
    "534 5.7.9  https://support.google.com/mail/?p=InvalidSecondFactor"
)
EXCHANGE_SMTP_AUTH_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the "
    "Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
)
EXCHANGE_BASIC_DISABLED = (
    "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."
)


@pytest.fixture
def tls(config_dir: object) -> Callable[[str], object]:
    """A private CA in certs/ca.pem and server contexts for host names it signs."""
    import ssl
    from pathlib import Path

    ca = trustme.CA()
    folder = Path(str(config_dir)) / "certs"
    folder.mkdir(exist_ok=True)
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))

    def server(host: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(host).configure_cert(ctx)
        return ctx

    return server


def test_unresolvable_name_is_dns(probe: Probe, password: Password) -> None:
    result = only(probe(channel("imap-ssl", 993, server="nonexistent.invalid", ca=False)))
    assert_failed(result, "dns")
    assert result.error is not None
    assert result.error.message.startswith("cannot resolve 'nonexistent.invalid': ")


def test_closed_port_is_refused(probe: Probe, password: Password) -> None:
    port = free_port()
    result = only(probe(channel("pop3-ssl", port, server="127.0.0.1", ca=False)))
    assert_failed(result, "refused")
    assert result.error is not None
    assert result.error.message == f"connection to 127.0.0.1:{port} refused"
    assert result.error.hint == (
        f"nothing accepts connections on 127.0.0.1:{port}; check the port and the protocol"
    )


@pytest.mark.parametrize("protocol", ["imap", "pop3", "imap-ssl"])
def test_silent_server_is_timeout_within_the_bound(
    probe: Probe, password: Password, silent_port: int, protocol: str
) -> None:
    started = time.monotonic()
    result = only(probe(channel(protocol, silent_port, server="127.0.0.1", ca=False), timeout=0.5))
    assert time.monotonic() - started < 2
    assert_failed(result, "timeout")
    assert result.error is not None
    assert result.error.message.startswith("no answer within 0.5 s (")


def test_smtp_silent_server_is_timeout(probe: Probe, password: Password, silent_port: int) -> None:
    result = only(probe(smtp_server("starttls", silent_port, ca=False), timeout=0.5))
    assert_failed(result, "timeout")


def test_timeouts_run_concurrently(probe: Probe, password: Password, silent_port: int) -> None:
    docs = [
        channel("imap", silent_port, name=f"C{i}", server="127.0.0.1", ca=False) for i in range(20)
    ]
    for i, doc in enumerate(docs):
        doc["email"] = f"c{i}@example.test"
    started = time.monotonic()
    results = probe(*docs, timeout=0.5)
    assert time.monotonic() - started < 3
    assert {r.error.code for r in results if r.error} == {"timeout"}


def test_by_default_a_hundred_slow_servers_take_one_timeout_not_four(
    probe: Probe, password: Password, silent_port: int
) -> None:
    docs = [
        channel("imap", silent_port, name=f"C{i}", server="127.0.0.1", ca=False) for i in range(128)
    ]
    for i, doc in enumerate(docs):
        doc["email"] = f"c{i}@example.test"
    started = time.monotonic()
    results = probe(*docs, timeout=0.6)
    assert time.monotonic() - started < 1.8  # 32 at a time took four timeouts: 2.4 s
    assert len(results) == 128
    assert {r.error.code for r in results if r.error} == {"timeout"}


@pytest.mark.parametrize(("value", "problem"), [(None, "is not set"), ("", "is empty")])
def test_missing_or_empty_secret_fails_the_check_at_its_reference_before_connecting(
    probe: Probe,
    monkeypatch: pytest.MonkeyPatch,
    responders: Responders,
    config_dir: Path,
    value: str | None,
    problem: str,
) -> None:
    if value is None:
        monkeypatch.delenv("PROBE_TEST_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("PROBE_TEST_PASSWORD", value)
    server = responders(*imap())
    result = only(probe(channel("imap", server.port, ca=False, allow_insecure_auth=True)))
    assert_failed(result, "secret_unavailable")
    assert result.error is not None
    path = config_dir / "test.yaml"
    column = path.read_text().index('"${env:') + 1
    assert result.error.message == (
        f"{path}:1:{column}: incoming.password ${{env:PROBE_TEST_PASSWORD}}: environment "
        f"variable PROBE_TEST_PASSWORD {problem}; nothing was sent to the server"
    )
    assert server.received == []


def test_no_starttls_refuses_to_send_the_password(
    probe: Probe, password: Password, responders: Responders
) -> None:
    server = responders(*imap())
    result = only(probe(channel("imap", server.port, ca=False)))
    assert_failed(result, "insecure_auth_refused")
    assert result.error is not None
    assert result.error.message == (
        f"localhost:{server.port} offers no STARTTLS, so the credentials were not sent"
    )
    assert "incoming.allow_insecure_auth: true" in result.error.hint
    assert not any("LOGIN" in line for line in server.received)


def test_allow_insecure_auth_logs_in_with_a_warning(
    probe: Probe, password: Password, responders: Responders
) -> None:
    server = responders(*imap())
    result = only(probe(channel("imap", server.port, ca=False, allow_insecure_auth=True)))
    assert result.ok, result.error
    assert result.messages == 3
    assert result.tls.version is None
    assert result.warnings == [
        "the credentials were sent without TLS (incoming.allow_insecure_auth: true)"
    ]
    assert any(line.split()[1] == "EXAMINE" for line in server.received)  # read-only


def test_gmail_imap_app_password_required(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    server = responders(*imap(login=GMAIL_IMAP_APP_PASSWORD), tls("localhost"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "app_password_required")
    assert result.error is not None
    assert result.error.message == GMAIL_IMAP_APP_PASSWORD.removeprefix("NO ")
    assert "https://myaccount.google.com/apppasswords" in result.error.hint


def test_gmail_smtp_app_password_required(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    server = responders(*smtp(auth_reply=GMAIL_SMTP_APP_PASSWORD), tls("localhost"))
    result = only(probe(smtp_server("ssl", server.port)))
    assert_failed(result, "app_password_required")
    assert result.error is not None
    assert result.error.message == (
        "534 5.7.9 Application-specific password required. Learn more at 5.7.9  "
        "https://support.google.com/mail/?p=InvalidSecondFactor"
    )


@pytest.mark.parametrize("reply", [EXCHANGE_SMTP_AUTH_DISABLED, EXCHANGE_BASIC_DISABLED])
def test_exchange_smtp_basic_auth_disabled(
    probe: Probe,
    password: Password,
    responders: Responders,
    tls: Callable[[str], object],
    reply: str,
) -> None:
    server = responders(*smtp(auth_reply=reply), tls("localhost"))
    result = only(probe(smtp_server("ssl", server.port)))
    assert_failed(result, "basic_auth_disabled")
    assert result.error is not None
    assert result.error.message == reply


def test_exchange_imap_token_accepted_but_mailbox_not_granted(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    script = imap(examine="NO User is authenticated but not connected.")
    server = responders(*script, tls("localhost"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "mailbox")
    assert result.error is not None
    assert result.error.message == "User is authenticated but not connected."
    assert "FullAccess" in result.error.hint


def test_exchange_imap_authenticate_failed_is_auth_failed(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    server = responders(*imap(login="NO AUTHENTICATE failed."), tls("localhost"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "auth_failed")
    assert result.error is not None
    assert result.error.message == "AUTHENTICATE failed."


def test_secrets_echoed_by_the_server_are_scrubbed(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    secret = password("Hunter2-Very-Secret")
    server = responders(*imap(login="NO [AUTHENTICATIONFAILED] you sent: {line}"), tls("localhost"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "auth_failed")
    assert any(secret in line for line in server.received)
    text = str(result.to_json())
    assert secret not in text
    assert "***" in text


def test_smtp_sasl_blob_echoed_by_the_server_is_scrubbed(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    import base64

    secret = password("Another-Secret-99")
    blob = base64.b64encode(f"\0testuser@example.test\0{secret}".encode()).decode()
    server = responders(*smtp(auth_reply=f"535 5.7.8 bad credentials {blob}"), tls("localhost"))
    result = only(probe(smtp_server("ssl", server.port)))
    assert_failed(result, "auth_failed")
    assert result.error is not None
    assert blob not in result.error.message and secret not in result.error.message
    assert result.error.message == "535 5.7.8 bad credentials ***"


def test_imap_quoted_password_echoed_by_the_server_is_scrubbed(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    """LOGIN sends the password as an IMAP quoted string: '"' and '\\' escaped."""
    password('pa"ss\\wordXYZ')
    quoted = '"pa\\"ss\\\\wordXYZ"'
    server = responders(*imap(login="NO [AUTHENTICATIONFAILED] you sent: {line}"), tls("localhost"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "auth_failed")
    assert any(
        line.endswith(f' LOGIN "testuser@example.test" {quoted}') for line in server.received
    )
    assert result.error is not None
    message = result.error.message
    assert message.endswith(' LOGIN "testuser@example.test" ***'), message  # the word, whole
    assert "xyz" not in message.lower() and "ss" not in message
    assert "xyz" not in json.dumps(result.to_json()).lower()


@pytest.mark.parametrize("echo", [str.upper, str.lower, str.swapcase], ids=lambda f: f.__name__)
def test_case_changed_echo_of_the_password_is_scrubbed(
    probe: Probe,
    password: Password,
    responders: Responders,
    tls: Callable[[str], object],
    echo: Callable[[str], str],
) -> None:
    password("SimpleSecret99")
    script = imap(login="NO [AUTHENTICATIONFAILED] you sent: {line}", echo=echo)
    server = responders(*script, tls("localhost"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "auth_failed")
    assert result.error is not None
    message = result.error.message
    assert echo("SimpleSecret99") not in message
    assert "simplesecret99" not in message.lower()
    assert message.lower().endswith(' login "testuser@example.test" ***'), message


@pytest.mark.parametrize("echo", [str, str.upper, str.lower], ids=lambda f: f.__name__)
def test_imap_sasl_plain_payload_echoed_by_the_server_is_scrubbed(
    probe: Probe,
    password: Password,
    responders: Responders,
    tls: Callable[[str], object],
    echo: Callable[[str], str],
) -> None:
    """With LOGINDISABLED the password goes in a SASL PLAIN payload (base64)."""
    import base64

    secret = password("Yet-Another-Secret-77")
    blob = base64.b64encode(f"\0testuser@example.test\0{secret}".encode()).decode()
    script = imap(
        capabilities="IMAP4rev1 LOGINDISABLED AUTH=PLAIN",
        authenticate="NO [AUTHENTICATIONFAILED] bad payload {line}",
        echo=echo,
    )
    server = responders(*script, tls("localhost"))
    result = only(probe(channel("imap-ssl", server.port)))
    assert_failed(result, "auth_failed")
    assert blob in server.received
    assert result.error is not None
    assert result.error.message == "[AUTHENTICATIONFAILED] bad payload ***"


def test_smtp_case_changed_sasl_blob_is_scrubbed(
    probe: Probe, password: Password, responders: Responders, tls: Callable[[str], object]
) -> None:
    import base64

    secret = password("Another-Secret-99")
    blob = base64.b64encode(f"\0testuser@example.test\0{secret}".encode()).decode()
    reply = f"535 5.7.8 bad credentials {blob.swapcase()} ({secret.upper()})"
    server = responders(*smtp(auth_reply=reply), tls("localhost"))
    result = only(probe(smtp_server("ssl", server.port)))
    assert_failed(result, "auth_failed")
    assert result.error is not None
    assert result.error.message == "535 5.7.8 bad credentials *** ***"


def test_xoauth2_payload_and_token_are_scrubbed() -> None:
    """What ``Attempt`` holds for XOAUTH2: the token and the base64 payload, in any case."""
    import base64
    from typing import Any, cast

    from channelsync.probe.check import Attempt
    from channelsync.probe.oauth import xoauth2

    attempt = Attempt(check=cast(Any, None), timeout=1)
    token = attempt.secret("eyJ0eXAiOiJKV1Qi.token-part.Signature_9")
    blob = attempt.sasl(xoauth2("testuser@example.test", token))
    assert blob == base64.b64encode(xoauth2("testuser@example.test", token).encode()).decode()
    text = f"NO {blob} / {blob.lower()} / {token.upper()} / auth=Bearer {token}"
    assert scrub(text, attempt.secrets) == "NO *** / *** / *** / auth=Bearer ***"


@pytest.mark.parametrize(
    ("echoed", "expected"),
    [
        ('a1 LOGIN "u" "pa\\"ss\\\\wordXYZ"', 'a1 LOGIN "u" "***"'),  # IMAP quoted
        ('{"password": "pa\\"ss\\\\wordXYZ"}', '{"password": "***"}'),  # JSON
        ("password=pa%22ss%5CwordXYZ&x=1", "password=***&x=1"),  # form / URL encoded
        ('PA"SS\\WORDXYZ', "***"),  # case-changed, unescaped
        ("cGEic3Ncd29yZFhZWg==", "***"),  # base64 of the password alone, padding and all
    ],
)
def test_scrub_escaped_and_encoded_forms(echoed: str, expected: str) -> None:
    assert scrub(echoed, ['pa"ss\\wordXYZ']) == expected


def _encodings(secret: str) -> dict[str, str]:
    """Every way a server could hand ``secret`` back, each inside other text or blobs."""
    import base64
    import urllib.parse

    raw = secret.encode()
    user = b"testuser@example.test"
    b64 = base64.b64encode
    return {
        "plain": secret,
        "upper": secret.upper(),
        "quoted": json.dumps(secret),
        "url": urllib.parse.quote(secret, safe=""),
        "percent-every-byte": "".join(f"%{b:02X}" for b in raw),
        "percent-mixed": "".join(
            urllib.parse.quote(c, safe="") if i % 2 or not c.isalnum() else c
            for i, c in enumerate(secret)
        ),
        "json-u-escapes": "".join(f"\\u{ord(c):04X}" for c in secret),
        "json-u-escapes-lower": "".join(f"\\u{ord(c):04x}" for c in secret),
        "hex": raw.hex(),
        "hex-upper": raw.hex().upper(),
        "base64": b64(raw).decode(),
        "base64-unpadded": b64(raw).decode().rstrip("="),
        "base64-upper": b64(raw).decode().upper(),
        "base64-offset-1": b64(b"x" + raw + b"tail").decode(),
        "base64-offset-2": b64(b"xy" + raw + b"t").decode(),
        "base64-offset-2-lower": b64(b"xy" + raw).decode().lower(),
        "base64url": base64.urlsafe_b64encode(b"\xff\xfe>" + raw).decode(),
        "base64-after-junk": "abc" + b64(raw).decode(),
        "sasl-plain": b64(b"\0" + user + b"\0" + raw).decode(),
        "sasl-plain-swapcase": b64(b"\0" + user + b"\0" + raw).decode().swapcase(),
        "user-and-password": b64(user + raw).decode(),
        "xoauth2": b64(b"user=" + user + b"\x01auth=Bearer " + raw + b"\x01\x01").decode(),
        "base64-of-hex": b64(raw.hex().encode()).decode(),
        "base64-of-base64": b64(b64(raw)).decode(),
        "hex-of-base64": b64(raw).hex(),
    }


SECRETS = ["Hunter2-Very-Secret", "pa ss", "k\u00e9y+/=?&%", "abc"]


@pytest.mark.parametrize("secret", SECRETS)
@pytest.mark.parametrize("form", sorted(_encodings("x")))
def test_scrub_removes_every_encoding_of_the_secret(secret: str, form: str) -> None:
    echoed = _encodings(secret)[form]
    text = scrub(f"NO [AUTHENTICATIONFAILED] you sent {echoed} (Failure)", [secret])
    assert text.startswith("NO [AUTHENTICATIONFAILED] you sent "), text
    assert text.endswith(" (Failure)"), text
    assert all(value not in text for value in _encodings(secret).values()), text


@pytest.mark.parametrize("width", [4, 19, 76])
def test_scrub_removes_base64_wrapped_over_lines(width: int) -> None:
    import base64
    import textwrap

    from channelsync.probe.diagnose import words

    secret = "Hunter2-Very-Secret"
    blob = base64.b64encode(f"\0testuser@example.test\0{secret} and more".encode()).decode()
    reply = "NO [AUTHENTICATIONFAILED] you sent:\r\n" + "\r\n".join(textwrap.wrap(blob, width))
    text = scrub(words(reply) + " (Failure)", [secret])
    assert text.startswith("NO [AUTHENTICATIONFAILED] you sent: "), text
    assert text.endswith(" (Failure)") and "***" in text, text
    left = "".join(w for w in text.split()[4:-1] if w != "***")
    for offset in range(4):
        chunk = left[offset:]
        chunk = chunk[: len(chunk) - len(chunk) % 4]
        decoded = base64.b64decode(chunk).decode("latin-1")
        assert "Hunter2" not in decoded and "Secret" not in decoded, (text, decoded)


def test_scrub_keeps_the_servers_words_and_is_bounded() -> None:
    reply = "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6 (see https://x.test/?p=1)"
    assert scrub(reply, ["Hunter2-Very-Secret"]) == reply
    started = time.monotonic()
    assert scrub("A" * 1_000_000 + " ok", ["Hunter2-Very-Secret"]) == "[...]"
    words = scrub("word " * 200_000, ["Hunter2-Very-Secret"])
    assert words == "word " * 400 + "[...]"
    assert time.monotonic() - started < 1


def test_scrub_prefers_the_longest_form_and_leaves_other_text_alone() -> None:
    assert scrub("keep this: Secret-1 and secret-12", ["Secret-1", "Secret-12"]) == (
        "keep this: *** and ***"
    )
    assert scrub("nothing to hide", []) == "nothing to hide"
    assert scrub("nothing to hide", [""]) == "nothing to hide"


def test_plain_client_on_a_well_known_tls_port_is_wrong_protocol() -> None:
    from pathlib import Path

    from channelsync.probe.check import Attempt, Check
    from channelsync.probe.diagnose import diagnose

    check = Check("EmailChannel", "x", "incoming", "mail.example", 993, "imap", Path("."))
    attempt = Attempt(check, 5.0)
    attempt.stage = "greeting"
    found = diagnose(TimeoutError(), attempt)
    assert found.code == "wrong_protocol"
    assert found.hint == "port 993 usually expects TLS from the first byte; use imap-ssl"


@pytest.mark.parametrize(
    ("greeting", "found"),
    [
        ("* OK [CAPABILITY IMAP4rev1] Dovecot ready.", "IMAP"),
        ("+OK Dovecot ready.", "POP3"),
        ("220 mail.example.com ESMTP Postfix", "SMTP"),
        ("HTTP/1.1 400 Bad Request", "HTTP"),
        ("\x16\x03\x03\x00\x02", "TLS"),
        ("hello", None),
    ],
)
def test_first_words_tell_which_protocol_answered(greeting: str, found: str | None) -> None:
    from channelsync.probe.diagnose import speaks

    assert speaks(greeting) == found


def test_protocol_error_hint_uses_the_right_article() -> None:
    from pathlib import Path

    from channelsync.probe.check import Check
    from channelsync.probe.diagnose import hint

    imap = Check("EmailChannel", "X", "incoming", "mail.example.com", 143, "imap", Path("."))
    pop3 = Check("EmailChannel", "X", "incoming", "mail.example.com", 110, "pop3-ssl", Path("."))
    assert hint("protocol_error", imap) == (
        "the server at mail.example.com:143 did not answer as an IMAP server should"
    )
    assert hint("protocol_error", pop3) == (
        "the server at mail.example.com:110 did not answer as a POP3 server should"
    )


def test_junit_stays_well_formed_xml_when_the_server_sends_control_characters(
    config_dir: Path,
    password: Password,
    responders: Responders,
    tls: Callable[[str], object],
    cli: Callable[..., object],
) -> None:
    import xml.etree.ElementTree as ET

    from tests.probe.conftest import write

    server = responders(
        *imap(login="NO [AUTHENTICATIONFAILED] bad\x1b[2J\x01\x0b password"), tls("localhost")
    )
    write(config_dir, channel("imap-ssl", server.port))
    result: Any = cli("test", "--dir", str(config_dir), "--format", "junit")
    assert result.code == 1
    failure = ET.fromstring(result.out).find("testsuite/testcase/failure")
    assert failure is not None
    message = failure.get("message", "")
    assert message.startswith("auth_failed: [AUTHENTICATIONFAILED] bad")
    assert message.endswith(" password")
    assert not any(c in message for c in "\x1b\x01\x0b")
