"""Agents over the REST API of a real `channelsync serve`: their collection comes from the kind
registry, the tenant's rules hold there too, and a new default resets them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from channelsync.server import openapi
from tests.http.conftest import Server

ROOT = Path(__file__).resolve().parents[2]
DANA = {
    "kind": "Agent",
    "name": "Dana Agent",
    "email": "dana@acmejets.example",
    "outgoing": {"server": "AcmeJets SMTP Server", "override": True},
}
SERVER = {"kind": "SmtpServer", "name": "AcmeJets SMTP Server", "host": "smtp.acmejets.example"}
CREATE = {"If-None-Match": "*"}
DANA_PATH = "agents/Dana%20Agent"


def api(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def test_the_openapi_document_has_the_agents_collection_from_the_registry() -> None:
    document = json.loads((ROOT / openapi.COMMITTED).read_text(encoding="utf-8"))
    assert {"/v1/agents", "/v1/agents/{name}"} <= set(document["paths"])
    agent = document["components"]["schemas"]["Agent"]
    assert set(agent["properties"]) == {"kind", "name", "renamed_from", "email", "outgoing"}
    outgoing = document["components"]["schemas"]["AgentOutgoing"]
    assert set(outgoing["properties"]) == {"server", "override", "user"}  # no password


def test_agents_over_http_follow_the_tenant_s_rules_and_a_new_default_resets_them(
    server: Server,
) -> None:
    with api(server, server.write_token) as client:
        unknown = client.put("/v1/agents/Dana%20Agent", json=DANA, headers=CREATE)
        assert unknown.status_code == 409
        assert unknown.json() == {
            "error": "agent 'Dana Agent': SMTP server 'AcmeJets SMTP Server' does not exist"
        }
        assert (
            client.put(
                "/v1/smtp-servers/AcmeJets%20SMTP%20Server", json=SERVER, headers=CREATE
            ).status_code
            == 201
        )
        created = client.put("/v1/agents/Dana%20Agent", json=DANA, headers=CREATE)
        assert created.status_code == 201, created.text
        with_password = {**DANA, "outgoing": {**DANA["outgoing"], "password": "x"}}
        refused = client.put(
            "/v1/agents/Dana%20Agent", json=with_password, headers={"If-Match": "*"}
        )
        assert refused.status_code == 422
        vcc = {**DANA, "outgoing": {"server": "VCC Internal", "override": True}}
        refused = client.put("/v1/agents/Dana%20Agent", json=vcc, headers={"If-Match": "*"})
        assert refused.json() == {
            "error": "agent 'Dana Agent': 'VCC Internal' cannot be overridden"
        }
        twin = {**DANA, "name": "Dana Twin"}
        clash = client.put("/v1/agents/Dana%20Twin", json=twin, headers=CREATE)
        assert clash.json() == {
            "error": "agent 'Dana Twin': email dana@acmejets.example is used by 'Dana Agent'"
        }
        listed = client.get("/v1/agents").json()
        assert [item["resource"]["name"] for item in listed["items"]] == ["Dana Agent"]
        dana = client.get("/v1/agents/Dana%20Agent").json()
        assert dana["outgoing"] == {  # normalised as the loader normalises a file
            "server": "AcmeJets SMTP Server",
            "override": True,
            "user": "dana@acmejets.example",
        }
        default = client.put(
            "/v1/default-smtp-server",
            json={"name": "AcmeJets SMTP Server"},
            headers={"If-Match": "*"},
        )
        assert default.status_code == 200, default.text
        assert client.get("/v1/agents/Dana%20Agent").json()["outgoing"] is None
        audit = client.get("/v1/audit").json()["items"]
        assert [(e["kind"], e["name"], e["action"], e["fields"]) for e in audit[-2:]] in (
            [
                ("SmtpServer", "AcmeJets SMTP Server", "set-default", ["default"]),
                ("Agent", "Dana Agent", "reset", ["outgoing"]),
            ],
            [
                ("Agent", "Dana Agent", "reset", ["outgoing"]),
                ("SmtpServer", "AcmeJets SMTP Server", "set-default", ["default"]),
            ],
        )


MINIMAL = """\
kind: SmtpServer
name: AcmeJets SMTP Server
host: smtp.acmejets.example
---
kind: Agent
name: Dana Agent
email: dana@acmejets.example
outgoing:
  server: AcmeJets SMTP Server
  override: true
"""


def test_minimal_bodies_written_through_the_api_plan_as_no_changes(
    server: Server, workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server normalises a body as the loader normalises a file: an overriding agent's
    user (its email) and a server's port, security and default are filled in by the tenant,
    so the equivalent config shows no drift."""
    (workdir / "channels.d" / "acme.yaml").write_text(MINIMAL)
    with api(server, server.write_token) as client:
        for path, body in (("smtp-servers/AcmeJets%20SMTP%20Server", SERVER), (DANA_PATH, DANA)):
            assert client.put(f"/v1/{path}", json=body, headers=CREATE).status_code == 201
        stored = client.get("/v1/smtp-servers/AcmeJets%20SMTP%20Server").json()
    assert (stored["security"], stored["port"], stored["default"]) == ("starttls", 587, False)
    assert "allow_insecure_auth" not in stored  # channelsync's own field: never a tenant's
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.read_token)
    plan = cli("plan", "--target", server.url, "--detailed-exitcode")
    assert (plan.code, plan.err) == (0, ""), plan.out
    assert "No changes." in plan.out
