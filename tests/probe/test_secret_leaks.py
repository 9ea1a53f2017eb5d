"""The secret-leak test: scripted servers echo the credentials back in every encoding, and no
output of `test`, `plan --check-connections` or the apply gate holds any of them."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.probe.conftest import channel, smtp_server, write
from tests.probe.responder import Responder, encodings, every_form, imap, pop3, smtp

SECRET = "Hunter2-Very-Secret"
USER = "testuser@example.test"


@pytest.fixture
def tenant_dir(config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(config_dir.parent)
    return config_dir


@pytest.fixture
def server_tls(config_dir: Path) -> ssl.SSLContext:
    """A private CA in certs/ca.pem (the resources' tls.ca_file) that signs 'localhost'."""
    ca = trustme.CA()
    (config_dir / "certs").mkdir(exist_ok=True)
    ca.cert_pem.write_to_path(str(config_dir / "certs" / "ca.pem"))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(ctx)
    return ctx


def _leaks(secret: str) -> list[str]:
    """What must never appear: the secret and the SASL blobs, in every encoding."""
    sasl = [f"\0{USER}\0{secret}", f"{USER}{secret}", secret]
    sasl += [base64.b64encode(text.encode()).decode() for text in sasl]
    return [form for text in sasl for form in encodings(text).values()]


def _decoded(line: str) -> str:
    last = line.rsplit(" ", 1)[-1]
    try:
        return line + base64.b64decode(last, validate=True).decode("utf-8", "replace")
    except ValueError:
        return line


SERVERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "imap-login": lambda port: {**channel("imap-ssl", port), "enabled": True},
    "imap-sasl-plain": lambda port: {**channel("imap-ssl", port), "enabled": True},
    "pop3": lambda port: {**channel("pop3-ssl", port), "enabled": True},
    "smtp-plain": lambda port: smtp_server("ssl", port),
    "smtp-login": lambda port: smtp_server("ssl", port),
}


def _script(kind: str) -> tuple[str, Any]:
    refusal = "NO [AUTHENTICATIONFAILED] you sent: {line}"
    if kind == "imap-login":
        return imap(login=refusal, echo=every_form)
    if kind == "imap-sasl-plain":
        caps = "IMAP4rev1 LOGINDISABLED AUTH=PLAIN"
        return imap(capabilities=caps, authenticate=refusal, echo=every_form)
    if kind == "pop3":
        return pop3(pass_reply="-ERR [AUTH] you sent: {line}", echo=every_form)
    mechanisms = "PLAIN" if kind == "smtp-plain" else "LOGIN"
    return smtp(auth_reply="535 5.7.8 you sent: {line}", mechanisms=mechanisms, echo=every_form)


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_no_output_holds_the_secret_in_any_encoding(
    kind: str,
    tenant_dir: Path,
    server_tls: ssl.SSLContext,
    responders: Callable[..., Responder],
    password: Callable[[str], str],
    cli: Any,
) -> None:
    password(SECRET)
    server = responders(*_script(kind), server_tls)
    write(tenant_dir, SERVERS[kind](server.port))
    runs = [
        cli("test", "--dir", "channels.d"),
        cli("test", "--format", "json", "--dir", "channels.d"),
        cli("plan", "--check-connections", "--dir", "channels.d"),
        cli("plan", "--check-connections", "--format", "json", "--dir", "channels.d"),
        cli("plan", "--check-connections", "--format", "markdown", "--dir", "channels.d"),
        cli("apply", "--auto-approve", "--dir", "channels.d"),
    ]
    assert [run.code for run in runs] == [1, 1, 1, 1, 1, 1], [run.err for run in runs]
    assert any(SECRET in _decoded(line) for line in server.received)  # it had it to echo
    output = "\n".join(run.out + run.err for run in runs)
    assert "you sent: " in output and "***" in output, output
    found = [form for form in _leaks(SECRET) if form in output or form.lower() in output.lower()]
    assert found == [], output


