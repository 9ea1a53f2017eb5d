"""`channelsync test --format markdown|junit`: tables to post, and JUnit XML for CI."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.dnsserver import DnsServer
from tests.mailservers import MailServers
from tests.probe.conftest import channel, write
from tests.probe.test_dns import _channel as dns_channel
from tests.probe.test_dns import _relay
from tests.probe.test_real_servers import Password


def _suites(out: str) -> dict[str, ET.Element]:
    root = ET.fromstring(out)
    assert root.tag == "testsuites"
    return {s.get("name", ""): s for s in root}


def test_junit_has_one_testcase_per_check_with_the_failure_code(
    mail: MailServers,
    config_dir: Path,
    mail_ca: Path,
    password: Password,
    cli: Any,
) -> None:
    good = channel("imap-ssl", mail.ports["imaps"], name="Good")
    wrong = channel("imap-ssl", mail.ports["imaps"], name="Wrong user", user="nobody@x.test")
    wrong["email"] = "other@example.test"
    write(config_dir, good, wrong)
    result = cli("test", "--dir", str(config_dir), "--format", "junit")
    assert result.code == 1
    assert result.out.startswith('<?xml version="1.0" encoding="utf-8"?>\n<testsuites ')
    suite = _suites(result.out)["connections"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("2", "1", "0")
    cases = {c.get("name", "").split(" (")[0]: c for c in suite}
    assert cases["Good"].find("failure") is None
    failure = cases["Wrong user"].find("failure")
    assert failure is not None
    assert failure.get("type") == "auth_failed"
    assert failure.get("message") == ("auth_failed: [AUTHENTICATIONFAILED] Authentication failed.")
    assert failure.text == "check the user name and the password the secret reference points to"


def test_markdown_of_the_dns_checks_is_a_table_to_post(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    write(config_dir, _relay(), dns_channel("info@bare.test"))
    result = cli(
        "test", "--dir", str(config_dir), "--dns", "--dns-server", dns_server.address,
        "--format", "markdown",
    )  # fmt: skip
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[:4] == [
        "**DNS:** 0 passed, 1 failed",
        "",
        "| channel | DNS | result | found | hint |",
        "|---|---|---|---|---|",
    ]
    assert lines[4].startswith(
        "| info@bare.test | mx | :x: `mx_missing` | bare.test has no MX record | mail to this "
    )


def test_junit_marks_a_channel_on_vcc_internal_as_skipped(
    config_dir: Path, dns_server: DnsServer, cli: Any
) -> None:
    write(config_dir, dns_channel("support@acme.test", None))
    result = cli(
        "test", "--dir", str(config_dir), "--end-to-end", "--dns-server", dns_server.address,
        "--format", "junit",
    )  # fmt: skip
    assert result.code == 0, result.out
    suites = _suites(result.out)
    e2e = suites["end-to-end"]
    assert (e2e.get("tests"), e2e.get("failures"), e2e.get("skipped")) == ("1", "0", "1")
    skipped = e2e[0].find("skipped")
    assert skipped is not None
    assert skipped.get("message", "").startswith("e2e_not_testable: not testable from outside")
    assert suites["dns"].get("failures") == "0"
