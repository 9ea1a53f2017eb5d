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
