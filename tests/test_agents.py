"""The Agent kind in the generated schemas (editor completion) and the shipped examples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from channelsync.defaults import DEFAULT_TARGET
from channelsync.loader import load_config
from channelsync.targets.sqlite import SqliteTarget
from tests.conftest import EXAMPLES

SCHEMAS = EXAMPLES.parent / "schemas"


def test_the_editor_schema_offers_the_agent_kind_and_its_fields() -> None:
    combined = json.loads((SCHEMAS / "channelsync.schema.json").read_text(encoding="utf-8"))
    assert "Agent" in combined["properties"]["kind"]["enum"]
    outgoing = combined["$defs"]["AgentOutgoing"]
    assert list(outgoing["properties"]) == ["server", "override", "user"]
    assert outgoing["properties"]["server"]["title"] == "Outgoing Mail Server"
    assert "Agent Console > Profile" in outgoing["properties"]["override"]["description"]
    agent = json.loads((SCHEMAS / "Agent.schema.json").read_text(encoding="utf-8"))
    assert agent["required"] == ["kind", "name", "email"]


def test_the_examples_hold_an_agent_with_override_and_one_on_the_default() -> None:
    config = load_config(EXAMPLES)
    assert not config.errors
    agents = {a.name: a.data for a in config.of_kind("Agent")}
    assert agents == {
        "Dana Agent": {
            "kind": "Agent",
            "name": "Dana Agent",
            "renamed_from": None,
            "email": "dana@acmejets.com",
            "outgoing": {
                "server": "AcmeJets SMTP Server",
                "override": True,
                "user": "dana@acmejets.com",
            },
        },
        "Eli Agent": {
            "kind": "Agent",
            "name": "Eli Agent",
            "renamed_from": None,
            "email": "eli@acmejets.com",
            "outgoing": None,  # the tenant's default SMTP server
        },
    }


AGENTS_ON_RELAY = """\
kind: SmtpServer
name: Relay
host: smtp.example.com
default: true
---
kind: SmtpServer
name: AcmeJets SMTP Server
host: smtp.acmejets.example
"""
AGENT = """\
---
kind: Agent
name: Agent {i:02d}
email: agent{i:02d}@example.com
outgoing:
  server: Relay
"""


def _agents_on_relay(workdir: Path, cli: Any, extra: str = "") -> None:
    text = AGENTS_ON_RELAY + "".join(AGENT.format(i=i) for i in range(10)) + extra
    (workdir / "channels.d" / "agents.yaml").write_text(text)
    applied = cli("apply", "--auto-approve", "--skip-connection-tests")
    assert applied.code == 0, applied.out + applied.err


def _make_acmejets_the_default(workdir: Path) -> None:
    path = workdir / "channels.d" / "agents.yaml"
    text = path.read_text().replace("default: true\n", "")
    path.write_text(text.replace("acmejets.example\n", "acmejets.example\ndefault: true\n"))


def test_set_backs_of_a_new_default_do_not_count_towards_force(workdir: Path, cli: Any) -> None:
    """Twelve resources, ten agents set back when AcmeJets becomes the default: those ten
    changes only restore what the config says (like the channels that follow a rename), so
    the 30 % threshold sees one change, and one apply without --force converges."""
    _agents_on_relay(workdir, cli)
    _make_acmejets_the_default(workdir)
    plan = cli("plan", "--format", "json")
    shown = json.loads(plan.out)
    assert shown["apply_needs"] == []
    assert shown["default_reset"]["set_back"] == 10
    flags = [(c["name"], c.get("reset_by"), c.get("set_back_only")) for c in shown["changes"]]
    assert flags[:3] == [
        ("Relay", None, None),
        ("AcmeJets SMTP Server", None, None),
        ("Agent 00", "AcmeJets SMTP Server", True),
    ]
    applied = cli("apply", "--auto-approve", "--skip-connection-tests")
    assert applied.code == 0, applied.out + applied.err
    assert "Apply complete: 12 updated." in applied.out
    assert cli("plan", "--detailed-exitcode").code == 0


def test_a_change_that_is_also_set_back_still_counts_towards_force(workdir: Path, cli: Any) -> None:
    """The ten agents also start to override while AcmeJets becomes the default: ten real
    changes, which the threshold counts."""
    _agents_on_relay(workdir, cli)
    _make_acmejets_the_default(workdir)
    path = workdir / "channels.d" / "agents.yaml"
    path.write_text(
        path.read_text().replace("  server: Relay\n", "  server: Relay\n  override: true\n")
    )
    shown = json.loads(cli("plan", "--format", "json").out)
    assert shown["apply_needs"] == ["--force"]
    assert [c.get("set_back_only") for c in shown["changes"]][2:] == [None] * 10


def test_drift_after_a_default_set_outside_and_set_back_still_explains_the_reset(
    workdir: Path, cli: Any
) -> None:
    """AcmeJets made the default in the console, then Relay again: the tenant's default is
    the config's, yet both resets emptied the agents' own servers; drift says why and one
    apply (a plain update, no new default) sets them back."""
    _agents_on_relay(workdir, cli)
    target = SqliteTarget(DEFAULT_TARGET)
    try:
        assert target.tenant.set_default("AcmeJets SMTP Server", actor="console")
        assert target.tenant.set_default("Relay", actor="console")
        assert target.read()[("Agent", "Agent 00")].data["outgoing"] is None
    finally:
        target.close()
    drift = cli("drift")
    assert drift.code == 2
    assert drift.out.split("\n\n")[1].splitlines()[:2] == [
        '  ~ Agent "Agent 00"',
        "      (its outgoing server is the tenant's default, Relay: setting a default SMTP "
        "server outside channelsync resets the outgoing server of every channel and agent)",
    ]
    shown = json.loads(cli("plan", "--format", "json").out)
    assert "default_reset" not in shown
    assert {c["reset_outside"] for c in shown["changes"]} == {"Relay"}
    applied = cli("apply", "--auto-approve", "--skip-connection-tests", "--force")
    assert applied.code == 0, applied.out + applied.err
    assert cli("plan", "--detailed-exitcode").code == 0


def test_an_agent_overriding_on_a_server_without_tls_is_warned(workdir: Path, cli: Any) -> None:
    """channelsync never holds the agent's password, but the tenant sends it to the server:
    over security: none that is in the clear."""
    (workdir / "channels.d" / "plain.yaml").write_text(
        "kind: SmtpServer\nname: Plain\nhost: smtp.example.com\nsecurity: none\n---\n"
        "kind: Agent\nname: Dana\nemail: dana@example.com\n"
        "outgoing:\n  server: Plain\n  override: true\n---\n"
        "kind: Agent\nname: Eli\nemail: eli@example.com\noutgoing:\n  server: Plain\n"
    )
    result = cli("validate")
    assert result.code == 0
    assert result.out.splitlines() == [
        "channels.d/plain.yaml:11:13: warning: SmtpServer 'Plain' has security: none: the "
        "agent's own password (entered in Agent Console > Profile) would be sent without TLS; "
        "use a server with starttls or ssl",
        "1 file(s) checked: valid, 0 error(s), 1 warning(s)",
    ]
