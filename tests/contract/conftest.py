"""One fixture, ``driver``, parametrised over every target driver the contract suite covers:
the embedded SQLite store, the REST API (a real ``channelsync serve`` on loopback, on the
SQLite store and on PostgreSQL) and the example third-party driver
(tests/http/example_driver.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from channelsync.targets import TOKEN_ENV, open_target
from channelsync.targets.api import Target
from tests.http.conftest import Server, database_for, register_memory_driver
from tests.tenant_config import BASE, SECRETS, write


@dataclass
class Driver:
    name: str
    url: str

    def open(self) -> Target:
        return open_target(self.url)


@pytest.fixture(params=["sqlite", "http", "http-postgresql", "memory"])
def driver(
    request: pytest.FixtureRequest, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Driver]:
    """A driver with an empty tenant, in a working directory holding the shared config
    (tests/tenant_config.py) with its secrets in the environment."""
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("CHANNELSYNC_TARGET", raising=False)
    write(workdir, BASE)
    if request.param == "sqlite":
        yield Driver("sqlite", "sqlite:///contract/tenant.db")
    elif request.param == "memory":
        register_memory_driver(monkeypatch)
        yield Driver("memory", "memory://contract")
    else:
        (workdir / "server").mkdir()
        store = "postgresql" if request.param == "http-postgresql" else "sqlite"
        served = Server(workdir / "server", database_for(request, store))
        monkeypatch.setenv(TOKEN_ENV, served.write_token)
        served.start()
        try:
            yield Driver(request.param, served.url)
        finally:
            served.stop()
