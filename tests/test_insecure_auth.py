"""SMTP security: none with a password: validate refuses it and the connection test sends
nothing, unless allow_insecure_auth: true on the SmtpServer or the channel's outgoing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from channelsync.loader import load_config
from channelsync.probe.runner import checks_for, run_checks
from tests.probe.responder import Responder, smtp

SERVER = """\
kind: SmtpServer
name: Relay
host: localhost
port: {port}
security: none
user: relay@example.test
password: ${{env:RELAY_PASSWORD}}
{extra}"""
CHANNEL = """\
---
kind: EmailChannel
name: Support
email: support@example.test
incoming:
  server: imap.example.test
  protocol: imap-ssl
  user: support@example.test
  password: ${{env:IMAP_PASSWORD}}
outgoing:
  server: Relay
  override: true
  password: ${{env:SMTP_PASSWORD}}
{extra}"""


@pytest.fixture
def responder() -> Iterator[Responder]:
    server = Responder(*smtp(auth_reply="235 2.7.0 Authentication successful"))
    yield server
    server.close()


def _write(workdir: Path, server: str = "", channel: str | None = None, port: int = 2525) -> None:
    text = SERVER.format(port=port, extra=server)
    if channel is not None:
        text += CHANNEL.format(extra=channel)
    (workdir / "channels.d" / "mail.yaml").write_text(text)


def _errors(cli: Any) -> list[str]:
    report = json.loads(cli("validate", "--format", "json", "--dir", "channels.d").out)
    return [f"{e['line']}:{e['column']}: {e['message']}" for e in report["errors"]]


def test_validate_refuses_a_password_over_security_none(workdir: Path, cli: Any) -> None:
    _write(workdir)
    assert _errors(cli) == [
        "5:11: the password would be sent without TLS; use security: starttls or ssl, or set "
        "allow_insecure_auth: true on this SmtpServer to accept the risk"
    ]
    result = cli("validate", "--dir", "channels.d")
    assert result.code == 1
    assert "channels.d/mail.yaml:5:11: error: the password would be sent without TLS" in (
        result.out + result.err
    )


def test_validate_refuses_a_channels_password_to_a_security_none_server(
    workdir: Path, cli: Any
) -> None:
    _write(workdir, server="allow_insecure_auth: false\n", channel="")
    assert _errors(cli)[1:] == [
        "21:13: SmtpServer 'Relay' has security: none: the password would be sent without "
        "TLS; use a server with starttls or ssl, or set outgoing.allow_insecure_auth: true to "
        "accept the risk"
    ]


@pytest.mark.parametrize(
    ("server", "channel"),
    [
        ("allow_insecure_auth: true\n", ""),  # the server's consent covers its channels
        ("allow_insecure_auth: true\n", "  allow_insecure_auth: true\n"),
    ],
)
def test_consent_makes_the_config_valid(workdir: Path, cli: Any, server: str, channel: str) -> None:
    _write(workdir, server=server, channel=channel)
    assert _errors(cli) == []


def test_channel_consent_alone_does_not_cover_the_servers_own_password(
    workdir: Path, cli: Any
) -> None:
    _write(workdir, channel="  allow_insecure_auth: true\n")
    assert [e.split(":", 2)[:2] for e in _errors(cli)] == [["5", "11"]]


def _probe(workdir: Path) -> list[Any]:
    config = load_config(workdir / "channels.d")
    return run_checks(checks_for(config.resources), timeout=5)


def test_connection_test_sends_nothing_without_consent(
    workdir: Path, responder: Responder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RELAY_PASSWORD", "relay-Secret-77")
    _write(workdir, port=responder.port)
    (result,) = _probe(workdir)
    assert result.error is not None
    assert result.error.to_json() == {
        "code": "insecure_auth_refused",
        "message": f"localhost:{responder.port} has security: none, so nothing was sent (the "
        "password would travel without TLS)",
        "hint": "use security: starttls or ssl, or set allow_insecure_auth: true on the "
        "SmtpServer (or on the channel's outgoing section) to accept the risk",
    }
    assert responder.received == []


@pytest.mark.parametrize("where", ["server", "channel"])
def test_connection_test_authenticates_with_consent(
    workdir: Path,
    responder: Responder,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    for name in ("RELAY_PASSWORD", "IMAP_PASSWORD", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, "a-Secret-77")
    consent = "allow_insecure_auth: true\n"
    if where == "server":
        _write(workdir, server=consent, port=responder.port)
    else:
        _write(workdir, server=consent, channel="  " + consent, port=responder.port)
    results = _probe(workdir)
    outgoing = [r for r in results if r.check == "outgoing"]
    assert outgoing and all(r.ok for r in outgoing), [r.error for r in outgoing]
    assert any(line.startswith("AUTH PLAIN ") for line in responder.received)
    assert outgoing[0].warnings == [
        "security: none: mail and the password travel without TLS (allow_insecure_auth: true); "
        "use starttls or ssl"
    ]