@pytest.mark.parametrize("protocol", ["imap-ssl", "pop3-ssl"])
def test_xoauth2_blob_and_token_echoed_back_leak_nowhere(
    protocol: str,
    mail: Any,
    mail_ca: Path,
    tenant_dir: Path,
    responders: Callable[..., Responder],
    monkeypatch: pytest.MonkeyPatch,
    cli: Any,
) -> None:
    """The token comes from the loopback identity service; the mailbox echoes the XOAUTH2
    payload (base64 of user=...^Aauth=Bearer TOKEN^A^A) in every encoding."""
    from tests import mailservers
    from tests.probe.conftest import oauth

    client_secret, token = mailservers.CLIENTS["good-client"]
    monkeypatch.setenv("OAUTH_SECRET", client_secret)
    if protocol == "imap-ssl":
        script = imap(authenticate="NO [AUTHENTICATIONFAILED] you sent: {line}", echo=every_form)
    else:
        script = pop3(pass_reply="-ERR [AUTH] you sent: {line}", echo=every_form)
    server = responders(*script, mail.issue("mailbox", "localhost"))
    doc = channel(
        protocol,
        server.port,
        auth="microsoft-exchange",
        oauth=oauth("good-client", "OAUTH_SECRET", mail.authority),
    )
    doc["enabled"] = True  # a disabled channel's failed test would only warn at apply
    write(tenant_dir, doc)
    runs = [
        cli("test", "--dir", "channels.d"),
        cli("test", "--format", "json", "--dir", "channels.d"),
        cli("plan", "--check-connections", "--format", "json", "--dir", "channels.d"),
        cli("apply", "--auto-approve", "--dir", "channels.d"),
    ]
    assert [run.code for run in runs] == [1, 1, 1, 1], [run.err for run in runs]
    blob = f"user={USER}\x01auth=Bearer {token}\x01\x01"
    assert any(token in _decoded(line) for line in server.received)
    output = "\n".join(run.out + run.err for run in runs)
    assert "you sent: " in output and "auth_failed" in output, output
    texts = [token, client_secret, blob, base64.b64encode(blob.encode()).decode()]
    leaks = [form for text in texts for form in encodings(text).values()]
    assert [form for form in leaks if form.lower() in output.lower()] == [], output


PASSWORD = "Tr0ub4dor&3xyz"
_RAW = PASSWORD.encode()
# what a server echoes of the password -> (IMAP tagged reply, its diagnosis)
PARTS_ECHOED = {
    "partial": (f"bad password {PASSWORD[:-2]}", "bad password ***"),
    "hex-colons": ("bad password " + ":".join(f"{b:02x}" for b in _RAW), "bad password ***"),
    "html-entities": ("bad " + "".join(f"&#{ord(c)};" for c in PASSWORD) + " (x)", "bad *** (x)"),
    "base32": (f"you sent {base64.b32encode(_RAW).decode()} no", "you sent *** no"),
    "utf-16-hex": (f"you sent {PASSWORD.encode('utf-16-le').hex()}", "you sent ***"),
    "octal-escapes": ("you sent " + "".join(f"\\{b:03o}" for b in _RAW), "you sent ***"),
    "hex-bytes-as-words": (
        "bad " + " ".join(f"{b:02x}" for b in _RAW),
        "bad " + " ".join(["***"] * len(_RAW)),
    ),
    "split-in-words": (
        f"you sent {PASSWORD[:3]} {PASSWORD[3:6]} {PASSWORD[6:]}",
        "you sent *** *** ***",
    ),
}


@pytest.mark.parametrize("form", sorted(PARTS_ECHOED))
def test_a_part_of_the_password_echoed_in_any_form_is_cut_and_the_status_kept(
    form: str,
    tenant_dir: Path,
    server_tls: ssl.SSLContext,
    responders: Callable[..., Responder],
    password: Callable[[str], str],
    cli: Any,
) -> None:
    password(PASSWORD)
    echoed, shown = PARTS_ECHOED[form]
    server = responders(*imap(login=f"NO [AUTHENTICATIONFAILED] {echoed}"), server_tls)
    write(tenant_dir, {**channel("imap-ssl", server.port), "enabled": True})
    result = cli("test", "--dir", "channels.d")
    assert result.code == 1
    assert (
        "error: EmailChannel 'Test Channel' (incoming): auth_failed: "
        f"[AUTHENTICATIONFAILED] {shown}"
    ) in result.out.splitlines(), result.out


@pytest.mark.parametrize(
    ("first", "second"),
    [(PASSWORD[:3], PASSWORD[3:]), (_RAW.hex()[:8], _RAW.hex()[8:])],  # plain, hex
)
def test_a_password_split_over_two_reply_lines_is_cut_from_both(
    first: str,
    second: str,
    tenant_dir: Path,
    server_tls: ssl.SSLContext,
    responders: Callable[..., Responder],
    password: Callable[[str], str],
    cli: Any,
) -> None:
    password(PASSWORD)
    reply = f"535-5.7.8 you sent {first}\r\n535 5.7.8 {second} ok"
    server = responders(*smtp(auth_reply=reply, mechanisms="PLAIN"), server_tls)
    write(tenant_dir, smtp_server("ssl", server.port))
    result = cli("test", "--dir", "channels.d")
    assert result.code == 1
    assert (
        "error: SmtpServer 'Test Relay' (outgoing): auth_failed: "
        "535 5.7.8 you sent *** 5.7.8 *** ok"
    ) in result.out.splitlines(), result.out
