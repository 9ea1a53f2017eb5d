"""One server, many tenants: /v1/tenants/{tenant}/..., the target URL that names one, token
scopes (a token of one tenant hears 404 for every route of another), and keys rotated while
the server runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from channelsync.server import tokens
from channelsync.server.openapi import COMMITTED
from channelsync.targets.base import TargetError
from channelsync.targets.http import HttpTarget
from tests.http.conftest import Server, write_config

ROOT = Path(__file__).resolve().parents[2]


def add_tenant(server: Server, cli: Any, name: str) -> None:
    result = cli("tenant", "add", name, *server.store_args())
    assert result.code == 0, result.err


def client(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def test_a_tenant_added_to_a_running_server_is_planned_and_applied_apart(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_tenant(server, cli, "acme")
    acme_token = tokens.add(server.tokens, "acme-ci", "write", ["acme"])
    write_config(workdir / "channels.d", 2)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", acme_token)
    target = ("--target", f"{server.url}/tenants/acme")
    applied = cli("apply", *target, "--auto-approve", "--skip-connection-tests")
    assert applied.code == 0, applied.err
    assert "Apply complete: 4 created." in applied.out
    assert cli("plan", *target, "--detailed-exitcode").code == 0
    with client(server, server.read_token) as api:  # the default tenant is still empty
        assert api.get("/v1/resources").json() == {"items": [], "next": None}
    with client(server, acme_token) as api:
        page = api.get("/v1/tenants/acme/resources").json()
        assert len(page["items"]) == 4
        audit = api.get("/v1/tenants/acme/audit").json()["items"]
        assert {e["actor"] for e in audit} == {"acme-ci"} and len(audit) == 4


def test_a_plan_for_a_tenant_the_server_does_not_have_is_one_line(
    server: Server,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(workdir / "channels.d", 1)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", server.write_token)
    plan = cli("plan", "--target", f"{server.url}/tenants/acme")
    assert plan.code == 1
    assert plan.err == (
        f"error: {server.url}/tenants/acme: no tenant 'acme' on this server (404)\n"
    )


def test_serve_upgrades_a_single_tenant_store_and_serves_it_as_default(
    tmp_path: Path,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.test_store_tenants import as_single_tenant_file

    served = Server(tmp_path / "server")
    write_config(workdir / "channels.d", 2)
    target = ("--target", f"sqlite:///{served.db}")
    assert cli("apply", *target, "--auto-approve", "--skip-connection-tests").code == 0
    as_single_tenant_file(served.db)
    served.start()
    try:
        monkeypatch.setenv("CHANNELSYNC_TOKEN", served.read_token)
        plan = cli("plan", "--target", served.url, "--detailed-exitcode")
        assert plan.code == 0, plan.err
        assert "No changes." in plan.out
    finally:
        served.stop()


def tenant_routes(tenant: str) -> list[tuple[str, str]]:
    """(method, path) of every route of one tenant, from the OpenAPI document."""
    doc = json.loads((ROOT / COMMITTED).read_text())
    found = []
    for path, operations in doc["paths"].items():
        if not path.startswith("/v1/tenants/{tenant}/"):
            continue
        concrete = path.replace("{tenant}", tenant).replace("{name}", "Relay")
        found += [(method.upper(), concrete.replace("{key}", "k-1")) for method in operations]
    return found


def test_a_token_of_one_tenant_hears_404_for_every_route_of_another(
    server: Server, cli: Any
) -> None:
    add_tenant(server, cli, "acme")
    add_tenant(server, cli, "beta")
    acme_token = tokens.add(server.tokens, "acme-ci", "write", ["acme"])
    routes = tenant_routes("beta")
    assert len(routes) >= 15
    with client(server, acme_token) as api:
        for method, path in routes:
            body = {} if method in ("PUT", "POST") else None
            response = api.request(method, path, json=body, headers={"If-None-Match": "*"})
            assert response.status_code == 404, (method, path, response.text)
            assert response.json() == {"error": "no tenant 'beta' on this server"}
            # the same answer as for a tenant that does not exist at all
            missing = api.request(method, path.replace("/beta/", "/gamma/"), json=body)
            assert missing.json() == {"error": "no tenant 'gamma' on this server"}
        for method, path in tenant_routes("default"):  # nor the default tenant's own paths
            response = api.request(method, path.replace("/tenants/default", ""))
            assert response.status_code == 404, (method, path)
            assert response.json() == {"error": "no tenant 'default' on this server"}
        assert api.get("/v1/tenants/acme/resources").status_code == 200


def test_an_operator_token_reaches_every_tenant_and_hears_404_for_an_unknown_one(
    server: Server, cli: Any
) -> None:
    add_tenant(server, cli, "acme")
    operator = tokens.add(server.tokens, "operator", "read", ["*"])
    with client(server, operator) as api:
        assert api.get("/v1/resources").status_code == 200
        assert api.get("/v1/tenants/default/resources").status_code == 200
        assert api.get("/v1/tenants/acme/lock").json() == {"error": "the apply lock is free"}
        missing = api.get("/v1/tenants/nope/resources")
        assert missing.status_code == 404
        assert missing.json() == {"error": "no tenant 'nope' on this server"}
        bad = api.get("/v1/tenants/NOT%20A%20NAME/resources")
        assert bad.status_code == 404 and bad.json() == {"error": "no tenant on this server"}
    removed = cli("tenant", "remove", "acme", "--yes", *server.store_args())
    assert removed.code == 0, removed.err
    with client(server, operator) as api:  # gone at once for the running server
        assert api.get("/v1/tenants/acme/resources").status_code == 404


def test_a_tokens_file_from_before_tenants_reaches_the_default_tenant_only(
    server: Server, cli: Any
) -> None:
    add_tenant(server, cli, "acme")
    raw = json.loads(server.tokens.read_text())
    for entry in raw["tokens"]:
        entry.pop("tenants")
    server.tokens.write_text(json.dumps(raw))
    assert [e.tenants for e in tokens.load(server.tokens)] == [("default",), ("default",)]
    with client(server, server.read_token) as api:
        assert api.get("/v1/resources").status_code == 200
        assert api.get("/v1/tenants/default/resources").status_code == 200
        assert api.get("/v1/tenants/acme/resources").status_code == 404


def test_keys_rotated_while_serving_seal_the_next_writes_with_the_new_key(
    server: Server, cli: Any
) -> None:
    add_tenant(server, cli, "acme")
    token = tokens.add(server.tokens, "acme-ci", "write", ["acme"])
    body = {"kind": "SmtpServer", "host": "smtp.example.com", "user": "u", "password": "pw-1"}
    with client(server, token) as api:
        first = api.put(
            "/v1/tenants/acme/smtp-servers/A", json=body, headers={"If-None-Match": "*"}
        )
        assert first.status_code == 201, first.text
        fingerprint = api.post("/v1/tenants/acme/fingerprints", json={"values": ["pw-1"]}).json()
        rotated = cli("keys", "rotate", "--tenant", "acme", *server.store_args())
        assert rotated.code == 0, rotated.err
        second = api.put(
            "/v1/tenants/acme/smtp-servers/B", json=body, headers={"If-None-Match": "*"}
        )
        assert second.status_code == 201, second.text
        after = api.post("/v1/tenants/acme/fingerprints", json={"values": ["pw-1"]}).json()
        assert after != fingerprint
        a, b = (api.get(f"/v1/tenants/acme/smtp-servers/{n}").json() for n in "AB")
        assert a["password"] == b["password"] == after["fingerprints"][0]
    store = server.open_store()
    try:
        sealer = store.tenant("acme").sealer
        repo = store.repository("acme")
        for name in "AB":
            assert sealer.unseal(repo.sealed("SmtpServer", name)) == {"password": "pw-1"}
    finally:
        store.close()


def test_token_add_records_its_tenants_and_token_list_shows_them(tmp_path: Path, cli: Any) -> None:
    file = ("--tokens", str(tmp_path / "tokens.json"))
    added = cli(
        "token", "add", "acme-ci", "--role", "write", "--tenant", "acme", "--tenant", "b2", *file
    )
    assert added.code == 0, added.err
    assert "Token 'acme-ci' (write, tenants: acme, b2) added to" in added.err
    assert cli("token", "add", "ops", "--role", "read", "--tenant", "*", *file).code == 0
    assert cli("token", "add", "old", "--role", "read", *file).code == 0
    listing = cli("token", "list", *file).out.splitlines()
    assert [line.split()[:3] for line in listing] == [
        ["acme-ci", "write", "acme,b2"],
        ["ops", "read", "*"],
        ["old", "read", "default"],
    ]
    mixed = cli("token", "add", "x", "--role", "read", "--tenant", "*", "--tenant", "acme", *file)
    assert mixed.code == 1 and mixed.err == "error: --tenant '*' (every tenant) goes alone\n"
    bad = cli("token", "add", "y", "--role", "read", "--tenant", "ACME", *file)
    assert bad.code == 1 and "error: 'ACME' cannot name a tenant" in bad.err


@pytest.mark.parametrize(
    ("url", "root"),
    [
        ("https://cs.example", "/v1"),
        ("https://cs.example/", "/v1"),
        ("https://cs.example:8443/tenants/acme", "/v1/tenants/acme"),
        ("https://cs.example/tenants/acme-staging/", "/v1/tenants/acme-staging"),
    ],
)
def test_the_target_url_names_the_tenant(url: str, root: str) -> None:
    target = HttpTarget(url, token="cst_x")
    try:
        assert target._api == root
    finally:
        target.close()


@pytest.mark.parametrize(
    "url", ["https://cs.example/acme", "https://cs.example/tenants/Acme", "https://cs.example/?t=1"]
)
def test_a_target_url_with_another_path_is_refused(url: str) -> None:
    with pytest.raises(TargetError) as refused:
        HttpTarget(url, token="cst_x")
    assert str(refused.value) == (
        f"bad target URL '{url}': use https://HOST[:PORT] for the server's tenant 'default' or "
        "https://HOST[:PORT]/tenants/NAME for another (NAME: lower-case letters, digits, '-')"
    )


def test_the_openapi_document_has_every_route_for_the_default_and_for_a_named_tenant() -> None:
    paths = set(json.loads((ROOT / COMMITTED).read_text())["paths"])
    plain = {p for p in paths if p.startswith("/v1/") and not p.startswith("/v1/tenants/")}
    assert {p.replace("/v1/", "/v1/tenants/{tenant}/", 1) for p in plain - {"/v1/health"}} == {
        p for p in paths if p.startswith("/v1/tenants/")
    }
