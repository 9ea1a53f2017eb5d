"""Third-party target drivers are found by URL scheme through the entry-point group."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest

from channelsync.targets import ENTRY_POINT_GROUP, open_target
from channelsync.targets.base import Target
from tests.http.conftest import register_memory_driver, write_config


@pytest.fixture
def memory_driver(monkeypatch: pytest.MonkeyPatch) -> None:
    register_memory_driver(monkeypatch)


def test_builtin_http_drivers_register_through_entry_points() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}
    assert {"sqlite", "http", "https"} <= names


def test_a_third_party_driver_plans_and_applies(
    memory_driver: None,
    workdir: Path,
    secrets_env: dict[str, str],
    cli: Any,
) -> None:
    target = open_target("memory://demo")
    assert isinstance(target, Target)
    write_config(workdir / "channels.d", 2)
    applied = cli("apply", "--target", "memory://demo", "--auto-approve", "--skip-connection-tests")
    assert applied.code == 0, applied.err
    assert "Apply complete: 4 created." in applied.out
    again = cli("plan", "--target", "memory://demo", "--detailed-exitcode")
    assert again.code == 0, again.out + again.err


def test_an_unknown_scheme_lists_the_installed_drivers(memory_driver: None, cli: Any) -> None:
    result = cli("plan", "--target", "ftp://example")
    assert result.code == 1
    installed = "installed drivers: http, https, memory, sqlite"
    assert f"no target driver for 'ftp' ({installed}" in result.err
