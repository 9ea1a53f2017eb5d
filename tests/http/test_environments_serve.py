"""Environments against served tenants: staging and prod, each the tenant of its own
``channelsync serve`` (one serve with a tenant each, once it serves several, is the same test
with the two URLs of ``envrepo.TARGETS`` changed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import envrepo
from tests.http.conftest import Server


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[dict[str, Server]]:
    started: dict[str, Server] = {}
    try:
        for name in ("staging", "prod"):
            (tmp_path / name).mkdir()
            started[name] = Server(tmp_path / name)
        # one token for both: CHANNELSYNC_TOKEN is one variable in this process
        shutil.copy(started["staging"].tokens, started["prod"].tokens)
        started["prod"].write_token = started["staging"].write_token
        for served in started.values():
            served.start()
        yield started
    finally:
        for served in started.values():
            served.stop()


def test_each_environment_plans_applies_and_drifts_against_its_served_tenant(
    servers: dict[str, Server],
    workdir: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in envrepo.SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHANNELSYNC_ENV", raising=False)
    monkeypatch.setenv("CHANNELSYNC_TOKEN", servers["staging"].write_token)
    envrepo.write(workdir, {name: s.url for name, s in servers.items()})
    plan = cli("plan", "--all-envs", "--detailed-exitcode")
    assert plan.code == 2, plan.err
    assert f"Target: {servers['prod'].url}" in plan.out
    for name in ("staging", "prod"):
        applied = cli("apply", "--env", name, "--auto-approve", "--skip-connection-tests")
        assert applied.code == 0, applied.err
    for name in ("staging", "prod"):
        assert cli("drift", "--env", name).code == 0
    assert cli("compare", "staging", "prod").code == 2
    plan = cli("plan", "--all-envs", "--detailed-exitcode")
    assert plan.code == 0, plan.out
