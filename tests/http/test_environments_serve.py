"""Environments against two tenants of ONE ``channelsync serve``: staging is its tenant
``acme-staging``, prod its tenant ``acme``, each with a token scoped to that tenant alone in
``CHANNELSYNC_TOKEN_STAGING`` and ``CHANNELSYNC_TOKEN_PROD`` (``targets.token_variable``), so
that ``plan --all-envs`` reaches both from one process and neither token reaches the other
tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from channelsync.server import tokens
from tests import envrepo
from tests.http.conftest import Server
from tests.http.test_tenants import add_tenant, client

TENANTS = {"staging": "acme-staging", "prod": "acme"}


@pytest.fixture
def tenants(
    server: Server, workdir: Path, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The two tenants on the running server, the repository pointing at them, and each
    environment's token (scoped to its tenant) in its own variable; returns the tokens."""
    for key, value in envrepo.SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHANNELSYNC_ENV", raising=False)
    monkeypatch.delenv("CHANNELSYNC_TOKEN", raising=False)
    scoped = {}
    for env, tenant in TENANTS.items():
        add_tenant(server, cli, tenant)
        scoped[env] = tokens.add(server.tokens, f"{env}-ci", "write", [tenant])
        monkeypatch.setenv(f"CHANNELSYNC_TOKEN_{env.upper()}", scoped[env])
    envrepo.write(workdir, envrepo.served(server.url))
    return scoped


def test_each_environment_plans_applies_and_drifts_against_its_tenant_of_one_server(
    server: Server, tenants: dict[str, str], cli: Any
) -> None:
    plan = cli("plan", "--all-envs", "--detailed-exitcode")
    assert plan.code == 2, plan.err
    for tenant in TENANTS.values():
        assert f"Target: {server.url}/tenants/{tenant}\n" in plan.out
    for name in TENANTS:
        applied = cli("apply", "--env", name, "--auto-approve", "--skip-connection-tests")
        assert applied.code == 0, applied.err
    for name in TENANTS:
        drift = cli("drift", "--env", name)
        assert drift.code == 0, drift.out + drift.err
    assert cli("compare", "staging", "prod").code == 2
    plan = cli("plan", "--all-envs", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    # each tenant holds its own environment's resources: staging's smoke test script alone
    for env, tenant in TENANTS.items():
        with client(server, tenants[env]) as api:
            page = api.get(f"/v1/tenants/{tenant}/resources").json()
        names = {item["resource"]["name"] for item in page["items"]}
        assert ("Smoke Test Script" in names) == (env == "staging"), names
    with client(server, server.read_token) as api:  # the server's default tenant: untouched
        assert api.get("/v1/resources").json() == {"items": [], "next": None}


def test_a_staging_token_cannot_plan_prod(
    server: Server, tenants: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANNELSYNC_TOKEN_PROD", tenants["staging"])
    plan = cli("plan", "--env", "prod")
    assert plan.code == 1
    assert plan.err == f"error: {server.url}/tenants/acme: no tenant 'acme' on this server (404)\n"
    both = cli("plan", "--all-envs", "--detailed-exitcode")
    assert both.code == 1
    assert "no tenant 'acme' on this server (404)" in both.out
    assert "Plan: 3 to create" in both.out  # staging's own section is still planned


def test_an_environment_without_its_own_token_uses_channelsync_token(
    server: Server, tenants: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHANNELSYNC_TOKEN_PROD")
    monkeypatch.setenv("CHANNELSYNC_TOKEN", tenants["prod"])
    assert cli("plan", "--env", "prod", "--detailed-exitcode").code == 2
    monkeypatch.delenv("CHANNELSYNC_TOKEN")
    plan = cli("plan", "--env", "prod")
    assert plan.code == 1
    assert plan.err == (
        f"error: no API token for {server.url}/tenants/acme: set CHANNELSYNC_TOKEN_PROD (or "
        "CHANNELSYNC_TOKEN) (create one on the server with 'channelsync token add NAME --role "
        "read|write')\n"
    )


def test_a_refused_environment_token_names_its_variable(
    server: Server, tenants: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANNELSYNC_TOKEN_PROD", "cst_not-a-token")
    plan = cli("plan", "--env", "prod")
    assert plan.code == 1
    assert plan.err == (
        f"error: {server.url}/tenants/acme refused the API token (401): set "
        "CHANNELSYNC_TOKEN_PROD to a valid token\n"
    )


def test_a_read_token_in_an_environment_s_variable_is_named_when_apply_needs_write(
    server: Server, tenants: dict[str, str], cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CHANNELSYNC_TOKEN_PROD wins over CHANNELSYNC_TOKEN: a read token left there (the one
    the workflows' plan uses) is the one to replace, and the error says so."""
    reader = tokens.add(server.tokens, "prod-plan", "read", ["acme"])
    monkeypatch.setenv("CHANNELSYNC_TOKEN_PROD", reader)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", tenants["prod"])
    assert cli("plan", "--env", "prod", "--detailed-exitcode").code == 2
    applied = cli("apply", "--env", "prod", "--auto-approve", "--skip-connection-tests")
    assert applied.code == 1
    assert applied.err.splitlines()[-1] == (
        f"error: {server.url}/tenants/acme: token 'prod-plan' has the read role; this needs "
        "write (403); use a token with the write role in CHANNELSYNC_TOKEN_PROD"
    )
