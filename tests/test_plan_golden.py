"""The JSON plan (format_version 1) and the saved-plan file, pinned byte for byte.

CI tools parse both; a refactoring of the plan must not change a single byte of either.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.tenant_config import BASE, UNSET_SECRET, apply, write

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
            "sales.yaml": UNSET_SECRET,
        },
    )


def _golden(name: str, text: str, tenant: Path) -> None:
    text = re.sub(r'"live_etag": "[0-9a-f]+"', '"live_etag": "ETAG"', text)  # new per apply
    assert text == (GOLDEN / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "code", "golden"),
    [
        (("plan", "--format", "json"), 0, "plan_format_1.json"),
        (("plan", "--out", "saved.plan"), 0, "saved_plan_format_1.json"),
        (("drift", "--format", "json"), 2, "drift_format_1.json"),
    ],
    ids=["json-plan", "saved-plan", "drift-json"],
)
def test_plan_formats_are_byte_for_byte_unchanged(
    args: tuple[str, ...],
    code: int,
    golden: str,
    tenant: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _representative(tenant, cli, monkeypatch)
    result = cli(*args)
    assert result.code == code, result.err
    saved = tenant / "saved.plan"
    _golden(golden, saved.read_text(encoding="utf-8") if saved.exists() else result.out, tenant)
