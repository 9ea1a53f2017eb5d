"""Agents over the REST API of a real `channelsync serve`: their collection comes from the kind
registry, the tenant's rules hold there too, and a new default resets them."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from channelsync.server import openapi, tokens
from tests.http.conftest import Server, free_port

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
        assert dana["outgoing"] == {  # normalised as the config is: the user defaults to the email
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


def test_list_kind_agent_live_over_https_names_the_tenant_s_agents(
    tmp_path: Path, workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`list --kind agent --live` against a tenant URL of a TLS server (a private CA in
    SSL_CERT_FILE): the tenant's agents with their Outgoing Mail Server, not the default's."""

    ca = trustme.CA()
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued = ca.issue_cert("localhost")
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    ca.cert_pem.write_to_path(str(ca_file))
    db, token_file, port = tmp_path / "tenant.db", tmp_path / "tokens.json", free_port()
    assert cli("tenant", "add", "acme", "--store", f"sqlite:///{db}").code == 0
    token = tokens.add(token_file, "acme-ci", "write", ["acme"])
    argv = [sys.executable, "-m", "channelsync.server", "serve", "--target", f"sqlite:///{db}",
            "--port", str(port), "--tokens", str(token_file), "--tls-cert", str(cert),
            "--tls-key", str(key)]  # fmt: skip
    with (tmp_path / "serve.log").open("ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log)
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
        monkeypatch.setenv("CHANNELSYNC_TOKEN", token)
        url = f"https://localhost:{port}"
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(
                    f"{url}/v1/health", timeout=1, context=_trusting(ca_file)
                ):
                    break
            except OSError:
                assert time.monotonic() < deadline, "channelsync serve did not start"
                time.sleep(0.05)
        (workdir / "channels.d" / "acme.yaml").write_text(
            MINIMAL.replace(
                "host: smtp.acmejets.example\n", "host: smtp.acmejets.example\ndefault: true\n"
            )
            + "---\nkind: Agent\nname: Eli Agent\nemail: eli@acmejets.example\n"
        )
        target = ("--target", f"{url}/tenants/acme")
        applied = cli("apply", *target, "--auto-approve", "--skip-connection-tests")
        assert applied.code == 0, applied.out + applied.err
        listed = cli("list", "--kind", "agent", "--live", *target)
        assert (listed.code, listed.err) == (0, "")
        assert listed.out.splitlines() == [
            "USER NAME   EMAIL ADDRESS          OUTGOING MAIL SERVER",
            "Dana Agent  dana@acmejets.example  AcmeJets SMTP Server (override)",
            "Eli Agent   eli@acmejets.example   AcmeJets SMTP Server (tenant default)",
            "2 agent(s)",
        ]
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))
