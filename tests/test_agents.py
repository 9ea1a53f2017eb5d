"""The Agent kind in the generated schemas (editor completion) and the shipped examples."""

from __future__ import annotations

import json

from channelsync.loader import load_config
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
