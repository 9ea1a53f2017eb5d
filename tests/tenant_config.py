"""A small tenant configuration shared by the plan/apply/export tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SECRETS = {
    "SUPPORT_IMAP_PASSWORD": "imap-Secret-1xq",
    "SUPPORT_SMTP_PASSWORD": "smtp-Secret-2wr",
    "RELAY_PASSWORD": "relay-Secret-3ez",
    "OAUTH_SECRET": "oauth-Secret-4td",
}

BASE = {
    "script.yaml": """\
kind: EmailScript
name: Support Script
queues: [Support, Billing]
""",
    "relay.yaml": """\
# our relay
kind: SmtpServer
name: Relay
host: smtp.example.com
user: relay@example.com
password: ${env:RELAY_PASSWORD}
default: true
""",
    "support.yaml": """\
kind: EmailChannel
name: Support
email: support@example.com
script: Support Script
enabled: true
incoming:
  server: imap.example.com
  protocol: imap-ssl
  user: support@example.com
  password: ${env:SUPPORT_IMAP_PASSWORD}
outgoing:
  server: Relay
  override: true
  password: ${env:SUPPORT_SMTP_PASSWORD}
""",
    "exchange.yaml": """\
kind: EmailChannel
name: Exchange
email: help@contoso.example
incoming:
  auth: microsoft-exchange
  server: outlook.office365.com
  protocol: imap-ssl
  user: help@contoso.example
  oauth:
    tenant_id: 2f4a9c1e-0b7d-4e63-9a51-8c3d7e2b6f10
    client_id: 7c1e5a92-3d48-4b0f-a6e7-51f9c2d8b340
    client_secret: ${env:OAUTH_SECRET}
""",
}

# a channel whose secret is not set where plan runs
UNSET_SECRET = """\
kind: EmailChannel
name: Sales
email: sales@example.com
incoming:
  server: imap.example.com
  protocol: imap-ssl
  user: sales@example.com
  password: ${env:SALES_PASSWORD_UNSET}
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / "channels.d" / name).write_text(text)


def apply(cli: Any, *extra: str) -> Any:
    return cli("apply", "--auto-approve", "--skip-connection-tests", *extra)


def plan_json(cli: Any, *extra: str) -> dict[str, Any]:
    result = cli("plan", "--format", "json", *extra)
    assert result.code == 0, result.err
    loaded: dict[str, Any] = json.loads(result.out)
    return loaded


def edit_live(root: Path, name: str, change: Any) -> None:
    """Change a live resource behind channelsync's back (as the web console would)."""
    import sqlite3

    db = sqlite3.connect(root / ".channelsync" / "tenant.db")
    row = db.execute("SELECT body FROM resources WHERE name = ?", (name,)).fetchone()
    body = json.loads(row[0])
    change(body)
    db.execute("UPDATE resources SET body = ? WHERE name = ?", (json.dumps(body), name))
    db.commit()
    db.close()
