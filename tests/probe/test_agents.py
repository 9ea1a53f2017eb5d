"""Agents in connection tests: an agent that overrides is tested against its server without
logging in (channelsync holds no agent password), so reachability and TLS are still checked."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from channelsync.commands import test as command
from channelsync.loader import load_config
from channelsync.probe.runner import checks_for
from tests.conftest import EXAMPLES
from tests.mailservers import MailServers
from tests.probe.conftest import SECRET_ENV, Probe, smtp_server, write

Password = Callable[[str], str]

SKIPPED = (
    "login skipped: the agent enters the password of its own mail account in Agent Console > "
    "Profile and channelsync holds none; the server's reachability and TLS were tested"
)


def _agent(name: str = "Dana Agent", **outgoing: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "Agent",
        "name": name,
        "email": f"{name.split()[0].lower()}@example.test",
    }
    if outgoing:
        doc["outgoing"] = outgoing
    return doc


def test_only_an_agent_that_overrides_gets_a_check_and_it_holds_no_password(
    config_dir: Path,
) -> None:
    dana = _agent(server="Test Relay", override=True)
    eli = _agent("Eli Agent")  # on the default: the server's own check covers it
    fay = _agent("Fay Agent", server="Test Relay")  # the server's account: its check again
    write(config_dir, dana, eli, fay, smtp_server("ssl", 465, ca=False))
    config = load_config(config_dir)
    assert not config.errors, config.errors
    checks = checks_for(config.resources)
    assert [(c.kind, c.name, c.check, c.user, c.password) for c in checks] == [
        ("Agent", "Dana Agent", "outgoing", "dana@example.test", None),
        (
            "SmtpServer",
            "Test Relay",
            "outgoing",
            "testuser@example.test",
            "${env:" + SECRET_ENV + "}",
        ),
    ]
    assert checks[0].login_skipped == SKIPPED


def test_an_agent_s_server_is_reached_over_tls_and_the_login_is_skipped_with_its_reason(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    results = probe(
        _agent(server="Test Relay", override=True), smtp_server("ssl", mail.ports["smtps"])
    )
    agent = results[0]
    assert (agent.kind, agent.name, agent.ok) == ("Agent", "Dana Agent", True)
    assert agent.tls.version is not None  # TLS negotiated and verified against the test CA
    assert agent.warnings == [SKIPPED]


def test_an_agent_s_untrusted_server_fails_its_test(
    mail: MailServers, probe: Probe, password: Password
) -> None:
    relay = smtp_server("ssl", mail.ports["smtps"], ca=False)  # the test CA is not trusted
    agent = probe(_agent(server="Test Relay", override=True), relay)[0]
    assert agent.error is not None and agent.error.code == "cert_untrusted"


def test_channelsync_test_shows_the_skipped_login_as_a_warning(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write(
        config_dir,
        _agent(server="Test Relay", override=True),
        smtp_server("ssl", mail.ports["smtps"]),
    )
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["test", "Dana Agent", "Test Relay", "--dir", str(config_dir)])
    assert args.handler(args) == 0
    out = capsys.readouterr().out
    assert f"warning: Agent 'Dana Agent' (outgoing): {SKIPPED}" in out.splitlines()
    assert out.endswith("2 passed, 0 failed\n")


@pytest.mark.parametrize("flag", ["--dns", "--end-to-end"])
def test_mail_flow_checks_of_a_named_agent_say_they_cover_channels_only(
    flag: str, cli: Any
) -> None:
    """An agent has no mailbox channelsync may read, so --dns and --end-to-end (a channel's
    MX, SPF, DMARC, round trip) name it instead of checking nothing and passing."""
    result = cli("test", flag, "Dana Agent", "--dir", str(EXAMPLES))
    assert (result.code, result.out) == (1, "")
    assert result.err == (
        "error: --dns and --end-to-end check channels only, not 'Dana Agent' (agent); without "
        "them, 'channelsync test NAME' tests the connection\n"
    )
