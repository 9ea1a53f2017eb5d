"""What a server says reaches the terminal, the PR comment and the JUnit file only as visible
text: its control characters (cursor moves, title changes, bells) and bidirectional overrides
are written as \\uXXXX."""

from __future__ import annotations

import ssl
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.probe.conftest import channel, write
from tests.probe.responder import Responder, imap
from tests.probe.test_secret_leaks import server_tls, tenant_dir

__all__ = ["server_tls", "tenant_dir"]

HOSTILE = "\x1b[2J\x1b]0;pwned\x07 hello \u202e reversed \u200b \x1b[31mRED"
SHOWN = "\\u001B[2J\\u001B]0;pwned\\u0007 hello \\u202E reversed \\u200B \\u001B[31mRED"
RAW = ("\x1b", "\x07", "\u202e", "\u200b")


@pytest.fixture
def hostile(
    tenant_dir: Path, server_tls: ssl.SSLContext, responders: Callable[..., Responder]
) -> Responder:
    greeting, script = imap(login=f"NO [AUTHENTICATIONFAILED] {HOSTILE}")
    greeting = greeting.replace("scripted IMAP ready", HOSTILE)
    return responders(greeting, script, server_tls)


def test_a_refusal_shows_the_servers_control_characters_escaped(
    hostile: Responder, tenant_dir: Path, password: Callable[[str], str], cli: Any
) -> None:
    write(tenant_dir, channel("imap-ssl", hostile.port))
    runs = [
        cli("test", "--dir", "channels.d"),
        cli("test", "--format", "json", "--dir", "channels.d"),
        cli("test", "--format", "markdown", "--dir", "channels.d"),
        cli("plan", "--check-connections", "--dir", "channels.d"),
        cli("plan", "--check-connections", "--format", "markdown", "--dir", "channels.d"),
    ]
    output = "".join(run.out + run.err for run in runs)
    assert [raw for raw in RAW if raw in output] == []
    assert (
        "error: EmailChannel 'Test Channel' (incoming): auth_failed: [AUTHENTICATIONFAILED] "
        f"{SHOWN}"
    ) in runs[0].out.splitlines()


def test_a_greeting_of_another_protocol_is_shown_escaped(
    hostile: Responder, tenant_dir: Path, password: Callable[[str], str], cli: Any
) -> None:
    write(tenant_dir, channel("pop3-ssl", hostile.port))
    result = cli("test", "--dir", "channels.d")
    assert [raw for raw in RAW if raw in result.out + result.err] == []
    assert (
        f"error: EmailChannel 'Test Channel' (incoming): wrong_protocol: localhost:{hostile.port} "
        "answered as an IMAP server: * OK [CAPABILITY IMAP4rev1 AUTH=PLAIN AUTH=XOAUTH2] "
        f"{SHOWN}"
    ) in result.out.splitlines()


def test_junit_stays_valid_xml_whatever_the_server_says(
    hostile: Responder, tenant_dir: Path, password: Callable[[str], str], cli: Any
) -> None:
    write(tenant_dir, channel("imap-ssl", hostile.port))
    result = cli("test", "--format", "junit", "--dir", "channels.d")
    assert result.code == 1
    [suite] = ET.fromstring(result.out)
    failure = suite[0].find("failure")
    assert failure is not None
    assert failure.get("message") == f"auth_failed: [AUTHENTICATIONFAILED] {SHOWN}"


def test_junit_writes_characters_xml_forbids_as_escapes() -> None:
    from channelsync.probe.check import Result
    from channelsync.render.probes import junit

    result = Result("EmailChannel", "A\x01B\ud800", "incoming", "h", 1, "imap", True, 5)
    case = ET.fromstring(junit([result]))[0][0]
    assert case.get("name") == "A\\u0001B\\uD800 (incoming, imap://h:1)"
