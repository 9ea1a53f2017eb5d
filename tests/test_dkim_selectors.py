"""dkim_selectors is channelsync's own field (for `test --dns`): never sent to the tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RELAY = """\
kind: SmtpServer
name: Relay
host: smtp.acme.example
dkim_selectors: [s1, s2]
---
kind: EmailChannel
name: Support
email: support@acme.example
incoming: {server: imap.acme.example, protocol: imap-ssl, user: u, password: "${env:P}"}
outgoing: {server: Relay, override: true, password: "${env:P}", dkim_selectors: [s3]}
"""


def test_dkim_selectors_are_not_sent_and_show_no_drift(
    workdir: Path, cli: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("P", "secret")
    (workdir / "channels.d" / "relay.yaml").write_text(RELAY)
    applied = cli("apply", "--auto-approve", "--skip-connection-tests")
    assert applied.code == 0, applied.err
    planned = cli("plan", "--detailed-exitcode")
    assert planned.code == 0, planned.out
    assert "dkim" not in planned.out


def test_a_selector_that_is_not_a_dns_label_is_refused_at_its_position(
    workdir: Path, cli: Any
) -> None:
    selector = "s" * 70
    (workdir / "channels.d" / "relay.yaml").write_text(
        f"kind: SmtpServer\nname: Relay\nhost: smtp.acme.example\ndkim_selectors: [{selector}]\n"
    )
    result = cli("validate")
    assert result.code == 1
    assert result.out.splitlines()[0] == (
        f"channels.d/relay.yaml:4:18: error: dkim_selectors[0]: '{selector}' is not a DKIM "
        "selector (DNS labels of 1-63 letters, digits or hyphens, separated by dots)"
    )
