"""What a driver imports: one public module; optional capabilities as Protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from channelsync.targets import absent, api
from channelsync.targets.http import HttpTarget
from channelsync.targets.sqlite import SqliteTarget
from tests.http.example_driver import MemoryTarget


def test_the_public_api_names_what_a_driver_needs() -> None:
    assert {
        "Target",
        "LiveResource",
        "Operation",
        "LockInfo",
        "TargetError",
        "ConflictError",
        "LockTimeout",
        "normalize",
        "secret_paths",
        "FingerprintsMany",
        "SecretValues",
        "Absent",
        "Repository",
        "Tenant",
    } <= set(api.__all__)
    assert all(hasattr(api, name) for name in api.__all__)


def test_optional_capabilities_are_protocols_checked_with_isinstance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = MemoryTarget("memory://capabilities")
    reader = SqliteTarget(f"sqlite:///{tmp_path / 'none' / 'tenant.db'}", readonly=True)
    remote = HttpTarget("http://127.0.0.1:9", token="cst_x")
    try:
        assert isinstance(memory, api.Target) and not isinstance(memory, api.FingerprintsMany)
        assert not isinstance(memory, api.Absent) and absent(memory) is None
        assert isinstance(reader, api.SecretValues) and isinstance(reader, api.Absent)
        assert (
            absent(reader)
            == f"no tenant at {tmp_path / 'none' / 'tenant.db'} yet: apply will create it"
        )
        assert isinstance(remote, api.FingerprintsMany) and not isinstance(remote, api.SecretValues)
    finally:
        reader.close()
        remote.close()
