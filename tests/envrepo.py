"""A config repository with two environments, staging and prod: a common folder, one folder
per environment, variables, and a patch (prod's script routes to one more queue).

``TARGETS`` names two embedded tenants (tests/test_environments_flow.py); ``served(URL)`` the
two tenants of one ``channelsync serve`` (tests/http/test_environments_serve.py).
"""

from __future__ import annotations

from pathlib import Path

TARGETS = {"staging": "sqlite:///staging.db", "prod": "sqlite:///prod.db"}


def served(url: str) -> dict[str, str]:
    """The two tenants of the ``channelsync serve`` at ``url``."""
    return {"staging": f"{url}/tenants/acme-staging", "prod": f"{url}/tenants/acme"}


SECRETS = {"SUPPORT_IMAP_PASSWORD": "imap-Secret-1xq"}

PROJECT = """\
# yaml-language-server: $schema=schemas/channelsync-project.schema.json
environments:
  staging:
    target: {staging}
    dirs: [channels.d/common, channels.d/staging]
    variables: {{imap_host: imap.staging.acme.example, enabled: false, port: 1993}}
  prod:
    target: {prod}
    dirs: [channels.d/common, channels.d/prod]
    variables: {{imap_host: imap.acme.example, enabled: true, port: 993}}
default_environment: staging
"""

FILES = {
    "channels.d/common/support.yaml": """\
kind: EmailChannel
name: Support
email: support@acme.example
script: Support Script
enabled: ${var:enabled}
incoming:
  server: ${var:imap_host}
  protocol: imap-ssl
  port: ${var:port}
  user: support@${var:imap_host}
  password: ${env:SUPPORT_IMAP_PASSWORD}
""",
    "channels.d/common/script.yaml": """\
kind: EmailScript
name: Support Script
queues: [Support]
""",
    "channels.d/staging/smoke.yaml": """\
kind: EmailScript
name: Smoke Test Script
queues: [Smoke]
""",
    "channels.d/prod/script.yaml": """\
kind: EmailScript
name: Support Script
patch: true
queues: [Support, Escalations]
""",
}


def write(root: Path, targets: dict[str, str] | None = None) -> Path:
    (root / "channelsync.yaml").write_text(PROJECT.format(**(targets or TARGETS)))
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
