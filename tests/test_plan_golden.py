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
    text = re.sub(r'"digest": "sha256:[0-9a-f]+"', '"digest": "DIGEST"', text)  # of the ETags
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


@pytest.mark.parametrize("form", ["text", "json", "markdown", "runbook"])
def test_show_renders_a_saved_plan_as_plan_did_without_config_target_or_secrets(
    form: str, tenant: Path, cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: Any
) -> None:
    from tests.tenant_config import SECRETS

    _representative(tenant, cli, monkeypatch)
    made = cli("plan", "--out", "saved.plan", "--format", form)
    assert made.code == 0, made.err
    elsewhere = tmp_path_factory.mktemp("elsewhere")  # no config, no tenant, no secrets
    (tenant / "saved.plan").rename(elsewhere / "saved.plan")
    monkeypatch.chdir(elsewhere)
    for name in SECRETS:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CHANNELSYNC_TARGET", "https://unreachable.invalid/tenants/x")
    shown = cli("show", "saved.plan", "--format", form)
    expected = made.out.split("Plan saved to ")[0] if form == "text" else made.out
    assert (shown.code, shown.out, shown.err) == (0, expected, "")
    assert "Delete" in shown.out or "delete" in shown.out
    assert sorted(p.name for p in elsewhere.iterdir()) == ["saved.plan"]  # nothing created
    for secret in [*SECRETS.values(), "rotated-Secret-9zz"]:
        assert secret not in shown.out
        assert secret not in (elsewhere / "saved.plan").read_text()


AGENTS = """\
kind: SmtpServer
name: AcmeJets SMTP Server
host: smtp.acmejets.example
---
kind: Agent
name: Dana Agent
email: dana@acmejets.example
outgoing:
  server: Relay
  override: true
---
kind: Agent
name: Eli Agent
email: eli@acmejets.example
"""


def test_a_plan_that_sets_a_new_default_is_byte_for_byte_unchanged(tenant: Path, cli: Any) -> None:
    """A new default: default_reset and the set-backs (reset_by, set_back_only) of an agent
    and a channel, in the JSON plan and the saved plan."""
    write(tenant, {"agents.yaml": AGENTS})
    assert apply(cli).code == 0
    write(
        tenant,
        {
            "relay.yaml": BASE["relay.yaml"].replace("default: true\n", ""),
            "agents.yaml": AGENTS.replace(
                "smtp.acmejets.example\n", "smtp.acmejets.example\ndefault: true\n"
            ),
        },
    )
    for args, name in (
        (("plan", "--format", "json"), "plan_reset_format_1.json"),
        (("plan", "--out", "saved.plan"), "saved_plan_reset_format_1.json"),
    ):
        result = cli(*args)
        assert result.code == 0, result.err
        saved = tenant / "saved.plan"
        _golden(name, saved.read_text(encoding="utf-8") if saved.exists() else result.out, tenant)
