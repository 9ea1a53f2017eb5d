"""The JSON plan (format_version 1) and the saved-plan file, pinned byte for byte.

CI tools parse both; a refactoring of the plan must not change a single byte of either.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.tenant_config import BASE, apply, write

GOLDEN = Path(__file__).resolve().parent / "golden"


def _representative(tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every action, followers, a sensitive rotation, a section that goes, a list change,
    a positioned secret warning and a refusal."""
    assert apply(cli).code == 0
    monkeypatch.setenv("SUPPORT_IMAP_PASSWORD", "rotated-Secret-9zz")
    (tenant / "channels.d" / "exchange.yaml").unlink()
    write(
        tenant,
        {
            "relay.yaml": BASE["relay.yaml"].replace(
                "name: Relay\n", "name: Main Relay\nrenamed_from: Relay\n"
            ),
            "support.yaml": BASE["support.yaml"]
            .replace("server: Relay", "server: Main Relay")
            .replace("  override: true\n  password: ${env:SUPPORT_SMTP_PASSWORD}\n", ""),
            "script.yaml": BASE["script.yaml"].replace("[Support, Billing]", "[Support, Sales]"),
            "sales.yaml": """\
kind: EmailChannel
name: Sales
email: sales@example.com
incoming:
  server: imap.example.com
  protocol: imap-ssl
  user: sales@example.com
  password: ${env:SALES_PASSWORD_UNSET}
""",
        },
    )


def _golden(name: str, text: str, tenant: Path) -> None:
    text = re.sub(r'"live_etag": "[0-9a-f]+"', '"live_etag": "ETAG"', text)  # new per apply
    assert text == (GOLDEN / name).read_text(encoding="utf-8")


def test_json_plan_format_1_is_byte_for_byte_unchanged(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _representative(tenant, cli, monkeypatch)
    result = cli("plan", "--format", "json")
    assert result.code == 0, result.err
    _golden("plan_format_1.json", result.out, tenant)


def test_saved_plan_file_is_byte_for_byte_unchanged(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _representative(tenant, cli, monkeypatch)
    result = cli("plan", "--out", "saved.plan")
    assert result.code == 0, result.err
    _golden("saved_plan_format_1.json", (tenant / "saved.plan").read_text(encoding="utf-8"), tenant)


def test_drift_json_is_byte_for_byte_unchanged(
    tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _representative(tenant, cli, monkeypatch)
    result = cli("drift", "--format", "json")
    assert result.code == 2, result.err
    _golden("drift_format_1.json", result.out, tenant)
